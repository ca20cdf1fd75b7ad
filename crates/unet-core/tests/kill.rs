//! A training process killed with SIGKILL while writing checkpoints leaves the last complete
//! checkpoint loadable. The test re-executes its own binary as the writer and kills it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tch::{nn, Device, Kind};
use unet_core::checkpoint;

const CHILD_ENV: &str = "UNET_RS_KILL_TEST_DIR";

fn store() -> nn::VarStore {
    let vs = nn::VarStore::new(Device::Cpu);
    // ~32 MB of weights so that a write takes long enough to be interrupted.
    let _ = vs.root().randn("big", &[8_000_000], 0.0, 1.0);
    let _ = vs.root().zeros("small", &[3]);
    vs
}

#[test]
fn sigkill_during_checkpoint_writes_keeps_the_last_checkpoint() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        // Writer: overwrite the checkpoint forever, each with a new value of `small`.
        let vs = store();
        let path = PathBuf::from(dir).join("ckpt.safetensors");
        for i in 0.. {
            tch::no_grad(|| {
                let _ = vs.variables()["small"].shallow_clone().fill_(i as f64);
            });
            checkpoint::save(&vs, &path, None).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let exe = std::env::current_exe().unwrap();
    for round in 0..3u64 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "sigkill_during_checkpoint_writes_keeps_the_last_checkpoint",
                "--nocapture",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !path.exists() && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(150 + 97 * round));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let mut vs = store();
        checkpoint::load_strict(&mut vs, &path).unwrap();
        let small = vs.variables()["small"].copy();
        assert!(small.min().double_value(&[]) >= 0.0);
        assert_eq!(small.max().double_value(&[]), small.min().double_value(&[]), "a torn write");
        let _ = small.to_kind(Kind::Float);
    }
}
