//! The Fashion-MNIST classifier this crate trains itself, whose 128-d penultimate features
//! define **FD-FMNIST**: the Fréchet distance between generated and real Fashion-MNIST images
//! in that feature space. It plays the role Inception-v3 plays for FID, which cannot be used
//! offline (no package ships its weights), so the numbers are not comparable with published
//! FIDs and are named accordingly.

use std::path::{Path, PathBuf};

use tch::{nn, nn::Module, nn::OptimizerConfig, Device, Kind, Tensor};

use crate::data::fashion_mnist::FashionMnist;
use crate::{ImageError, Result};

/// Fashion-MNIST images `[n, 28, 28]` u8 → `[n, 1, 28, 28]` float in [-1, 1].
pub fn to_model_range(data: &FashionMnist) -> Tensor {
    let n = data.len() as i64;
    let v: Vec<u8> = data.images.iter().copied().collect();
    Tensor::from_slice(&v).view([n, 1, 28, 28]).to_kind(Kind::Float) / 127.5 - 1.0
}

/// A small CNN: conv 32 → pool → conv 64 → pool → fc 128 (features) → fc 10.
#[derive(Debug)]
pub struct FmnistClassifier {
    vs: nn::VarStore,
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl FmnistClassifier {
    /// A freshly initialised classifier on `device`.
    pub fn new(device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let p = vs.root();
        let c = nn::ConvConfig { padding: 1, ..Default::default() };
        Self {
            conv1: nn::conv2d(&p / "conv1", 1, 32, 3, c),
            conv2: nn::conv2d(&p / "conv2", 32, 64, 3, c),
            fc1: nn::linear(&p / "fc1", 64 * 7 * 7, 128, Default::default()),
            fc2: nn::linear(&p / "fc2", 128, 10, Default::default()),
            vs,
        }
    }

    fn check(x: &Tensor) -> Result<()> {
        let s = x.size();
        if s.len() != 4 || s[1] != 1 || s[2] != 28 || s[3] != 28 {
            return Err(ImageError::Invalid(format!(
                "the FD-FMNIST classifier takes [N, 1, 28, 28] images, got {s:?}"
            )));
        }
        Ok(())
    }

    fn features_t(&self, x: &Tensor) -> Tensor {
        let h = self.conv1.forward(x).relu().max_pool2d_default(2);
        let h = self.conv2.forward(&h).relu().max_pool2d_default(2);
        self.fc1.forward(&h.flatten(1, -1)).relu()
    }

    /// 128-d features of `[N, 1, 28, 28]` images in [-1, 1] (batched, no gradient).
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        Self::check(x)?;
        let _g = tch::no_grad_guard();
        let chunks: Vec<Tensor> = x
            .split(512, 0)
            .iter()
            .map(|c| self.features_t(&c.to_device(self.vs.device())).to_device(Device::Cpu))
            .collect();
        Ok(Tensor::cat(&chunks, 0))
    }

    /// Class logits `[N, 10]`.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let f = self.features(x)?.to_device(self.vs.device());
        Ok(tch::no_grad(|| self.fc2.forward(&f)).to_device(Device::Cpu))
    }

    /// Fraction of `data` classified correctly.
    pub fn accuracy(&self, data: &FashionMnist) -> Result<f64> {
        let pred = self.logits(&to_model_range(data))?.argmax(1, false);
        let labels = Tensor::from_slice(&data.labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
        Ok(pred.eq_tensor(&labels).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]))
    }

    /// Trains with Adam (lr 1e-3, batch 128) for `steps` steps, with horizontal flips.
    pub fn train(&mut self, data: &FashionMnist, steps: usize, seed: i64) -> Result<()> {
        tch::manual_seed(seed);
        let x = to_model_range(data);
        let y = Tensor::from_slice(&data.labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
        let mut opt = nn::Adam::default().build(&self.vs, 1e-3)?;
        let n = data.len() as i64;
        for _ in 0..steps {
            let idx = Tensor::randint(n, [128], (Kind::Int64, Device::Cpu));
            let mut xb = x.index_select(0, &idx);
            let flip = Tensor::rand([128, 1, 1, 1], (Kind::Float, Device::Cpu)).lt(0.5);
            xb = xb.flip([3]).where_self(&flip, &xb);
            let xb = xb.to_device(self.vs.device());
            let yb = y.index_select(0, &idx).to_device(self.vs.device());
            let loss = self.fc2.forward(&self.features_t(&xb)).cross_entropy_for_logits(&yb);
            opt.backward_step(&loss);
        }
        Ok(())
    }

    /// Loads the cached classifier for this training set from `models_dir`, or trains and
    /// caches it. Returns it with its test accuracy.
    pub fn load_or_train(
        models_dir: Option<&Path>,
        train: &FashionMnist,
        test: &FashionMnist,
        steps: usize,
    ) -> Result<(Self, f64)> {
        // Seed the initialisation too, so the classifier (and every FD-FMNIST) is a function
        // of the training data and step count only.
        tch::manual_seed(1234);
        let mut clf = Self::new(Device::Cpu);
        let path: Option<PathBuf> = models_dir
            .map(|d| d.join(format!("fmnist-classifier-n{}-s{steps}.safetensors", train.len())));
        match &path {
            Some(p) if p.exists() => {
                unet_core::checkpoint::load_strict(&mut clf.vs, p)?;
            }
            _ => {
                clf.train(train, steps, 1234)?;
                if let Some(p) = &path {
                    unet_core::checkpoint::save(&clf.vs, p, None)?;
                }
            }
        }
        let acc = clf.accuracy(test)?;
        Ok((clf, acc))
    }
}

/// FD-FMNIST between two image sets `[N, 1, 28, 28]` in [-1, 1].
pub fn fd_fmnist(clf: &FmnistClassifier, a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok(unet_core::metrics::frechet_distance(&clf.features(a)?, &clf.features(b)?)?)
}
