//! Data-parallel training on c10d (Gloo, loopback only).
//!
//! The multi-process tests re-execute this test binary as the workers (selected by the
//! `UNET_RS_DIST_TEST_ROLE` variable), launched like `torchrun` launches: MASTER_ADDR,
//! MASTER_PORT, RANK, WORLD_SIZE in the environment.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tch::{nn, Device, Kind, Tensor};
use unet_core::distributed::{self, Group, GroupOptions, LaunchEnv, ShardedSampler};
use unet_core::trainer::{Trainer, TrainerConfig, CHECKPOINT};
use unet_core::{checkpoint, Error, Norm, UNet, UNetConfig};

const ROLE: &str = "UNET_RS_DIST_TEST_ROLE";
const DIR: &str = "UNET_RS_DIST_TEST_DIR";
const STEPS: usize = 6;
const BATCH: i64 = 8;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn model(seed: i64) -> (nn::VarStore, UNet) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut cfg = UNetConfig { dims: 1, channels: vec![4, 8], ..UNetConfig::default() };
    // Group norm: batch norm's statistics would differ between half and whole batches.
    cfg.block.norm = Norm::Group { groups: 4 };
    let net = UNet::new(&vs.root(), &cfg).unwrap();
    (vs, net)
}

fn config(dir: &Path, total_steps: usize) -> TrainerConfig {
    TrainerConfig {
        lr: 3e-3,
        total_steps,
        warmup_steps: 2,
        grad_clip: Some(1.0),
        ema_decay: Some(0.9),
        weight_decay: 0.01,
        checkpoint_every: 3,
        seed: 7,
        out_dir: dir.to_path_buf(),
        ..TrainerConfig::default()
    }
}

/// Rank `rank` of `world`'s share of the batch of `step` (the whole batch when world = 1).
fn loss(net: &UNet, step: usize, rank: i64, world: i64) -> unet_core::Result<Tensor> {
    // Fixed data per step (independent of the trainer's per-rank seeding).
    let all = Tensor::arange(BATCH * 16, (Kind::Float, Device::Cpu)).reshape([BATCH, 1, 16]);
    let all = (all * 0.37 + step as f64 * 1.3).sin();
    let n = BATCH / world;
    let x = all.narrow(0, rank * n, n);
    let y = x.roll([1], [2]).cos();
    Ok((net.forward_t(&x, true)? - y).square().mean(Kind::Float))
}

fn spawn(test: &str, role: &str, rank: usize, world: usize, port: u16, dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DIR, dir)
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("OMP_NUM_THREADS", "1")
        .env("UNET_RS_DIST_TIMEOUT_S", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child, what: &str) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Worker of the equality test: 3 steps, a crash at step 4 on both ranks, then a fresh
/// process-like restart (new model from another seed, new trainer) that resumes rank 0's
/// checkpoint and finishes.
fn ddp_worker(dir: &Path) -> unet_core::Result<()> {
    tch::set_num_threads(1);
    let g = distributed::init_from_env()?.expect("launched with WORLD_SIZE");
    let (rank, world) = (g.rank() as i64, g.world_size() as i64);
    let out = dir.join("ddp");
    let (mut vs, net) = model(1 + rank);
    let mut t = Trainer::new(&vs, config(&out, STEPS))?;
    assert!(!t.resume(&mut vs)?);
    let crashed = t.run(&mut vs, |s| {
        if s == 3 {
            return Err(Error::config("simulated", s, "crash"));
        }
        loss(&net, s, rank, world)
    });
    assert!(crashed.is_err());
    let (mut vs, net) = model(99 + rank);
    let mut t = Trainer::new(&vs, config(&out, STEPS))?;
    assert!(t.resume(&mut vs)?, "every rank learns that rank 0 resumed");
    assert_eq!(t.step(), 3);
    t.run(&mut vs, |s| loss(&net, s, rank, world))?;
    checkpoint::save(&vs, dir.join(format!("rank{rank}.safetensors")), None)?;
    Ok(())
}

/// Worker of the kill test: trains until killed or until its peer is lost.
fn endless_worker(dir: &Path) -> unet_core::Result<()> {
    tch::set_num_threads(1);
    let g = distributed::init_from_env()?.expect("launched with WORLD_SIZE");
    let (rank, world) = (g.rank() as i64, g.world_size() as i64);
    let (mut vs, net) = model(1);
    let mut cfg = config(&dir.join("endless"), 1_000_000);
    cfg.checkpoint_every = 0;
    let mut t = Trainer::new(&vs, cfg)?;
    t.run(&mut vs, |s| {
        if s == 2 {
            std::fs::write(dir.join(format!("running{rank}")), b"").unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        loss(&net, s, rank, world)
    })
}

fn as_worker() -> bool {
    let Ok(role) = std::env::var(ROLE) else { return false };
    let dir = PathBuf::from(std::env::var_os(DIR).unwrap());
    let r = match role.as_str() {
        "ddp" => ddp_worker(&dir),
        "endless" => endless_worker(&dir),
        _ => panic!("unknown role {role}"),
    };
    if let Err(e) = r {
        eprintln!("worker error: {e}");
        std::process::exit(3);
    }
    true
}

#[test]
fn two_ranks_on_half_batches_match_one_rank_on_the_whole_batch() {
    if as_worker() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let kids: Vec<Child> = (0..2)
        .map(|r| {
            spawn(
                "two_ranks_on_half_batches_match_one_rank_on_the_whole_batch",
                "ddp",
                r,
                2,
                port,
                dir.path(),
            )
        })
        .collect();

    // The reference: one process, the whole batch, no interruption.
    tch::set_num_threads(1);
    let (mut vs, net) = model(1);
    let reference = dir.path().join("single");
    let mut t = Trainer::new(&vs, config(&reference, STEPS)).unwrap();
    t.run(&mut vs, |s| loss(&net, s, 0, 1)).unwrap();
    let single_losses = t.losses().to_vec();

    for (r, k) in kids.into_iter().enumerate() {
        let (ok, text) = finish(k, &format!("rank {r}"));
        assert!(ok, "{text}");
    }
    let ck = checkpoint::read(dir.path().join("ddp").join(CHECKPOINT)).unwrap();
    assert_eq!(ck.metadata["step"], STEPS.to_string());
    let rank1 = checkpoint::read(dir.path().join("rank1.safetensors")).unwrap();
    let rank0 = checkpoint::read(dir.path().join("rank0.safetensors")).unwrap();
    let mine = vs.variables();
    let mut worst = 0f64;
    for (k, x) in &mine {
        let ddp = &ck.tensors[&format!("model.{k}")];
        let diff = (x - ddp).abs().max().double_value(&[]);
        worst = worst.max(diff);
        assert!(diff < 1e-4, "{k}: 2 ranks differ from 1 rank by {diff}");
        assert!(rank0.tensors[k].equal(&rank1.tensors[k]), "{k}: ranks 0 and 1 disagree");
        assert!(rank0.tensors[k].equal(ddp), "{k}: rank 0's weights are not its checkpoint's");
    }
    eprintln!(
        "{} variables after {STEPS} steps: 2 ranks vs 1 rank, max |Δ| = {worst:.2e}",
        mine.len()
    );
    // Only rank 0 logs: one line per step, the mean of the ranks' losses = the whole-batch loss.
    let log = std::fs::read_to_string(dir.path().join("ddp").join("metrics.jsonl")).unwrap();
    let logged: Vec<f64> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(logged.len(), STEPS, "{log}");
    for (a, (_, b)) in logged.iter().zip(&single_losses) {
        assert!((a - b).abs() < 1e-5 * b.abs().max(1.0), "logged {a} vs single-process {b}");
    }
}

/// Waits for `path` to exist (a worker got going).
fn wait_for(path: &Path, kids: &mut [Child]) {
    let t0 = Instant::now();
    while !path.exists() {
        for k in kids.iter_mut() {
            if let Ok(Some(s)) = k.try_wait() {
                panic!("a worker exited early with {s}");
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "workers did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_killed_rank_stops_the_other_with_an_error_naming_it() {
    if as_worker() {
        return;
    }
    for victim in [1usize, 0] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let name = "a_killed_rank_stops_the_other_with_an_error_naming_it";
        let mut kids: Vec<Child> =
            (0..2).map(|r| spawn(name, "endless", r, 2, port, dir.path())).collect();
        wait_for(&dir.path().join(format!("running{}", 1 - victim)), &mut kids);
        wait_for(&dir.path().join(format!("running{victim}")), &mut kids);
        kids[victim].kill().unwrap();
        let _ = kids[victim].wait();
        let t0 = Instant::now();
        let survivor = kids.remove(1 - victim);
        let (ok, text) = finish(survivor, &format!("survivor of rank {victim}'s death"));
        let took = t0.elapsed();
        assert!(!ok, "{text}");
        assert!(text.contains(&format!("lost rank {victim}")), "{text}");
        assert!(took < Duration::from_secs(60), "took {took:?}: {text}");
        let said = text.lines().find(|l| l.starts_with("worker error")).unwrap_or_default();
        eprintln!("rank {victim} killed: the survivor stopped after {took:.1?}: {said}");
    }
}

#[test]
fn launches_that_cannot_work_are_clear_errors() {
    let vars = |pairs: &[(&str, &str)]| {
        let owned: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LaunchEnv::from_vars(move |k| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    };
    assert_eq!(vars(&[]).unwrap(), None, "no WORLD_SIZE: one process");
    let env =
        vars(&[("WORLD_SIZE", "4"), ("RANK", "3"), ("MASTER_PORT", "1234")]).unwrap().unwrap();
    assert_eq!((env.rank, env.world_size, env.local_rank, env.master_port), (3, 4, 3, 1234));
    assert_eq!(env.master_addr, "127.0.0.1");
    for (bad, field) in [
        (vec![("WORLD_SIZE", "2"), ("RANK", "2")], "RANK"),
        (vec![("WORLD_SIZE", "2")], "RANK"),
        (vec![("WORLD_SIZE", "two"), ("RANK", "0")], "WORLD_SIZE"),
        (vec![("WORLD_SIZE", "0"), ("RANK", "0")], "WORLD_SIZE"),
        (vec![("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_PORT", "70000")], "MASTER_PORT"),
    ] {
        let e = vars(&bad).unwrap_err().to_string();
        assert!(e.contains(field), "{bad:?}: {e}");
    }

    let opts = GroupOptions { timeout: Duration::from_secs(2), ..GroupOptions::default() };
    // Rank 0 of a world of 2 whose second rank never comes: a time-out, not a hang.
    let lonely = LaunchEnv { world_size: 2, master_port: free_port(), ..env.clone() };
    let lonely = LaunchEnv { rank: 0, local_rank: 0, ..lonely };
    let t0 = Instant::now();
    let e = Group::init(&lonely, &opts).unwrap_err().to_string();
    assert!(e.contains("rendezvous of 2 ranks") && e.contains("WORLD_SIZE"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(30));
    // Rank 1 with no store to reach.
    let orphan = LaunchEnv { rank: 1, local_rank: 1, ..lonely };
    let e = Group::init(&orphan, &opts).unwrap_err().to_string();
    assert!(e.contains("rank 1") && e.contains("is rank 0 running"), "{e}");
}

/// Two ranks as two threads of this process: collectives, bucketing, and the layout check.
#[test]
fn collectives_and_the_layout_check() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let port = free_port();
    let opts = GroupOptions {
        timeout: Duration::from_secs(30),
        bucket_bytes: 64,
        ..GroupOptions::default()
    };
    let ranks: Vec<_> = (0..2usize)
        .map(|rank| {
            let opts = opts.clone();
            std::thread::spawn(move || -> Result<Vec<f64>, String> {
                let env = LaunchEnv {
                    master_addr: "127.0.0.1".into(),
                    master_port: port,
                    rank,
                    world_size: 2,
                    local_rank: rank,
                };
                let g = Arc::new(Group::init(&env, &opts).map_err(|e| e.to_string())?);
                let r = rank as f64;
                let mut t = Tensor::from_slice(&[1.0f32 + r as f32, 2.0]);
                g.all_reduce_sum(&mut t, "sum").map_err(|e| e.to_string())?;
                let mut b = Tensor::from_slice(&[r + 10.0]);
                g.broadcast(&mut b, 1, "broadcast").map_err(|e| e.to_string())?;
                // 3 tensors over 64-byte buckets: several collectives, shapes and kinds kept.
                let parts = [
                    Tensor::full([3, 4], r, (Kind::Float, Device::Cpu)),
                    Tensor::full([5], 2.0 * r, (Kind::Double, Device::Cpu)),
                    Tensor::full([2, 2, 2], 1.0, (Kind::Float, Device::Cpu)),
                ];
                let mean = g.all_reduce_mean(&parts, "mean").map_err(|e| e.to_string())?;
                assert_eq!(mean[0].size(), vec![3, 4]);
                assert_eq!(mean[1].kind(), Kind::Double);
                let targets = [Tensor::zeros([7], (Kind::Float, Device::Cpu)) + r];
                g.broadcast_all(&targets, 0, "broadcast_all").map_err(|e| e.to_string())?;
                g.agree("answer", "42").map_err(|e| e.to_string())?;
                let layout = g.agree("model variables", &format!("layout {rank}"));
                g.barrier("barrier").map_err(|e| e.to_string())?;
                let mut out = Vec::<f64>::try_from(&t.to_kind(Kind::Double)).unwrap();
                out.push(b.double_value(&[0]));
                out.push(mean[0].mean(Kind::Double).double_value(&[]));
                out.push(mean[1].mean(Kind::Double).double_value(&[]));
                out.push(mean[2].mean(Kind::Double).double_value(&[]));
                out.push(targets[0].sum(Kind::Double).double_value(&[]));
                let e = layout.unwrap_err().to_string();
                if !e.contains(&format!("rank {} differs", 1 - rank)) {
                    return Err(e);
                }
                Ok(out)
            })
        })
        .collect();
    for h in ranks {
        let out = h.join().unwrap().unwrap();
        assert_eq!(out, vec![3.0, 4.0, 11.0, 0.5, 1.0, 1.0, 0.0]);
    }
}

#[test]
fn sharded_sampler_splits_every_epoch() {
    let shards: Vec<ShardedSampler> =
        (0..3).map(|r| ShardedSampler::new(10, r, 3, 5, true).unwrap()).collect();
    let mut all: Vec<i64> = shards.iter().flat_map(|s| s.indices(0)).collect();
    assert_eq!(all.len(), 12, "padded to a multiple of the world size");
    all.sort();
    all.dedup();
    assert_eq!(all, (0..10).collect::<Vec<_>>(), "the shards cover the set");
    assert_eq!(shards[1].indices(0), shards[1].indices(0), "deterministic");
    assert_ne!(shards[1].indices(0), shards[1].indices(1), "a new order each epoch");
    let unshuffled = ShardedSampler::new(10, 1, 3, 5, false).unwrap();
    assert_eq!(unshuffled.indices(4), vec![1, 4, 7, 0]);
    // Batches run through an epoch and on into the next.
    let s = &shards[0];
    let b = s.batch(1, 3);
    let (e0, e1) = (s.indices(0), s.indices(1));
    assert_eq!(b, vec![e0[3], e1[0], e1[1]]);
    assert!(ShardedSampler::new(0, 0, 1, 0, true).is_err());
    assert!(ShardedSampler::new(5, 2, 2, 0, true).is_err());
    assert!(distributed::is_primary(), "no group in this process");
}
