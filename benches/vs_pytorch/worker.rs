//! The long-lived PyTorch worker (`benches/pytorch/worker.py`): a child process spoken to over
//! stdin/stdout, one JSON object per line each way.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// A running worker.
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    /// Starts `python script`; its stderr is inherited (library warnings, tracebacks).
    pub fn start(python: &Path, script: &Path) -> Result<Self> {
        let mut child = Command::new(python)
            .arg("-u")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {} {}", python.display(), script.display()))?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("worker stdout")?);
        Ok(Self { child, stdin, stdout })
    }

    /// Sends `msg` and waits for the reply; a reply with `ok: false` is an error.
    pub fn call(&mut self, msg: Value) -> Result<Value> {
        let cmd = msg["cmd"].as_str().unwrap_or("?").to_string();
        writeln!(self.stdin, "{msg}").context("writing to the PyTorch worker")?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the PyTorch worker exited during `{cmd}` (see its stderr above)");
        }
        let reply: Value = serde_json::from_str(&line)
            .with_context(|| format!("unreadable reply to `{cmd}`: {line}"))?;
        if reply["ok"] != json!(true) {
            bail!("PyTorch worker, `{cmd}`: {}", reply["error"]);
        }
        Ok(reply)
    }

    /// Asks the worker to quit and waits for it.
    pub fn quit(mut self) -> Result<()> {
        writeln!(self.stdin, "{}", json!({"cmd": "quit"}))?;
        self.stdin.flush()?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("the PyTorch worker exited with {status}");
        }
        Ok(())
    }
}
