//! [`Group`]: a joined process group with typed errors that name the lost rank.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tch::{Device, Kind, Tensor};

use super::c10d::{Backend, ProcessGroup, Store};
use super::LaunchEnv;
use crate::{Error, Result};

/// How to join a group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupOptions {
    /// Gloo (CPU) or NCCL (CUDA).
    pub backend: Backend,
    /// Bound on the rendezvous and on every collective (default 30 minutes, PyTorch's; a
    /// rank that dies is noticed at once, the bound only ends hangs).
    pub timeout: Duration,
    /// Address Gloo's transport binds; `None` picks 127.0.0.1 when the master is local, else
    /// `$GLOO_SOCKET_IFNAME` or this machine's hostname.
    pub bind: Option<String>,
    /// Interval of the heartbeat each rank keeps in the store (to name lost ranks).
    pub heartbeat: Duration,
    /// Gradient bucket size in bytes for [`Group::all_reduce_mean`].
    pub bucket_bytes: usize,
}

impl Default for GroupOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Gloo,
            timeout: Duration::from_secs(1800),
            bind: None,
            heartbeat: Duration::from_millis(500),
            bucket_bytes: 25 << 20,
        }
    }
}

impl GroupOptions {
    /// Defaults, overridden by `UNET_RS_DIST_BACKEND` (`gloo` or `nccl`) and
    /// `UNET_RS_DIST_TIMEOUT_S` (seconds).
    pub fn from_env() -> Result<Self> {
        let mut o = Self::default();
        if let Ok(b) = std::env::var("UNET_RS_DIST_BACKEND") {
            o.backend = match b.trim().to_ascii_lowercase().as_str() {
                "gloo" => Backend::Gloo,
                "nccl" => Backend::Nccl,
                _ => return Err(Error::config("UNET_RS_DIST_BACKEND", b, "must be gloo or nccl")),
            };
        }
        if let Ok(t) = std::env::var("UNET_RS_DIST_TIMEOUT_S") {
            let s = t.trim().parse::<f64>().ok().filter(|s| *s > 0.0 && s.is_finite());
            let s = s.ok_or_else(|| {
                Error::config("UNET_RS_DIST_TIMEOUT_S", &t, "must be a positive number of seconds")
            })?;
            o.timeout = Duration::from_secs_f64(s);
        }
        Ok(o)
    }
}

/// A process group this process has joined: rank, world size, the store, the c10d group and
/// a heartbeat thread.
pub struct Group {
    env: LaunchEnv,
    opts: GroupOptions,
    // Dropped before the store it was built over.
    pg: ProcessGroup,
    store: Store,
    beating: Arc<AtomicBool>,
    heart: Option<JoinHandle<()>>,
    calls: AtomicUsize,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("rank", &self.env.rank)
            .field("world_size", &self.env.world_size)
            .field("master", &format!("{}:{}", self.env.master_addr, self.env.master_port))
            .field("backend", &self.opts.backend)
            .finish()
    }
}

fn heartbeat_key(rank: usize) -> String {
    format!("unet/heartbeat/{rank}")
}

impl Group {
    /// Connects to the store (rank 0 hosts it and waits for all `world_size` ranks), checks
    /// that no other process claims this rank, creates the c10d group and starts the
    /// heartbeat.
    pub fn init(env: &LaunchEnv, opts: &GroupOptions) -> Result<Self> {
        let (rank, world) = (env.rank, env.world_size);
        let fail = |op: &str, reason: String| Error::Distributed {
            rank,
            op: op.to_string(),
            lost: Vec::new(),
            reason,
        };
        if opts.backend == Backend::Nccl && !super::c10d::has_nccl() {
            return Err(fail(
                "choosing the NCCL backend",
                "this build has no NCCL (build unet-core with the `nccl` feature)".into(),
            ));
        }
        let at = format!("{}:{}", env.master_addr, env.master_port);
        let rendezvous = format!("rendezvous of {world} ranks at {at}");
        let store =
            Store::connect(&env.master_addr, env.master_port, world, rank == 0, opts.timeout)
                .map_err(|e| {
                    let hint = if rank == 0 {
                        "is WORLD_SIZE right, and did every rank start?"
                    } else {
                        "is rank 0 running, and are MASTER_ADDR/MASTER_PORT right?"
                    };
                    fail(&rendezvous, format!("{e} ({hint})"))
                })?;
        let claimed =
            store.add(&format!("unet/rank/{rank}"), 1).map_err(|e| fail(&rendezvous, e))?;
        if claimed > 1 {
            return Err(fail(&rendezvous, format!("another process also has RANK={rank}")));
        }
        store.add(&heartbeat_key(rank), 1).map_err(|e| fail(&rendezvous, e))?;
        let bind = opts.bind.clone().or_else(|| {
            let local = ["127.0.0.1", "localhost", "::1"].contains(&env.master_addr.as_str());
            local.then(|| "127.0.0.1".to_string())
        });
        let pg = ProcessGroup::new(
            opts.backend,
            &store,
            "unet/pg/",
            rank,
            world,
            opts.timeout,
            bind.as_deref(),
        )
        .map_err(|e| fail(&format!("creating the {:?} group", opts.backend), e))?;
        let beating = Arc::new(AtomicBool::new(true));
        let heart = {
            let (addr, port, period) = (env.master_addr.clone(), env.master_port, opts.heartbeat);
            let beating = beating.clone();
            let timeout = opts.timeout;
            std::thread::Builder::new()
                .name(format!("unet-heartbeat-{rank}"))
                .spawn(move || {
                    let Ok(s) = Store::connect(&addr, port, 0, false, timeout) else { return };
                    while beating.load(Ordering::Relaxed) {
                        if s.add(&heartbeat_key(rank), 1).is_err() {
                            return;
                        }
                        std::thread::sleep(period);
                    }
                })
                .ok()
        };
        tracing::info!(rank, world, master = %at, backend = ?opts.backend, "joined process group");
        Ok(Self {
            env: env.clone(),
            opts: opts.clone(),
            pg,
            store,
            beating,
            heart,
            calls: AtomicUsize::new(0),
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.env.rank
    }

    /// Number of ranks.
    pub fn world_size(&self) -> usize {
        self.env.world_size
    }

    /// The launch this group was joined with.
    pub fn launch(&self) -> &LaunchEnv {
        &self.env
    }

    /// The options it was joined with.
    pub fn options(&self) -> &GroupOptions {
        &self.opts
    }

    /// The device collectives run on: CPU for Gloo, this rank's GPU for NCCL.
    pub fn device(&self) -> Device {
        match self.opts.backend {
            Backend::Gloo => Device::Cpu,
            Backend::Nccl => Device::Cuda(self.env.local_rank),
        }
    }

    /// Ranks whose heartbeat stopped: read every other rank's counter twice, a few heartbeat
    /// periods apart. A store that cannot be reached means rank 0 (its host) is gone.
    pub fn lost_ranks(&self) -> Vec<usize> {
        let probe = || {
            Store::connect(
                &self.env.master_addr,
                self.env.master_port,
                0,
                false,
                Duration::from_secs(3),
            )
        };
        let Ok(p) = probe() else { return vec![0] };
        let others: Vec<usize> = (0..self.world_size()).filter(|r| *r != self.rank()).collect();
        let read = |p: &Store| -> Option<Vec<i64>> {
            others.iter().map(|r| p.add(&heartbeat_key(*r), 0).ok()).collect()
        };
        let Some(before) = read(&p) else { return vec![0] };
        std::thread::sleep((self.opts.heartbeat * 5).max(Duration::from_secs(2)));
        let Some(after) = read(&p) else { return vec![0] };
        others
            .iter()
            .zip(before.iter().zip(&after))
            .filter(|(_, (b, a))| a <= b)
            .map(|(r, _)| *r)
            .collect()
    }

    fn failed(&self, op: &str, reason: String) -> Error {
        let lost = if self.world_size() > 1 { self.lost_ranks() } else { Vec::new() };
        tracing::error!(rank = self.rank(), op, ?lost, %reason, "collective failed");
        Error::Distributed { rank: self.rank(), op: op.to_string(), lost, reason }
    }

    fn on_device(&self, t: &Tensor, op: &str) -> Result<()> {
        if t.device() != self.device() {
            return Err(Error::Distributed {
                rank: self.rank(),
                op: op.to_string(),
                lost: Vec::new(),
                reason: format!(
                    "tensor on {:?}, the {:?} group needs {:?}",
                    t.device(),
                    self.opts.backend,
                    self.device()
                ),
            });
        }
        Ok(())
    }

    /// Sums `t` over all ranks, in place. `op` names the operation in errors.
    pub fn all_reduce_sum(&self, t: &mut Tensor, op: &str) -> Result<()> {
        self.on_device(t, op)?;
        self.pg.all_reduce_sum(t, self.opts.timeout).map_err(|e| self.failed(op, e))
    }

    /// Copies rank `root`'s `t` into every rank's `t`.
    pub fn broadcast(&self, t: &mut Tensor, root: usize, op: &str) -> Result<()> {
        self.on_device(t, op)?;
        self.pg.broadcast(t, root, self.opts.timeout).map_err(|e| self.failed(op, e))
    }

    /// Returns once every rank has reached it.
    pub fn barrier(&self, op: &str) -> Result<()> {
        self.pg.barrier(self.opts.timeout).map_err(|e| self.failed(op, e))
    }

    /// Checks that every rank passes the same `value` (e.g. a description of the model's
    /// variables) before collectives that would otherwise fail obscurely, or abort the process
    /// in Gloo's I/O thread, on tensors of different sizes or types.
    pub fn agree(&self, what: &str, value: &str) -> Result<()> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let key = |r: usize| format!("unet/agree/{n}/{r}");
        let op = format!("checking that all ranks have the same {what}");
        self.store.set(&key(self.rank()), value.as_bytes()).map_err(|e| self.failed(&op, e))?;
        for r in (0..self.world_size()).filter(|r| *r != self.rank()) {
            let theirs =
                self.store.get(&key(r), self.opts.timeout).map_err(|e| self.failed(&op, e))?;
            if theirs != value.as_bytes() {
                return Err(Error::Distributed {
                    rank: self.rank(),
                    op,
                    lost: Vec::new(),
                    reason: format!(
                        "rank {r} differs: {:?} here, {:?} there",
                        clip(value),
                        clip(&String::from_utf8_lossy(&theirs))
                    ),
                });
            }
        }
        Ok(())
    }

    /// The mean over ranks of each tensor (any devices and float kinds), all-reduced in
    /// buckets of about [`GroupOptions::bucket_bytes`] (one collective per bucket instead of
    /// one per tensor). Returns new tensors on the inputs' devices and kinds.
    pub fn all_reduce_mean(&self, tensors: &[Tensor], op: &str) -> Result<Vec<Tensor>> {
        let world = self.world_size() as f64;
        let mut out: Vec<Tensor> = tensors.iter().map(|_| Tensor::new()).collect();
        self.bucketed(
            tensors,
            |joined| self.all_reduce_sum(joined, op),
            |i, part| {
                let t = &tensors[i];
                out[i] = (part / world).to_device(t.device()).to_kind(t.kind());
            },
        )?;
        Ok(out)
    }

    /// Overwrites every tensor with rank `root`'s values (bucketed like
    /// [`Group::all_reduce_mean`]).
    pub fn broadcast_all(&self, tensors: &[Tensor], root: usize, op: &str) -> Result<()> {
        self.bucketed(
            tensors,
            |joined| self.broadcast(joined, root, op),
            |i, part| {
                tch::no_grad(|| {
                    tensors[i].shallow_clone().copy_(&part);
                })
            },
        )
    }

    /// Runs `collective` on each bucket of `tensors`, flattened to float32 on the group's
    /// device and joined, then hands every tensor's part (in its shape) to `each`.
    fn bucketed(
        &self,
        tensors: &[Tensor],
        mut collective: impl FnMut(&mut Tensor) -> Result<()>,
        mut each: impl FnMut(usize, Tensor),
    ) -> Result<()> {
        for bucket in self.buckets(tensors) {
            let flat: Vec<Tensor> = bucket
                .iter()
                .map(|&i| {
                    tensors[i].detach().to_device(self.device()).to_kind(Kind::Float).reshape([-1])
                })
                .collect();
            let sizes: Vec<i64> = flat.iter().map(|f| f.numel() as i64).collect();
            let mut joined = Tensor::cat(&flat, 0);
            collective(&mut joined)?;
            for (&i, part) in bucket.iter().zip(joined.split_with_sizes(&sizes, 0)) {
                each(i, part.reshape(tensors[i].size()));
            }
        }
        Ok(())
    }

    /// Indices of `tensors` grouped into buckets of about `bucket_bytes` (as float32).
    fn buckets(&self, tensors: &[Tensor]) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = Vec::new();
        let mut current: Vec<usize> = Vec::new();
        let mut bytes = 0usize;
        for (i, t) in tensors.iter().enumerate() {
            let b = t.numel() * 4;
            if !current.is_empty() && bytes + b > self.opts.bucket_bytes {
                out.push(std::mem::take(&mut current));
                bytes = 0;
            }
            current.push(i);
            bytes += b;
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }
}

fn clip(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_string();
    }
    let cut = (0..=200).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
    format!("{}…", &s[..cut])
}

impl Drop for Group {
    fn drop(&mut self) {
        self.beating.store(false, Ordering::Relaxed);
        if let Some(h) = self.heart.take() {
            let _ = h.join();
        }
    }
}
