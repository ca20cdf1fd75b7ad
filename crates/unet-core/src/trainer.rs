//! A trainer people can trust: AdamW/Adam implemented on tensors (so their state can be saved),
//! learning-rate warm-up and cosine decay, gradient clipping, EMA of weights, bf16/fp16
//! autocast on CUDA, per-step seeding for deterministic CPU runs, a NaN/Inf guard, periodic
//! atomic checkpoints (model, optimiser moments, EMA, step) with exact `--resume`, a progress
//! bar with loss and throughput, a JSONL metrics log and a loss plot.
//!
//! ```no_run
//! # use tch::{nn, Device, Kind, Tensor};
//! # use unet_core::trainer::{Trainer, TrainerConfig};
//! # fn main() -> unet_core::Result<()> {
//! let mut vs = nn::VarStore::new(Device::Cpu);
//! let w = vs.root().randn("w", &[4], 0.0, 1.0);
//! let cfg = TrainerConfig { total_steps: 100, out_dir: "runs/toy".into(), ..Default::default() };
//! let mut trainer = Trainer::new(&vs, cfg)?;
//! trainer.resume(&mut vs)?; // continues exactly where a previous run stopped
//! trainer.run(&mut vs, |_step| Ok((&w - 1.0).square().sum(Kind::Float)))?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::checkpoint::{self, named_variables, to_bytes, write_atomic};
use crate::distributed::{self, Group};
use crate::report::{cosine_lr, plot_lines, progress_bar, smooth, Series};
use crate::{Error, Result};

/// Optimiser family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum OptimizerKind {
    /// Adam with L2 weight decay added to the gradient (Kingma & Ba 2015).
    Adam,
    /// AdamW with decoupled weight decay (Loshchilov & Hutter 2019).
    #[default]
    AdamW,
}

/// Mixed precision for CUDA runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Precision {
    /// float32 everywhere.
    #[default]
    F32,
    /// libtorch autocast (bf16/fp16 per op policy) around the loss computation on CUDA.
    Autocast,
}

/// Configuration of a [`Trainer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Adam β₁, β₂.
    pub betas: (f64, f64),
    /// Adam ε.
    pub eps: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// Total optimiser steps (the cosine decays over them).
    pub total_steps: usize,
    /// Final learning rate as a fraction of the peak.
    pub min_lr_ratio: f64,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Exponential moving average of the weights with this decay.
    pub ema_decay: Option<f64>,
    /// Write a checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: usize,
    /// Base seed; step `s` runs under `manual_seed(seed + s)`.
    pub seed: u64,
    /// Folder for `checkpoint.safetensors`, `metrics.jsonl`, `loss.png`.
    pub out_dir: PathBuf,
    /// Mixed precision (CUDA only; ignored on CPU).
    pub precision: Precision,
    /// Show a progress bar.
    pub progress: bool,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            optimizer: OptimizerKind::AdamW,
            warmup_steps: 0,
            total_steps: 1000,
            min_lr_ratio: 0.1,
            grad_clip: None,
            ema_decay: None,
            checkpoint_every: 0,
            seed: 0,
            out_dir: PathBuf::from("target/train"),
            precision: Precision::F32,
            progress: false,
        }
    }
}

impl TrainerConfig {
    /// The recipe of the project's small diffusion runs: AdamW at `lr` with 5 % linear warm-up
    /// and cosine decay to 5 %, gradient clipping at 1.0, EMA 0.995, a checkpoint every 500
    /// steps.
    pub fn diffusion(lr: f64, steps: usize, seed: u64, out_dir: PathBuf, progress: bool) -> Self {
        Self {
            lr,
            total_steps: steps,
            warmup_steps: steps / 20,
            min_lr_ratio: 0.05,
            grad_clip: Some(1.0),
            ema_decay: Some(0.995),
            checkpoint_every: 500,
            seed,
            out_dir,
            progress,
            ..Self::default()
        }
    }
}

/// Name of the checkpoint file in `out_dir`.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// The weights to use from a trainer checkpoint, by state-dict name: the trained variables
/// (`model.`), each replaced by its EMA copy (`ema.`) where the checkpoint has one. The EMA
/// covers trainable parameters only, so buffers (batch-norm statistics) come from `model.`.
pub fn inference_weights(ck: &checkpoint::Checkpoint) -> BTreeMap<String, Tensor> {
    let strip = |prefix: &'static str| -> BTreeMap<String, Tensor> {
        ck.tensors
            .iter()
            .filter_map(|(k, t)| Some((k.strip_prefix(prefix)?.to_string(), t.shallow_clone())))
            .collect()
    };
    let mut w = strip("model.");
    w.extend(strip("ema."));
    w
}

/// Loads the inference weights of the trainer checkpoint `path` ([`inference_weights`]) into
/// `vs`, strictly (every variable present with its shape, nothing left over).
pub fn load_inference_weights(vs: &mut VarStore, path: &std::path::Path) -> Result<()> {
    let ck = checkpoint::read(path)?;
    checkpoint::assign_strict(vs, &inference_weights(&ck), path, false)?;
    Ok(())
}

/// Drives optimisation of the trainable variables of one `VarStore`. For GANs, use one trainer
/// per network (separate optimisers) and alternate with [`crate::gan::phase`].
#[derive(Debug)]
pub struct Trainer {
    cfg: TrainerConfig,
    names: Vec<String>,
    params: Vec<Tensor>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    ema: Option<Vec<Tensor>>,
    /// Non-trainable variables (e.g. batch-norm statistics), saved with the model.
    buffers: Vec<(String, Tensor)>,
    step: usize,
    losses: Vec<(f64, f64)>,
    /// `elapsed_s` of the last logged step up to the resumed one (0 for a fresh run).
    logged_seconds: f64,
    started: Instant,
    /// The data-parallel group this trainer averages gradients over, if any.
    group: Option<Arc<Group>>,
    /// Whether this rank's state has been made identical to rank 0's.
    synced: bool,
}

impl Trainer {
    /// A trainer over the trainable variables of `vs` (fresh optimiser state, step 0).
    pub fn new(vs: &VarStore, cfg: TrainerConfig) -> Result<Self> {
        if cfg.lr.is_nan() || cfg.lr <= 0.0 || cfg.total_steps == 0 {
            return Err(Error::config(
                "lr/total_steps",
                (cfg.lr, cfg.total_steps),
                "need lr > 0 and at least one step",
            ));
        }
        if let Some(d) = cfg.ema_decay {
            if !(0.0..1.0).contains(&d) {
                return Err(Error::config("ema_decay", d, "must lie in [0, 1)"));
            }
        }
        let trainable: Vec<Tensor> = vs.trainable_variables();
        let vars = named_variables(vs);
        let mut names = Vec::new();
        let mut params = Vec::new();
        let mut buffers = Vec::new();
        for (k, t) in &vars {
            if trainable.iter().any(|p| p.data_ptr() == t.data_ptr()) {
                names.push(k.clone());
                params.push(t.shallow_clone());
            } else {
                buffers.push((k.clone(), t.shallow_clone()));
            }
        }
        let zeros = |ps: &[Tensor]| ps.iter().map(|p| p.zeros_like().detach()).collect::<Vec<_>>();
        let ema = cfg.ema_decay.map(|_| params.iter().map(|p| p.detach().copy()).collect());
        Ok(Self {
            m: zeros(&params),
            v: zeros(&params),
            ema,
            buffers,
            names,
            params,
            step: 0,
            losses: Vec::new(),
            logged_seconds: 0.0,
            started: Instant::now(),
            group: distributed::current(),
            synced: false,
            cfg,
        })
    }

    /// Trains data-parallel over `group` (or alone with `None`). [`Trainer::new`] already
    /// takes the group of [`distributed::init_from_env`] when this process joined one, so every
    /// rank must build and run the same trainers in the same order; a trainer that only one
    /// rank runs (say, an evaluation model on rank 0) needs `with_group(None)`.
    pub fn with_group(mut self, group: Option<Arc<Group>>) -> Self {
        self.group = group;
        self.synced = false;
        self
    }

    /// The data-parallel group, if any.
    pub fn group(&self) -> Option<&Arc<Group>> {
        self.group.as_ref()
    }

    /// Whether this process writes checkpoints, logs and plots: rank 0, or a run without a
    /// group.
    pub fn is_primary(&self) -> bool {
        self.group.as_ref().is_none_or(|g| g.rank() == 0)
    }

    /// Makes every rank's model, buffers, optimiser moments, EMA and step equal to rank 0's
    /// (after checking that all ranks hold the same variables). `found` is rank 0's answer
    /// to "was there a checkpoint", returned on every rank.
    fn sync_from_primary(&mut self, found: bool) -> Result<bool> {
        let Some(g) = self.group.clone() else { return Ok(found) };
        let layout: Vec<String> = self
            .names
            .iter()
            .zip(&self.params)
            .map(|(n, p)| format!("{n}{:?}{:?}", p.size(), p.kind()))
            .chain(self.buffers.iter().map(|(n, b)| format!("{n}{:?}{:?}", b.size(), b.kind())))
            .collect();
        // FNV-1a of the layout: equal on every rank that built the same model.
        let digest = layout.join(";").bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let digest = format!("{digest:016x}");
        g.agree("model variables", &format!("{} variables, layout {digest}", layout.len()))?;
        let mut all: Vec<Tensor> = self.params.iter().map(Tensor::shallow_clone).collect();
        all.extend(self.buffers.iter().map(|(_, b)| b.shallow_clone()));
        all.extend(self.m.iter().chain(&self.v).map(Tensor::shallow_clone));
        if let Some(e) = &self.ema {
            all.extend(e.iter().map(Tensor::shallow_clone));
        }
        g.broadcast_all(&all, 0, "broadcast of rank 0's model and optimiser state")?;
        let mut head = Tensor::from_slice(&[self.step as f64, found as i32 as f64]);
        g.broadcast(&mut head, 0, "broadcast of rank 0's step")?;
        let head = Vec::<f64>::try_from(&head)?;
        self.step = head[0] as usize;
        self.synced = true;
        Ok(head[1] != 0.0)
    }

    /// Steps taken so far.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Learning rate of the current step.
    pub fn lr(&self) -> f64 {
        cosine_lr(
            self.cfg.lr,
            self.step,
            self.cfg.total_steps,
            self.cfg.warmup_steps,
            self.cfg.min_lr_ratio,
        )
    }

    /// `(step, loss)` history of this process and the resumed run.
    pub fn losses(&self) -> &[(f64, f64)] {
        &self.losses
    }

    /// The EMA weights by variable name, if EMA is on.
    pub fn ema(&self) -> Option<BTreeMap<String, Tensor>> {
        self.ema
            .as_ref()
            .map(|e| self.names.iter().cloned().zip(e.iter().map(|t| t.shallow_clone())).collect())
    }

    /// Copies the EMA weights into the model (e.g. before sampling).
    pub fn load_ema_into_model(&self) {
        if let Some(e) = &self.ema {
            tch::no_grad(|| {
                for (p, s) in self.params.iter().zip(e) {
                    let mut p = p.shallow_clone();
                    p.copy_(s);
                }
            });
        }
    }

    /// One optimiser step on `loss`: NaN/Inf guard, backward, clipping, Adam(W), EMA, log.
    ///
    /// With a data-parallel group, the gradients are averaged over the ranks first (and the
    /// logged loss is the mean of the ranks' losses), so every rank takes the same step.
    pub fn update(&mut self, loss: &Tensor) -> Result<f64> {
        let mut value = loss.double_value(&[]);
        if !value.is_finite() && self.group.is_none() {
            return Err(Error::NonFinite { step: self.step, what: "loss", value });
        }
        for p in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        loss.backward();
        let grads = match self.group.clone() {
            None => self.params.iter().map(|p| p.grad()).collect(),
            Some(g) => {
                let (mean, grads) = self.average_gradients(&g, value)?;
                value = mean;
                grads
            }
        };
        let lr = self.lr();
        let (b1, b2) = self.cfg.betas;
        let t = (self.step + 1) as i32;
        let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let grad_norm = tch::no_grad(|| -> Result<f64> {
            let sq: f64 = grads
                .iter()
                .filter(|g| g.defined())
                .map(|g| g.square().sum(Kind::Double).double_value(&[]))
                .sum();
            let norm = sq.sqrt();
            if !norm.is_finite() {
                return Err(Error::NonFinite {
                    step: self.step,
                    what: "gradient norm",
                    value: norm,
                });
            }
            let scale = match self.cfg.grad_clip {
                Some(c) if norm > c => c / (norm + 1e-6),
                _ => 1.0,
            };
            for (i, (p, g)) in self.params.iter().zip(grads).enumerate() {
                if !g.defined() {
                    continue;
                }
                let mut p = p.shallow_clone();
                let mut g = g * scale;
                match self.cfg.optimizer {
                    OptimizerKind::Adam if self.cfg.weight_decay > 0.0 => {
                        g += &p * self.cfg.weight_decay
                    }
                    OptimizerKind::AdamW if self.cfg.weight_decay > 0.0 => {
                        let _ = p.g_mul_scalar_(1.0 - lr * self.cfg.weight_decay);
                    }
                    _ => {}
                }
                let m = &mut self.m[i];
                let _ = m.g_mul_scalar_(b1);
                let _ = m.g_add_(&(&g * (1.0 - b1)));
                let v = &mut self.v[i];
                let _ = v.g_mul_scalar_(b2);
                let _ = v.g_add_(&(g.square() * (1.0 - b2)));
                let denom = (&*v / bc2).sqrt() + self.cfg.eps;
                let upd = (&*m / bc1) / denom * lr;
                let _ = p.g_sub_(&upd);
                if let (Some(ema), Some(d)) = (self.ema.as_mut(), self.cfg.ema_decay) {
                    let e = &mut ema[i];
                    let _ = e.g_mul_scalar_(d);
                    let _ = e.g_add_(&(&p * (1.0 - d)));
                }
            }
            Ok(norm)
        })?;
        self.step += 1;
        if let Some(g) = self.group.as_ref().filter(|_| !self.buffers.is_empty()) {
            // Like PyTorch's DDP (broadcast_buffers): every rank continues with rank 0's
            // running statistics.
            let bufs: Vec<Tensor> = self.buffers.iter().map(|(_, b)| b.shallow_clone()).collect();
            g.broadcast_all(
                &bufs,
                0,
                &format!("broadcast of rank 0's buffers at step {}", self.step),
            )?;
        }
        self.losses.push((self.step as f64, value));
        self.log(value, lr, grad_norm)?;
        if self.cfg.checkpoint_every > 0 && self.step % self.cfg.checkpoint_every == 0 {
            self.save()?;
        }
        Ok(value)
    }

    /// All-reduces this rank's loss and gradients: returns the mean loss and the mean
    /// gradient of every parameter (undefined where no rank produced one, zeros standing in
    /// for a rank that did not). A non-finite loss on any rank stops every rank.
    fn average_gradients(&self, g: &Group, value: f64) -> Result<(f64, Vec<Tensor>)> {
        let step = self.step + 1;
        let local: Vec<Tensor> = self.params.iter().map(|p| p.grad()).collect();
        let mut head: Vec<f64> = vec![value];
        head.extend(local.iter().map(|t| t.defined() as i32 as f64));
        let mut head_t = Tensor::from_slice(&head).to_device(g.device());
        g.all_reduce_sum(&mut head_t, &format!("all-reduce of the losses at step {step}"))?;
        let head = Vec::<f64>::try_from(&head_t.to_device(Device::Cpu))?;
        let mean = head[0] / g.world_size() as f64;
        if !mean.is_finite() {
            return Err(Error::NonFinite {
                step: self.step,
                what: "loss (mean over ranks)",
                value: mean,
            });
        }
        let used: Vec<usize> = (0..local.len()).filter(|&i| head[i + 1] > 0.0).collect();
        let filled: Vec<Tensor> = used
            .iter()
            .map(|&i| {
                if local[i].defined() {
                    local[i].shallow_clone()
                } else {
                    self.params[i].zeros_like()
                }
            })
            .collect();
        let averaged =
            g.all_reduce_mean(&filled, &format!("all-reduce of the gradients at step {step}"))?;
        let mut grads: Vec<Tensor> = self.params.iter().map(|_| Tensor::new()).collect();
        for (i, a) in used.into_iter().zip(averaged) {
            grads[i] = a;
        }
        Ok((mean, grads))
    }

    fn log(&self, loss: f64, lr: f64, grad_norm: f64) -> Result<()> {
        if !self.is_primary() {
            return Ok(());
        }
        let path = self.cfg.out_dir.join("metrics.jsonl");
        std::fs::create_dir_all(&self.cfg.out_dir)
            .map_err(|e| Error::Io { path: self.cfg.out_dir.clone(), source: e })?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::Io { path: path.clone(), source: e })?;
        let line = serde_json::json!({
            "step": self.step, "loss": loss, "lr": lr, "grad_norm": grad_norm,
            "elapsed_s": self.started.elapsed().as_secs_f64(),
        });
        writeln!(f, "{line}").map_err(|e| Error::Io { path, source: e })
    }

    /// Writes model variables (with buffers), optimiser moments, EMA and the step to
    /// `out_dir/checkpoint.safetensors` atomically.
    /// Only rank 0 of a data-parallel group writes; the others return at once.
    pub fn save(&self) -> Result<()> {
        if !self.is_primary() {
            return Ok(());
        }
        let mut all: BTreeMap<String, Tensor> = BTreeMap::new();
        for (i, n) in self.names.iter().enumerate() {
            all.insert(format!("optim.m.{n}"), self.m[i].shallow_clone());
            all.insert(format!("optim.v.{n}"), self.v[i].shallow_clone());
            if let Some(e) = &self.ema {
                all.insert(format!("ema.{n}"), e[i].shallow_clone());
            }
        }
        self.save_with(all)
    }

    fn save_with(&self, mut all: BTreeMap<String, Tensor>) -> Result<()> {
        for (n, p) in self.names.iter().zip(&self.params) {
            all.insert(format!("model.{n}"), p.shallow_clone());
        }
        for (n, t) in &self.buffers {
            all.insert(format!("model.{n}"), t.shallow_clone());
        }
        let meta = HashMap::from([
            ("step".to_string(), self.step.to_string()),
            ("trainer".to_string(), serde_json::to_string(&self.cfg).unwrap_or_default()),
        ]);
        write_atomic(&self.cfg.out_dir.join(CHECKPOINT), &to_bytes(&all, Some(meta))?)
    }

    /// Continues from `out_dir/checkpoint.safetensors` if it exists: model (strict), moments,
    /// EMA, step and the loss history of `metrics.jsonl`. Without a checkpoint, removes a stale
    /// `metrics.jsonl`. Returns whether a checkpoint was found.
    ///
    /// In a data-parallel group, rank 0 reads its `out_dir` (the others touch no files) and
    /// its state is broadcast to every rank, so a resumed group continues in step.
    pub fn resume(&mut self, vs: &mut VarStore) -> Result<bool> {
        let found = if self.is_primary() { self.resume_local(vs)? } else { false };
        self.sync_from_primary(found)
    }

    fn resume_local(&mut self, vs: &mut VarStore) -> Result<bool> {
        let path = self.cfg.out_dir.join(CHECKPOINT);
        if !path.exists() {
            // Nothing to continue: a log left by an earlier, discarded run would mix with this
            // one's, so a fresh run starts a fresh `metrics.jsonl`.
            let _ = std::fs::remove_file(self.cfg.out_dir.join("metrics.jsonl"));
            return Ok(false);
        }
        let ck = checkpoint::read(&path)?;
        let strip = |prefix: &str| -> BTreeMap<String, Tensor> {
            ck.tensors
                .iter()
                .filter_map(|(k, t)| {
                    k.strip_prefix(prefix).map(|n| (n.to_string(), t.shallow_clone()))
                })
                .collect()
        };
        checkpoint::assign_strict(vs, &strip("model."), &path, false)?;
        let (m, v, ema) = (strip("optim.m."), strip("optim.v."), strip("ema."));
        tch::no_grad(|| -> Result<()> {
            for (i, n) in self.names.iter().enumerate() {
                let get = |map: &BTreeMap<String, Tensor>, what: &str| {
                    map.get(n).map(|t| t.shallow_clone()).ok_or_else(|| Error::CorruptCheckpoint {
                        path: path.clone(),
                        reason: format!("no {what} for `{n}`"),
                    })
                };
                self.m[i].copy_(&get(&m, "first moment")?);
                self.v[i].copy_(&get(&v, "second moment")?);
                if let Some(e) = self.ema.as_mut() {
                    e[i].copy_(&get(&ema, "EMA weight")?);
                }
            }
            Ok(())
        })?;
        self.step = ck.metadata.get("step").and_then(|s| s.parse().ok()).ok_or_else(|| {
            Error::CorruptCheckpoint { path: path.clone(), reason: "no step in metadata".into() }
        })?;
        // The loss history of the steps before the checkpoint, so plots cover the whole run.
        if let Ok(text) = std::fs::read_to_string(self.cfg.out_dir.join("metrics.jsonl")) {
            let up_to_now: Vec<serde_json::Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|v| {
                    v.get("step").and_then(|s| s.as_f64()).is_some_and(|s| s <= self.step as f64)
                })
                .collect();
            self.losses = up_to_now
                .iter()
                .filter_map(|v| Some((v.get("step")?.as_f64()?, v.get("loss")?.as_f64()?)))
                .collect();
            self.logged_seconds =
                up_to_now.iter().rev().find_map(|v| v.get("elapsed_s")?.as_f64()).unwrap_or(0.0);
        }
        Ok(true)
    }

    /// The training time `metrics.jsonl` recorded up to the step a resume continued from (the
    /// `elapsed_s` of that process); 0 for a fresh run. A run resumed after it had finished
    /// reports this instead of its own (zero) training time.
    pub fn logged_seconds(&self) -> f64 {
        self.logged_seconds
    }

    /// Runs steps `step()..total_steps`: each under `manual_seed(seed + step)` (so a resumed run
    /// repeats exactly what an uninterrupted one does on the CPU), with `loss_fn(step)` computing
    /// the loss. Ends with a checkpoint and `loss.png`.
    pub fn run(
        &mut self,
        vs: &mut VarStore,
        mut loss_fn: impl FnMut(usize) -> Result<Tensor>,
    ) -> Result<()> {
        let pb = progress_bar(self.cfg.total_steps as u64, "train");
        if !self.cfg.progress || !self.is_primary() {
            pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        pb.set_position(self.step as u64);
        let autocast = self.cfg.precision == Precision::Autocast && vs.device() != Device::Cpu;
        if !self.synced {
            self.sync_from_primary(false)?;
        }
        let rank = self.group.as_ref().map_or(0, |g| g.rank() as u64);
        let t0 = Instant::now();
        let first = self.step;
        while self.step < self.cfg.total_steps {
            // Each rank draws its own data and noise: rank r runs under seed + step + r·2³².
            tch::manual_seed(
                self.cfg.seed.wrapping_add(self.step as u64).wrapping_add(rank << 32) as i64
            );
            let step = self.step;
            let loss = tch::autocast(autocast, || loss_fn(step))?;
            let value = self.update(&loss)?;
            let rate = (self.step - first) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            pb.set_message(format!("loss {value:.4}  {rate:.1} steps/s"));
            pb.inc(1);
        }
        pb.finish();
        self.save()?;
        self.plot()
    }

    /// Writes `loss.png` (raw and smoothed).
    pub fn plot(&self) -> Result<()> {
        if self.losses.is_empty() || !self.is_primary() {
            return Ok(());
        }
        let pts = self.losses.clone();
        plot_lines(
            &self.cfg.out_dir.join("loss.png"),
            "training loss",
            "step",
            "loss",
            &[
                Series::new("loss", pts.clone()).faint(),
                Series::new("EMA 0.05", smooth(&pts, 0.05)),
            ],
            pts.iter().all(|p| p.1 > 0.0),
        )
    }
}
