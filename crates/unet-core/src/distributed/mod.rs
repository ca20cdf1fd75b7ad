//! Data-parallel training on libtorch's own distributed engine, c10d: a TCPStore rendezvous,
//! Gloo process groups on CPU and NCCL on CUDA (the `nccl` feature), through a small C++ shim
//! (`csrc/c10d.cpp`) that the build script compiles against the libtorch tch links.
//!
//! Processes are launched the way PyTorch users know: `MASTER_ADDR`, `MASTER_PORT`, `RANK`,
//! `WORLD_SIZE` and `LOCAL_RANK` in the environment ([`LaunchEnv`]), so `torchrun` can start
//! our binaries, and `cargo xtask reproduce <model> --nproc N` starts N local workers itself.
//! A [`crate::trainer::Trainer`] built after [`init_from_env`] trains data-parallel:
//! rank 0's state is broadcast at the start, gradients are all-reduced (bucketed, averaged)
//! before every optimiser step, each rank draws its own data, and only rank 0 writes.
//!
//! ```no_run
//! # fn main() -> unet_core::Result<()> {
//! use unet_core::distributed;
//! // WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 ./train  (and RANK=1)
//! if let Some(group) = distributed::init_from_env()? {
//!     println!("rank {} of {}", group.rank(), group.world_size());
//! }
//! # Ok(()) }
//! ```
//!
//! Failures are errors, never hangs: every collective has a time-out, a rank that dies makes
//! the others' next collective fail at once (the connection closes), and the error names the
//! lost rank, found from the heartbeats each rank keeps in the store.

pub mod c10d;
mod group;
mod sampler;

pub use c10d::{Backend, ProcessGroup, Store};
pub use group::{Group, GroupOptions};
pub use sampler::ShardedSampler;

use std::sync::{Arc, OnceLock};

use crate::{Error, Result};

/// Where this process sits in a launch, from the environment `torchrun` sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchEnv {
    /// Host of the rendezvous store (rank 0's machine).
    pub master_addr: String,
    /// Port of the rendezvous store.
    pub master_port: u16,
    /// This process's rank in `0..world_size`.
    pub rank: usize,
    /// Number of processes.
    pub world_size: usize,
    /// Rank on this machine (selects the GPU with NCCL).
    pub local_rank: usize,
}

impl LaunchEnv {
    /// Reads `MASTER_ADDR` (default 127.0.0.1), `MASTER_PORT` (default 29500), `RANK`,
    /// `WORLD_SIZE` and `LOCAL_RANK` (default `RANK`). `None` when `WORLD_SIZE` is unset: a
    /// single-process run. Malformed or inconsistent values are [`Error::InvalidConfig`]
    /// naming the variable.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`LaunchEnv::from_env`] over any variable source (for tests and launchers).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(world) = get("WORLD_SIZE") else { return Ok(None) };
        let int = |name: &'static str, v: &str| -> Result<usize> {
            v.trim().parse::<usize>().map_err(|_| {
                Error::config(name, v, "must be a non-negative integer (set by torchrun or xtask)")
            })
        };
        let world_size = int("WORLD_SIZE", &world)?;
        if world_size == 0 {
            return Err(Error::config("WORLD_SIZE", 0, "must be at least 1"));
        }
        let rank = match get("RANK") {
            Some(r) => int("RANK", &r)?,
            None => {
                return Err(Error::config("RANK", "unset", "WORLD_SIZE is set, so RANK must be"))
            }
        };
        if rank >= world_size {
            return Err(Error::config(
                "RANK",
                rank,
                format!("must be below WORLD_SIZE = {world_size}"),
            ));
        }
        let local_rank = match get("LOCAL_RANK") {
            Some(r) => int("LOCAL_RANK", &r)?,
            None => rank,
        };
        let master_addr = get("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
        if master_addr.trim().is_empty() {
            return Err(Error::config("MASTER_ADDR", "", "must name rank 0's host"));
        }
        let master_port = match get("MASTER_PORT") {
            Some(p) => p.trim().parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                Error::config("MASTER_PORT", &p, "must be a TCP port in 1..=65535")
            })?,
            None => 29500,
        };
        Ok(Some(Self { master_addr, master_port, rank, world_size, local_rank }))
    }

    /// The variables a launcher sets for `rank` of this launch.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MASTER_ADDR", self.master_addr.clone()),
            ("MASTER_PORT", self.master_port.to_string()),
            ("RANK", self.rank.to_string()),
            ("WORLD_SIZE", self.world_size.to_string()),
            ("LOCAL_RANK", self.local_rank.to_string()),
        ]
    }
}

static GLOBAL: OnceLock<Arc<Group>> = OnceLock::new();

/// Joins the process group the environment describes ([`LaunchEnv::from_env`]) with
/// [`GroupOptions::from_env`], once per process; later calls return the same group. `None`
/// for a single-process run.
pub fn init_from_env() -> Result<Option<Arc<Group>>> {
    if let Some(g) = GLOBAL.get() {
        return Ok(Some(g.clone()));
    }
    let Some(env) = LaunchEnv::from_env()? else { return Ok(None) };
    let group = Arc::new(Group::init(&env, &GroupOptions::from_env()?)?);
    Ok(Some(GLOBAL.get_or_init(|| group).clone()))
}

/// The group of [`init_from_env`], if this process joined one.
pub fn current() -> Option<Arc<Group>> {
    GLOBAL.get().cloned()
}

/// Whether this process writes outputs: rank 0, or any single-process run.
pub fn is_primary() -> bool {
    current().is_none_or(|g| g.rank() == 0)
}
