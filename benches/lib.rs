//! Shared helpers of the criterion benches (see `benches/bench_main.rs`).

use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};
use unet_core::{UNet, UNetConfig};

/// A built model with its optimiser and a fixed batch, ready to time.
pub struct Fixture {
    /// Variables.
    pub vs: nn::VarStore,
    /// The network.
    pub net: UNet,
    /// Adam over `vs`.
    pub opt: nn::Optimizer,
    /// Input batch.
    pub x: Tensor,
    /// Regression target.
    pub y: Tensor,
}

impl Fixture {
    /// Builds `cfg` and a random `[batch, in, side^dims]` batch.
    pub fn new(cfg: &UNetConfig, batch: i64, side: i64) -> Self {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = UNet::new(&vs.root(), cfg).expect("valid bench config");
        let opt = nn::Adam::default().build(&vs, 1e-4).expect("optimiser");
        let mut shape = vec![batch, cfg.in_channels];
        shape.extend(std::iter::repeat_n(side, cfg.dims));
        let x = Tensor::randn(&shape, (Kind::Float, Device::Cpu));
        shape[1] = cfg.out_channels;
        let y = Tensor::randn(&shape, (Kind::Float, Device::Cpu));
        Self { vs, net, opt, x, y }
    }

    /// One forward + backward + Adam step (MSE loss).
    pub fn train_step(&mut self) -> f64 {
        let loss = (self.net.forward_t(&self.x, true).expect("forward") - &self.y)
            .square()
            .mean(Kind::Float);
        self.opt.backward_step(&loss);
        loss.double_value(&[])
    }

    /// One inference forward pass.
    pub fn forward(&self) -> Tensor {
        tch::no_grad(|| self.net.forward_t(&self.x, false).expect("forward"))
    }
}
