//! GANs (survey Section 3.2.2): adversarial losses (vanilla, LSGAN, hinge, WGAN with gradient
//! penalty), a PatchGAN discriminator for any rank (pix2pix's `NLayerDiscriminator`), a U-Net
//! discriminator with per-pixel and global outputs (Schönfeld et al. 2020), the pix2pix
//! objective, and alternating updates with separate optimisers.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Reduction, Tensor};

use crate::layers::{ConvGeometry, ConvNd, Norm, NormLayer};
use crate::{Error, Result, UNet, UNetConfig};

/// Adversarial loss family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum GanLoss {
    /// Non-saturating binary cross-entropy on logits (Goodfellow 2014).
    #[default]
    Vanilla,
    /// Least squares (Mao 2017).
    LeastSquares,
    /// Hinge (Lim & Ye 2017; Miyato 2018).
    Hinge,
    /// Wasserstein (Arjovsky 2017), to be used with [`gradient_penalty`].
    Wasserstein,
}

impl GanLoss {
    /// Discriminator loss on its outputs for real and fake samples (any shape: patch maps and
    /// per-pixel maps are averaged).
    pub fn discriminator(&self, real: &Tensor, fake: &Tensor) -> Tensor {
        match self {
            GanLoss::Vanilla => {
                let ones = real.ones_like();
                let zeros = fake.zeros_like();
                real.binary_cross_entropy_with_logits::<Tensor>(&ones, None, None, Reduction::Mean)
                    + fake.binary_cross_entropy_with_logits::<Tensor>(
                        &zeros,
                        None,
                        None,
                        Reduction::Mean,
                    )
            }
            GanLoss::LeastSquares => {
                ((real - 1.0).square().mean(Kind::Float) + fake.square().mean(Kind::Float)) * 0.5
            }
            GanLoss::Hinge => {
                (real.neg() + 1.0).relu().mean(Kind::Float) + (fake + 1.0).relu().mean(Kind::Float)
            }
            GanLoss::Wasserstein => fake.mean(Kind::Float) - real.mean(Kind::Float),
        }
    }

    /// Generator loss on the discriminator's output for fake samples.
    pub fn generator(&self, fake: &Tensor) -> Tensor {
        match self {
            GanLoss::Vanilla => fake.binary_cross_entropy_with_logits::<Tensor>(
                &fake.ones_like(),
                None,
                None,
                Reduction::Mean,
            ),
            GanLoss::LeastSquares => (fake - 1.0).square().mean(Kind::Float) * 0.5,
            GanLoss::Hinge | GanLoss::Wasserstein => fake.mean(Kind::Float).neg(),
        }
    }
}

/// WGAN-GP gradient penalty (Gulrajani 2017): `E[(‖∇D(x̂)‖₂ − 1)²]` at random interpolates
/// `x̂` of real and fake samples. Differentiable (create_graph) so it trains the critic.
pub fn gradient_penalty(
    critic: &dyn Fn(&Tensor) -> Result<Tensor>,
    real: &Tensor,
    fake: &Tensor,
) -> Result<Tensor> {
    let b = real.size()[0];
    let mut shape = vec![b];
    shape.extend(std::iter::repeat_n(1, real.dim() - 1));
    let eps = Tensor::rand(shape.as_slice(), (real.kind(), real.device()));
    let x = (&eps * real + (eps.neg() + 1.0) * fake.detach()).set_requires_grad(true);
    let out = critic(&x)?.sum(Kind::Float);
    let grads = Tensor::run_backward(&[out], &[&x], true, true);
    let g = grads
        .into_iter()
        .next()
        .ok_or_else(|| Error::config("critic", "", "produced no gradient"))?;
    let norm = g.flatten(1, -1).square().sum_dim_intlist(1, false, Kind::Float).sqrt();
    Ok((norm - 1.0).square().mean(Kind::Float))
}

/// pix2pix generator objective: adversarial term + λ · L1 to the target (Isola 2017, λ = 100).
pub fn pix2pix_generator_loss(
    loss: GanLoss,
    d_fake: &Tensor,
    fake: &Tensor,
    target: &Tensor,
    lambda_l1: f64,
) -> Tensor {
    loss.generator(d_fake) + (fake - target).abs().mean(Kind::Float) * lambda_l1
}

/// Configuration of a [`PatchDiscriminator`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PatchDiscriminatorConfig {
    /// Spatial rank.
    pub dims: usize,
    /// Input channels (for pix2pix: condition + image channels).
    pub in_channels: i64,
    /// Filters of the first layer. Default 64.
    pub ndf: i64,
    /// Stride-2 layers after the first. Default 3 (the 70×70 PatchGAN).
    pub n_layers: usize,
    /// Normalisation. Default batch norm.
    pub norm: Norm,
}

impl Default for PatchDiscriminatorConfig {
    fn default() -> Self {
        Self { dims: 2, in_channels: 6, ndf: 64, n_layers: 3, norm: Norm::Batch }
    }
}

/// PatchGAN discriminator, pix2pix's `NLayerDiscriminator` for any rank: 4×…×4 convs, LeakyReLU
/// 0.2, a map of patch logits. Names `model.{i}` as the PyTorch `nn.Sequential`.
#[derive(Debug)]
pub struct PatchDiscriminator {
    layers: Vec<(ConvNd, Option<NormLayer>, bool)>,
}

impl PatchDiscriminator {
    /// Builds the discriminator under `path`.
    pub fn new(path: &nn::Path, cfg: &PatchDiscriminatorConfig) -> Result<Self> {
        let d = cfg.dims;
        let m = path / "model";
        let geo = |stride: i64, bias: bool| ConvGeometry {
            kernel: vec![4; d],
            stride: vec![stride; d],
            padding: vec![1; d],
            dilation: vec![1; d],
            groups: 1,
            bias,
            transposed: false,
        };
        let bias = matches!(cfg.norm, Norm::Instance | Norm::None);
        let mut layers = Vec::new();
        let mut idx = 0i64;
        layers.push((
            ConvNd::with_geometry(&m / idx, d, cfg.in_channels, cfg.ndf, geo(2, true))?,
            None,
            true,
        ));
        idx += 2; // conv, LeakyReLU
        let mut mult = 1i64;
        for n in 1..=cfg.n_layers {
            let prev = mult;
            mult = (1 << n).min(8);
            let stride = if n == cfg.n_layers { 1 } else { 2 };
            let conv = ConvNd::with_geometry(
                &m / idx,
                d,
                cfg.ndf * prev,
                cfg.ndf * mult,
                geo(stride, bias),
            )?;
            let norm = NormLayer::new(&m / (idx + 1), cfg.norm, cfg.ndf * mult)?;
            layers.push((conv, Some(norm), true));
            idx += 3; // conv, norm, LeakyReLU
        }
        layers.push((
            ConvNd::with_geometry(&m / idx, d, cfg.ndf * mult, 1, geo(1, true))?,
            None,
            false,
        ));
        Ok(Self { layers })
    }

    /// `[B, C, *S]` → patch logits `[B, 1, *S']`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        for (conv, norm, act) in &self.layers {
            h = conv.forward(&h)?;
            if let Some(n) = norm {
                h = n.forward_t(&h, train)?;
            }
            if *act {
                h = h.maximum(&(&h * 0.2)); // LeakyReLU(0.2)
            }
        }
        Ok(h)
    }
}

/// U-Net discriminator (Schönfeld, Schiele & Khoreva 2020): the encoder's bottleneck gives a
/// global real/fake logit, the decoder a per-pixel logit map. Names: `unet.*` (a [`UNet`] with
/// one output channel) and `global_head`.
#[derive(Debug)]
pub struct UNetDiscriminator {
    unet: UNet,
    global_head: nn::Linear,
    bottleneck_channels: i64,
}

impl UNetDiscriminator {
    /// Builds it from a U-Net config (its `out_channels` is forced to 1, identity head).
    pub fn new(path: &nn::Path, cfg: &UNetConfig) -> Result<Self> {
        let cfg = UNetConfig {
            out_channels: 1,
            final_activation: crate::FinalActivation::Identity,
            ..cfg.clone()
        };
        let unet = UNet::new(&(path / "unet"), &cfg)?;
        let c = *cfg.channels.last().unwrap_or(&1);
        Ok(Self {
            unet,
            global_head: nn::linear(path / "global_head", c, 1, Default::default()),
            bottleneck_channels: c,
        })
    }

    /// `(global logits [B, 1], per-pixel logits [B, 1, *S])`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let (pixel, bottleneck) = self.unet.forward_with_bottleneck(x, train)?;
        let pooled = bottleneck.flatten(2, -1).sum_dim_intlist(2, false, Kind::Float); // [B, C]
        debug_assert_eq!(pooled.size()[1], self.bottleneck_channels);
        Ok((nn::Module::forward(&self.global_head, &pooled), pixel))
    }
}

/// Which network an alternating step updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The discriminator / critic.
    Discriminator,
    /// The generator.
    Generator,
}

/// The schedule of alternating updates: `d_steps` discriminator steps per generator step
/// (5 for WGAN-GP, 1 otherwise).
pub fn phase(step: usize, d_steps: usize) -> Phase {
    if step % (d_steps + 1) < d_steps {
        Phase::Discriminator
    } else {
        Phase::Generator
    }
}
