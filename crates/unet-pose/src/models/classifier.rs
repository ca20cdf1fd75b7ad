//! The motion classifier this crate trains itself. Its 128-d penultimate features define the
//! **motion FD** (Fréchet distance between generated and real windows in that space, as
//! Action2Motion and MDM evaluate action-conditioned generation with their own recognition
//! network), the diversity metric and the accuracy of generated samples on their requested
//! class. Those numbers are comparable only within this project.

use tch::{nn, nn::Module, nn::OptimizerConfig, Device, Kind, Tensor};

use crate::Result;

/// A temporal CNN over normalised `[B, F, T]` windows: conv 128 (k5) → conv 128 (k5, /2) →
/// conv 256 (k3, /2) → mean over time → fc 128 (features) → fc classes.
#[derive(Debug)]
pub struct MotionClassifier {
    /// The weights.
    pub vs: nn::VarStore,
    c1: nn::Conv1D,
    c2: nn::Conv1D,
    c3: nn::Conv1D,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl MotionClassifier {
    /// A fresh classifier for `features` inputs and `classes` outputs.
    pub fn new(features: i64, classes: i64, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let p = vs.root();
        let c = |pad, stride| nn::ConvConfig { padding: pad, stride, ..Default::default() };
        Self {
            c1: nn::conv1d(&p / "c1", features, 128, 5, c(2, 1)),
            c2: nn::conv1d(&p / "c2", 128, 128, 5, c(2, 2)),
            c3: nn::conv1d(&p / "c3", 128, 256, 3, c(1, 2)),
            fc1: nn::linear(&p / "fc1", 256, 128, Default::default()),
            fc2: nn::linear(&p / "fc2", 128, classes, Default::default()),
            vs,
        }
    }

    /// The 128-d features of `x` (`[B, F, T]`).
    pub fn features(&self, x: &Tensor) -> Tensor {
        let h = self.c1.forward(x).relu();
        let h = self.c2.forward(&h).relu();
        let h = self.c3.forward(&h).relu().mean_dim([2i64].as_slice(), false, Kind::Float);
        self.fc1.forward(&h).relu()
    }

    /// Class logits.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.features(x))
    }

    /// Features of many windows, batched, without gradients.
    pub fn embed(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let n = x.size()[0];
            let parts: Vec<Tensor> = (0..n)
                .step_by(256)
                .map(|i| self.features(&x.narrow(0, i, (n - i).min(256))))
                .collect();
            Tensor::cat(&parts, 0)
        })
    }

    /// Predicted classes.
    pub fn predict(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| self.logits(x).argmax(-1, false))
    }

    /// Fraction of `x` classified as `labels`.
    pub fn accuracy(&self, x: &Tensor, labels: &Tensor) -> f64 {
        self.predict(x).eq_tensor(labels).to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
    }

    /// Trains with Adam (1e-3) on `x`/`labels` for `steps` batches of 64, with Gaussian
    /// feature noise (σ 0.05) and random time reversal off (motions are not time symmetric).
    pub fn train(&mut self, x: &Tensor, labels: &Tensor, steps: usize, seed: i64) -> Result<()> {
        let mut opt = nn::Adam::default().build(&self.vs, 1e-3)?;
        let n = x.size()[0];
        for s in 0..steps {
            tch::manual_seed(seed + s as i64);
            let idx = Tensor::randint(n, [64], (Kind::Int64, x.device()));
            let xb = x.index_select(0, &idx);
            let xb = &xb + Tensor::randn_like(&xb) * 0.05;
            let loss = self.logits(&xb).cross_entropy_for_logits(&labels.index_select(0, &idx));
            opt.backward_step(&loss);
        }
        Ok(())
    }
}
