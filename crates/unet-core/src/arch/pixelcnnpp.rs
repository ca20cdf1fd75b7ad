//! PixelCNN++ (Salimans, Karpathy, Chen & Kingma, "PixelCNN++: Improving the PixelCNN with
//! Discretized Logistic Mixture Likelihood and Other Modifications", ICLR 2017,
//! arXiv:1701.05517): an autoregressive image model shaped like a U-Net. Two causal streams
//! (`u` sees the rows above, `ul` the rows above and the pixels to the left) go down three
//! resolutions and back up; every gated resnet of the up pass is a skip that a gated resnet of
//! the down pass consumes ("short-cut connections", Fig. 2 of the paper). The output is a
//! discretised logistic mixture per pixel ([`crate::autoregressive::LogisticMixture`]).
//!
//! Causality comes from shifted convolutions (pad above / to the left, crop transposed convs),
//! not masks. It is inherently 2D (raster order), so unlike the other blocks this one is not
//! dimension-generic.
//!
//! State-dict names follow the PyTorch port most used as a reference (pclucas14/pixel-cnn-pp,
//! `model.py`/`layers.py`, weight norm stored as `weight_g`/`weight_v`): `u_init.conv`,
//! `ul_init.{0,1}.conv`, `up_layers.{i}.{u_stream,ul_stream}.{j}.{conv_input,nin_skip,conv_out}`,
//! `down_layers.{i}.…`, `downsize_{u,ul}_stream.{i}.conv`, `upsize_{u,ul}_stream.{i}.deconv`,
//! `nin_out.lin_a`.
//!
//! Build the CIFAR-10 model with `PixelCnnPP::new(&vs.root(), &PixelCnnPPConfig::cifar10())`;
//! the image reproduction is `cargo xtask reproduce pixelcnnpp`.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::{Error, Result};

/// Configuration of a [`PixelCnnPP`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PixelCnnPPConfig {
    /// Gated resnets per stage of the up pass (the down pass has `nr_resnet`, then
    /// `nr_resnet + 1` twice). Default 5.
    pub nr_resnet: usize,
    /// Filters of every layer. Default 160.
    pub nr_filters: i64,
    /// Logistic mixture components. Default 10.
    pub nr_logistic_mix: i64,
    /// Image channels (1 or 3). Default 3.
    pub input_channels: i64,
    /// Dropout inside the gated resnets during training. Default 0.5.
    pub dropout: f64,
}

impl Default for PixelCnnPPConfig {
    fn default() -> Self {
        Self::cifar10()
    }
}

impl PixelCnnPPConfig {
    /// The paper's CIFAR-10 model (official `train.py` defaults): 53,659,080 parameters with
    /// weight norm's `g` stored separately.
    pub fn cifar10() -> Self {
        Self { nr_resnet: 5, nr_filters: 160, nr_logistic_mix: 10, input_channels: 3, dropout: 0.5 }
    }

    /// Output channels of the head: per component a logit, and per channel a mean and a
    /// log-scale, plus 3 RGB coupling coefficients for colour images (`10·K` for RGB,
    /// `3·K` for grey, as the official code).
    pub fn out_channels(&self) -> i64 {
        if self.input_channels == 1 {
            3 * self.nr_logistic_mix
        } else {
            10 * self.nr_logistic_mix
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.nr_resnet == 0 || self.nr_filters <= 0 || self.nr_logistic_mix <= 0 {
            return Err(Error::config(
                "nr_resnet/nr_filters/nr_logistic_mix",
                (self.nr_resnet, self.nr_filters, self.nr_logistic_mix),
                "must be positive",
            ));
        }
        if self.input_channels != 1 && self.input_channels != 3 {
            return Err(Error::config("input_channels", self.input_channels, "must be 1 or 3"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("dropout", self.dropout, "must be in [0, 1)"));
        }
        Ok(())
    }
}

/// `concat_elu(x) = elu([x, -x])` over channels.
fn concat_elu(x: &Tensor) -> Tensor {
    Tensor::cat(&[x, &x.neg()], 1).elu()
}

/// A weight-normalised (transposed) 2D convolution: `w = g · v / ‖v‖` (norm over every axis
/// but the first), as `torch.nn.utils.weight_norm(…, dim=0)`.
#[derive(Debug)]
struct WnConv {
    v: Tensor,
    g: Tensor,
    bias: Tensor,
    stride: i64,
    transposed: bool,
}

impl WnConv {
    fn new(p: nn::Path, cin: i64, cout: i64, k: [i64; 2], stride: i64, transposed: bool) -> Self {
        let shape = if transposed { [cin, cout, k[0], k[1]] } else { [cout, cin, k[0], k[1]] };
        // PyTorch's default conv initialisation (uniform ±1/√fan_in), g = ‖v‖ so that w = v.
        let fan_in = shape[1] * k[0] * k[1];
        let bound = 1.0 / (fan_in as f64).sqrt();
        let v = p.var("weight_v", &shape, nn::Init::Uniform { lo: -bound, up: bound });
        let norm = tch::no_grad(|| {
            v.square().sum_dim_intlist([1i64, 2, 3].as_slice(), true, Kind::Float).sqrt()
        });
        let g = p.var_copy("weight_g", &norm);
        let bias = p.var("bias", &[cout], nn::Init::Uniform { lo: -bound, up: bound });
        Self { v, g, bias, stride, transposed }
    }

    fn weight(&self) -> Tensor {
        let norm =
            self.v.square().sum_dim_intlist([1i64, 2, 3].as_slice(), true, Kind::Float).sqrt();
        &self.v * (&self.g / norm)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight();
        let s = [self.stride, self.stride];
        Ok(if self.transposed {
            // output_padding 1 as the reference (`stride=(2,2), output_padding=1`).
            x.f_conv_transpose2d(&w, Some(&self.bias), s, [0, 0], [1, 1], 1, [1, 1])?
        } else {
            x.f_conv2d(&w, Some(&self.bias), s, [0, 0], [1, 1], 1)?
        })
    }
}

/// A weight-normalised linear map over channels (the reference's `nin`, a 1×1 conv).
#[derive(Debug)]
struct Nin {
    v: Tensor,
    g: Tensor,
    bias: Tensor,
}

impl Nin {
    fn new(p: nn::Path, cin: i64, cout: i64) -> Self {
        let p = &p / "lin_a";
        let bound = 1.0 / (cin as f64).sqrt();
        let v = p.var("weight_v", &[cout, cin], nn::Init::Uniform { lo: -bound, up: bound });
        let norm = tch::no_grad(|| {
            v.square().sum_dim_intlist([1i64].as_slice(), true, Kind::Float).sqrt()
        });
        let g = p.var_copy("weight_g", &norm);
        let bias = p.var("bias", &[cout], nn::Init::Uniform { lo: -bound, up: bound });
        Self { v, g, bias }
    }

    /// `[B, cin, H, W]` → `[B, cout, H, W]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let norm = self.v.square().sum_dim_intlist([1i64].as_slice(), true, Kind::Float).sqrt();
        let w = &self.v * (&self.g / norm); // [cout, cin]
        let y = x.f_permute([0, 2, 3, 1])?.f_matmul(&w.tr())? + &self.bias; // [B, H, W, cout]
        Ok(y.f_permute([0, 3, 1, 2])?)
    }
}

/// Which causal neighbourhood a shifted conv covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shift {
    /// Rows above (and the current row for later layers): kernel `kh × kw` centred horizontally.
    Down,
    /// Rows above and pixels to the left: kernel anchored at the bottom-right.
    DownRight,
}

/// `down_shifted_conv2d` / `down_right_shifted_conv2d` / their transposed versions.
#[derive(Debug)]
struct ShiftedConv {
    conv: WnConv,
    shift: Shift,
    k: [i64; 2],
    /// Shift the output down (or right) by one pixel: the first layer must not see the
    /// current pixel.
    shift_output: bool,
}

impl ShiftedConv {
    /// A shifted conv (`conv` in the state dict), stride 1 or 2.
    fn conv(
        p: nn::Path,
        shift: Shift,
        (cin, cout): (i64, i64),
        k: [i64; 2],
        stride: i64,
        shift_output: bool,
    ) -> Self {
        Self { conv: WnConv::new(&p / "conv", cin, cout, k, stride, false), shift, k, shift_output }
    }

    /// A shifted stride-2 transposed conv (`deconv`), cropped back to causality.
    fn deconv(p: nn::Path, shift: Shift, (cin, cout): (i64, i64), k: [i64; 2]) -> Self {
        Self {
            conv: WnConv::new(&p / "deconv", cin, cout, k, 2, true),
            shift,
            k,
            shift_output: false,
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [kh, kw] = self.k;
        if self.conv.transposed {
            let y = self.conv.forward(x)?;
            let s = y.size();
            let (h, w) = (s[2], s[3]);
            return Ok(match self.shift {
                Shift::Down => {
                    let c = (kw - 1) / 2;
                    y.narrow(2, 0, h - kh + 1).narrow(3, c, w - 2 * c)
                }
                Shift::DownRight => y.narrow(2, 0, h - kh + 1).narrow(3, 0, w - kw + 1),
            });
        }
        // Pad (left, right, top, bottom) so that output pixel (i, j) sees only inputs above
        // (and, for down-right, to the left).
        let pad = match self.shift {
            Shift::Down => [(kw - 1) / 2, (kw - 1) / 2, kh - 1, 0],
            Shift::DownRight => [kw - 1, 0, kh - 1, 0],
        };
        let y = self.conv.forward(&x.f_constant_pad_nd(pad)?)?;
        if !self.shift_output {
            return Ok(y);
        }
        let s = y.size();
        Ok(match self.shift {
            // Drop the last row, pad one row on top.
            Shift::Down => y.narrow(2, 0, s[2] - 1).f_constant_pad_nd([0, 0, 1, 0])?,
            // Drop the last column, pad one column on the left.
            Shift::DownRight => y.narrow(3, 0, s[3] - 1).f_constant_pad_nd([1, 0, 0, 0])?,
        })
    }
}

/// `x + a·σ(b)` with `[a, b] = conv_out(dropout(concat_elu(conv_input(concat_elu(x)) +
/// nin_skip(concat_elu(skip)))))`.
#[derive(Debug)]
struct GatedResnet {
    conv_input: ShiftedConv,
    nin_skip: Option<Nin>,
    conv_out: ShiftedConv,
    dropout: f64,
}

impl GatedResnet {
    /// `skip_mult` = how many F-wide maps the skip input has (0: none).
    fn new(p: nn::Path, f: i64, shift: Shift, skip_mult: i64, dropout: f64) -> Self {
        let k = if shift == Shift::Down { [2, 3] } else { [2, 2] };
        Self {
            conv_input: ShiftedConv::conv(&p / "conv_input", shift, (2 * f, f), k, 1, false),
            nin_skip: (skip_mult > 0).then(|| Nin::new(&p / "nin_skip", 2 * skip_mult * f, f)),
            conv_out: ShiftedConv::conv(&p / "conv_out", shift, (2 * f, 2 * f), k, 1, false),
            dropout,
        }
    }

    fn forward_t(&self, x: &Tensor, skip: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let mut h = self.conv_input.forward(&concat_elu(x))?;
        if let (Some(nin), Some(a)) = (&self.nin_skip, skip) {
            h += nin.forward(&concat_elu(a))?;
        }
        let h = concat_elu(&h).f_dropout(self.dropout, train)?;
        let h = self.conv_out.forward(&h)?;
        let ab = h.chunk(2, 1);
        Ok(x + &ab[0] * ab[1].sigmoid())
    }
}

/// PixelCNN++.
#[derive(Debug)]
pub struct PixelCnnPP {
    cfg: PixelCnnPPConfig,
    u_init: ShiftedConv,
    ul_init: (ShiftedConv, ShiftedConv),
    /// Per up stage: (u resnets, ul resnets).
    up: Vec<(Vec<GatedResnet>, Vec<GatedResnet>)>,
    down: Vec<(Vec<GatedResnet>, Vec<GatedResnet>)>,
    downsize: Vec<(ShiftedConv, ShiftedConv)>,
    upsize: Vec<(ShiftedConv, ShiftedConv)>,
    nin_out: Nin,
}

impl PixelCnnPP {
    /// Builds the model under `path`.
    pub fn new(path: &nn::Path, cfg: &PixelCnnPPConfig) -> Result<Self> {
        cfg.validate()?;
        let f = cfg.nr_filters;
        let cin = cfg.input_channels + 1; // + a channel of ones (border awareness)
        let (d, dr) = (Shift::Down, Shift::DownRight);
        let u_init = ShiftedConv::conv(path / "u_init", d, (cin, f), [2, 3], 1, true);
        let ul = path / "ul_init";
        let ul_init = (
            ShiftedConv::conv(&ul / 0, d, (cin, f), [1, 3], 1, true),
            ShiftedConv::conv(&ul / 1, dr, (cin, f), [2, 1], 1, true),
        );
        let stage = |p: nn::Path, n: usize, u_skip: i64, ul_skip: i64| {
            let (pu, pul) = (&p / "u_stream", &p / "ul_stream");
            (
                (0..n).map(|j| GatedResnet::new(&pu / j, f, d, u_skip, cfg.dropout)).collect(),
                (0..n).map(|j| GatedResnet::new(&pul / j, f, dr, ul_skip, cfg.dropout)).collect(),
            )
        };
        let up = (0..3).map(|i| stage(path / "up_layers" / i, cfg.nr_resnet, 0, 1)).collect();
        let down = (0..3)
            .map(|i| {
                let n = if i == 0 { cfg.nr_resnet } else { cfg.nr_resnet + 1 };
                stage(path / "down_layers" / i, n, 1, 2)
            })
            .collect();
        let downsize = (0..2)
            .map(|i| {
                (
                    ShiftedConv::conv(path / "downsize_u_stream" / i, d, (f, f), [2, 3], 2, false),
                    ShiftedConv::conv(
                        path / "downsize_ul_stream" / i,
                        dr,
                        (f, f),
                        [2, 2],
                        2,
                        false,
                    ),
                )
            })
            .collect();
        let upsize = (0..2)
            .map(|i| {
                (
                    ShiftedConv::deconv(path / "upsize_u_stream" / i, d, (f, f), [2, 3]),
                    ShiftedConv::deconv(path / "upsize_ul_stream" / i, dr, (f, f), [2, 2]),
                )
            })
            .collect();
        Ok(Self {
            cfg: *cfg,
            u_init,
            ul_init,
            up,
            down,
            downsize,
            upsize,
            nin_out: Nin::new(path / "nin_out", f, cfg.out_channels()),
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &PixelCnnPPConfig {
        &self.cfg
    }

    /// Mixture parameters for every pixel given the pixels before it in raster order.
    ///
    /// # Shapes
    /// `x`: `[B, C, H, W]` in [-1, 1], `H` and `W` multiples of 4 → `[B, out_channels, H, W]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let s = x.size();
        if s.len() != 4 || s[1] != self.cfg.input_channels {
            return Err(Error::InputShape {
                shape: s,
                expected: format!("[B, {}, H, W]", self.cfg.input_channels),
            });
        }
        if s[2] % 4 != 0 || s[3] % 4 != 0 {
            return Err(Error::config("input size", (s[2], s[3]), "must be multiples of 4"));
        }
        let x = Tensor::f_cat(&[x, &x.ones_like().narrow(1, 0, 1)], 1)?;
        // 1. Up pass: every gated resnet output is pushed on the two skip stacks.
        let mut u_list = vec![self.u_init.forward(&x)?];
        let mut ul_list = vec![(self.ul_init.0.forward(&x)? + self.ul_init.1.forward(&x)?)];
        for (i, (us, uls)) in self.up.iter().enumerate() {
            for (ru, rul) in us.iter().zip(uls) {
                let u = ru.forward_t(last(&u_list)?, None, train)?;
                let ul = rul.forward_t(last(&ul_list)?, Some(&u), train)?;
                u_list.push(u);
                ul_list.push(ul);
            }
            if let Some((du, dul)) = self.downsize.get(i) {
                u_list.push(du.forward(last(&u_list)?)?); // [B, F, H/2^(i+1), W/2^(i+1)]
                ul_list.push(dul.forward(last(&ul_list)?)?);
            }
        }
        // 2. Down pass: every gated resnet pops one skip from each stack.
        let mut u = pop(&mut u_list)?;
        let mut ul = pop(&mut ul_list)?;
        for (i, (us, uls)) in self.down.iter().enumerate() {
            for (ru, rul) in us.iter().zip(uls) {
                u = ru.forward_t(&u, Some(&pop(&mut u_list)?), train)?;
                let a = Tensor::f_cat(&[&u, &pop(&mut ul_list)?], 1)?;
                ul = rul.forward_t(&ul, Some(&a), train)?;
            }
            if let Some((uu, uul)) = self.upsize.get(i) {
                u = uu.forward(&u)?;
                ul = uul.forward(&ul)?;
            }
        }
        if !u_list.is_empty() || !ul_list.is_empty() {
            return Err(Error::config("nr_resnet", self.cfg.nr_resnet, "unbalanced skip stacks"));
        }
        // 3. Head.
        self.nin_out.forward(&ul.elu())
    }
}

fn last(v: &[Tensor]) -> Result<&Tensor> {
    v.last().ok_or_else(|| Error::config("skip stack", 0, "empty"))
}

fn pop(v: &mut Vec<Tensor>) -> Result<Tensor> {
    v.pop().ok_or_else(|| Error::config("skip stack", 0, "empty"))
}
