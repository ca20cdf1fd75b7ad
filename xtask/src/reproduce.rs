//! `cargo xtask reproduce <model> [--nproc N]`: provision libtorch, build, run the model's
//! reproduction, in one process or as N data-parallel workers on this machine.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::util::{cargo, run_cmd, step, workspace_root};

/// Models whose runners train data-parallel (see `unet_core::distributed`).
pub const DATA_PARALLEL: &[&str] = &["ddpm"];

/// Runs `<crate> reproduce <model> --out target/reproduce/<model> [args]`; with `--nproc N`
/// (N > 1) builds the runner once and launches N workers with torchrun's variables.
pub fn run(model: &str, args: &[String]) -> Result<()> {
    let krate = crate::models::find(model)?;
    let (nproc, args) = take_nproc(args)?;
    if nproc > 1 && !DATA_PARALLEL.contains(&model) {
        bail!(
            "`{model}` does not train data-parallel yet; --nproc works with: {}",
            DATA_PARALLEL.join(", ")
        );
    }
    let env = crate::setup::run()?;
    if nproc > 1 {
        crate::test::ensure_gloo_headers()?;
    }
    let out = workspace_root().join("target").join("reproduce").join(model);
    let data = crate::util::cache_dir()?.join("datasets");
    if nproc <= 1 {
        step(&format!("building {krate} and running the `{model}` reproduction"));
        run_cmd(
            cargo(&env)
                .args(["run", "--quiet", "-p", krate, "--bin", krate, "--", "reproduce", model])
                .arg("--out")
                .arg(&out)
                .arg("--data-cache")
                .arg(&data)
                .args(&args),
        )?;
    } else {
        step(&format!("building {krate}"));
        run_cmd(cargo(&env).args(["build", "--quiet", "-p", krate, "--bin", krate]))?;
        let bin = workspace_root().join("target").join("debug").join(krate);
        step(&format!("running the `{model}` reproduction as {nproc} data-parallel workers"));
        launch(nproc, &bin, |cmd| {
            env.apply(cmd);
            cmd.arg("reproduce").arg(model).arg("--out").arg(&out).arg("--data-cache").arg(&data);
            cmd.args(&args);
        })?;
    }
    step(&format!("report: {}", out.join("report.md").display()));
    Ok(())
}

/// Splits `--nproc N` (or `--nproc=N`) off the runner's arguments.
fn take_nproc(args: &[String]) -> Result<(usize, Vec<String>)> {
    let mut rest = Vec::new();
    let mut nproc = 1;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = if a == "--nproc" {
            Some(it.next().context("--nproc needs a number of processes")?.clone())
        } else {
            a.strip_prefix("--nproc=").map(str::to_string)
        };
        match value {
            Some(v) => {
                nproc = v.parse().ok().filter(|n| *n >= 1).with_context(|| {
                    format!("--nproc {v}: need a whole number of processes, at least 1")
                })?;
            }
            None => rest.push(a.clone()),
        }
    }
    Ok((nproc, rest))
}

/// A free TCP port on the loopback interface for the rendezvous store.
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("no free local TCP port")?;
    Ok(l.local_addr()?.port())
}

/// Starts `n` copies of `bin` as ranks 0..n of one loopback launch (MASTER_ADDR, MASTER_PORT,
/// RANK, WORLD_SIZE, LOCAL_RANK; OMP_NUM_THREADS = cores / n unless set) and waits for all.
/// When a worker fails, the others get 30 s to stop on their own error (they name the lost
/// rank) before they are killed; the error names the first rank that failed.
pub fn launch(n: usize, bin: &std::path::Path, configure: impl Fn(&mut Command)) -> Result<()> {
    let port = free_port()?;
    let cores = std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1);
    let threads = (cores / n).max(1).to_string();
    let mut kids: Vec<(usize, Child)> = Vec::new();
    for rank in 0..n {
        let mut cmd = Command::new(bin);
        configure(&mut cmd);
        cmd.env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", n.to_string())
            .env("LOCAL_RANK", rank.to_string());
        if std::env::var_os("OMP_NUM_THREADS").is_none() {
            cmd.env("OMP_NUM_THREADS", &threads);
        }
        let child = cmd.spawn().with_context(|| format!("cannot start rank {rank}: {cmd:?}"))?;
        kids.push((rank, child));
    }
    let mut failed: Option<(usize, String)> = None;
    let mut deadline: Option<Instant> = None;
    while !kids.is_empty() {
        let mut i = 0;
        while i < kids.len() {
            match kids[i].1.try_wait()? {
                Some(status) => {
                    let (rank, _) = kids.remove(i);
                    if !status.success() && failed.is_none() {
                        eprintln!(
                            "rank {rank} failed ({status}); waiting up to 30 s for the others"
                        );
                        failed = Some((rank, status.to_string()));
                        deadline = Some(Instant::now() + Duration::from_secs(30));
                    }
                }
                None => i += 1,
            }
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            for (rank, k) in &mut kids {
                eprintln!("killing rank {rank}");
                let _ = k.kill();
                let _ = k.wait();
            }
            kids.clear();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some((rank, status)) = failed {
        bail!("data-parallel run failed: rank {rank} exited with {status} (its error is above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::take_nproc;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nproc_is_taken_off_the_runner_arguments() {
        let (n, rest) = take_nproc(&args(&["--steps", "5", "--nproc", "2", "--quiet"])).unwrap();
        assert_eq!((n, rest), (2, args(&["--steps", "5", "--quiet"])));
        let (n, rest) = take_nproc(&args(&["--nproc=3"])).unwrap();
        assert_eq!((n, rest.len()), (3, 0));
        assert_eq!(take_nproc(&args(&["--steps", "5"])).unwrap().0, 1);
        for bad in [&["--nproc"][..], &["--nproc", "0"], &["--nproc", "two"]] {
            let e = take_nproc(&args(bad)).unwrap_err().to_string();
            assert!(e.contains("--nproc"), "{e}");
        }
    }
}
