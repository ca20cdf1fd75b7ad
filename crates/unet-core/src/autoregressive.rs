//! Autoregressive pieces (survey Section 3.2.3): masked (causal) convolutions for any rank,
//! the discretised logistic mixture likelihood of PixelCNN++ (Salimans et al. 2017) with
//! sampling, and a token LM head loss with temperature / top-k / top-p sampling. Causal
//! attention is [`crate::attention::Attention::attend`] with `causal = true` (or
//! [`crate::attention::AxisAttention`] built causal).

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Reduction, Tensor};

use crate::layers::{ConvGeometry, ConvNd};
use crate::{Error, Result};

/// PixelCNN mask type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskType {
    /// Excludes the centre position too (first layer: a pixel must not see itself).
    A,
    /// Includes the centre (later layers).
    B,
}

/// A same-padded convolution whose kernel sees only positions before the centre in raster
/// order (row-major over the spatial axes): output at position p depends only on inputs at
/// positions ≤ p (type B) or < p (type A). In 1D this is a causal convolution.
#[derive(Debug)]
pub struct MaskedConv {
    conv: ConvNd,
    mask: Tensor,
}

impl MaskedConv {
    /// `cin` → `cout` with an odd `kernel` over `dims` axes.
    pub fn new(
        path: nn::Path,
        dims: usize,
        cin: i64,
        cout: i64,
        kernel: i64,
        mask: MaskType,
    ) -> Result<Self> {
        if kernel % 2 == 0 || kernel <= 0 {
            return Err(Error::config("kernel", kernel, "masked convolutions need an odd kernel"));
        }
        let geo = ConvGeometry::same(dims, kernel, 1, true);
        let conv = ConvNd::with_geometry(path, dims, cin, cout, geo)?;
        let numel = kernel.pow(dims as u32);
        let centre = numel / 2; // raster index of the centre
        let keep: Vec<f32> = (0..numel)
            .map(|i| match mask {
                MaskType::A => (i < centre) as u8 as f32,
                MaskType::B => (i <= centre) as u8 as f32,
            })
            .collect();
        let mut shape = vec![1i64, 1];
        shape.extend(std::iter::repeat_n(kernel, dims));
        let mask = Tensor::from_slice(&keep).view(shape.as_slice()).to_device(conv.weight.device());
        Ok(Self { conv, mask })
    }

    /// `[B, cin, *S]` → `[B, cout, *S]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = &self.conv.weight * &self.mask;
        let g = self.conv.geometry();
        let out_pad = vec![0i64; g.kernel.len()];
        Ok(x.f_convolution(
            &w,
            self.conv.bias.as_ref(),
            g.stride.as_slice(),
            g.padding.as_slice(),
            g.dilation.as_slice(),
            false,
            out_pad.as_slice(),
            1,
        )?)
    }
}

/// Discretised logistic mixture over 256 levels for data in [-1, 1], one independent mixture
/// per channel: parameters `[B, C·3·K, *S]` laid out per channel as (logits K, means K,
/// log-scales K). (PixelCNN++'s linear coupling of RGB sub-pixels is not modelled; for
/// single-channel data the two are the same.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogisticMixture {
    /// Mixture components K.
    pub components: i64,
    /// Data channels C.
    pub channels: i64,
}

impl LogisticMixture {
    /// Parameter channels the network must output (`3 · K · C`).
    pub fn param_channels(&self) -> i64 {
        3 * self.components * self.channels
    }

    fn split(&self, params: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let s = params.size();
        if s.len() < 3 || s[1] != self.param_channels() {
            return Err(Error::InputShape {
                shape: s,
                expected: format!("[B, {} = 3·K·C, *S]", self.param_channels()),
            });
        }
        let mut shape = vec![s[0], self.channels, 3, self.components];
        shape.extend(&s[2..]);
        let p = params.f_reshape(shape.as_slice())?; // [B, C, 3, K, *S]
        Ok((p.select(2, 0), p.select(2, 1), p.select(2, 2).clamp_min(-7.0))) // each [B, C, K, *S]
    }

    /// Per-element log-likelihood `[B, C, *S]` of `x` (`[B, C, *S]`, values k/255·2−1).
    pub fn log_prob(&self, params: &Tensor, x: &Tensor) -> Result<Tensor> {
        let (logits, means, log_scales) = self.split(params)?;
        let x = x.unsqueeze(2); // [B, C, 1, *S]
        let centered = &x - &means;
        let inv_s = log_scales.neg().exp();
        let plus_in = &inv_s * (&centered + 1.0 / 255.0);
        let min_in = &inv_s * (&centered - 1.0 / 255.0);
        let cdf_delta = plus_in.sigmoid() - min_in.sigmoid();
        let log_cdf_plus = &plus_in - plus_in.softplus();
        let log_one_minus_cdf_min = min_in.softplus().neg();
        let mid_in = &inv_s * &centered;
        let log_pdf_mid = &mid_in - &log_scales - mid_in.softplus() * 2.0;
        let inner = log_pdf_mid - 127.5f64.ln();
        let mid = cdf_delta.clamp_min(1e-12).log().where_self(&cdf_delta.gt(1e-5), &inner);
        let lp = log_one_minus_cdf_min.where_self(&x.gt(0.999), &mid);
        let lp = log_cdf_plus.where_self(&x.lt(-0.999), &lp); // [B, C, K, *S]
        let mix = logits.log_softmax(2, Kind::Float);
        Ok((lp + mix).logsumexp([2], false))
    }

    /// Negative log-likelihood in bits per dimension (mean over the batch).
    pub fn bits_per_dim(&self, params: &Tensor, x: &Tensor) -> Result<Tensor> {
        let lp = self.log_prob(params, x)?;
        let dims: i64 = lp.size()[1..].iter().product();
        Ok(lp.sum(Kind::Float).neg() / (lp.size()[0] * dims) as f64 / std::f64::consts::LN_2)
    }

    /// Draws `x` `[B, C, *S]` in [-1, 1] (quantised to 256 levels).
    pub fn sample(&self, params: &Tensor) -> Result<Tensor> {
        let (logits, means, log_scales) = self.split(params)?;
        let u = Tensor::rand_like(&logits).clamp(1e-5, 1.0 - 1e-5);
        let gumbel = (u.log().neg()).log().neg();
        let k = (logits + gumbel).argmax(2, true); // [B, C, 1, *S]
        let pick = |t: &Tensor| t.gather(2, &k, false).squeeze_dim(2);
        let (m, ls) = (pick(&means), pick(&log_scales));
        let u = Tensor::rand_like(&m).clamp(1e-5, 1.0 - 1e-5);
        let x = m + ls.exp() * (u.log() - (u.neg() + 1.0).log());
        Ok(((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round() / 127.5 - 1.0)
    }
}

/// Cross-entropy of token logits `[B, L, V]` against targets `[B, L]` (mean over tokens).
pub fn lm_loss(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let v = logits.size()[2];
    Ok(logits.f_reshape([-1, v])?.f_cross_entropy_loss::<Tensor>(
        &targets.f_reshape([-1])?,
        None,
        Reduction::Mean,
        -100,
        0.0,
    )?)
}

/// Token sampling settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokenSampling {
    /// Softmax temperature (> 0); 1 is unchanged.
    pub temperature: f64,
    /// Keep only the `k` most likely tokens.
    pub top_k: Option<i64>,
    /// Keep the smallest set of tokens whose probability reaches `p` (nucleus sampling).
    pub top_p: Option<f64>,
}

impl Default for TokenSampling {
    fn default() -> Self {
        Self { temperature: 1.0, top_k: None, top_p: None }
    }
}

impl TokenSampling {
    /// The filtered, renormalised distribution `[B, V]` for logits `[B, V]`.
    pub fn probabilities(&self, logits: &Tensor) -> Result<Tensor> {
        if self.temperature.is_nan() || self.temperature <= 0.0 {
            return Err(Error::config("temperature", self.temperature, "must be positive"));
        }
        let mut l = logits.to_kind(Kind::Float) / self.temperature;
        let v = l.size()[1];
        if let Some(k) = self.top_k {
            if k < 1 {
                return Err(Error::config("top_k", k, "must be at least 1"));
            }
            let (vals, _) = l.topk(k.min(v), 1, true, true);
            let kth = vals.narrow(1, k.min(v) - 1, 1);
            l = l.masked_fill(&l.lt_tensor(&kth), f64::NEG_INFINITY);
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::config("top_p", p, "must lie in (0, 1]"));
            }
            let (sorted, idx) = l.sort(1, true);
            let cum = sorted.softmax(1, Kind::Float).cumsum(1, Kind::Float);
            // Remove tokens whose preceding mass already reaches p (the first always stays).
            let remove_sorted = (&cum - sorted.softmax(1, Kind::Float)).ge(p);
            let remove = remove_sorted.scatter(1, &idx, &remove_sorted);
            l = l.masked_fill(&remove, f64::NEG_INFINITY);
        }
        Ok(l.softmax(1, Kind::Float))
    }

    /// Samples one token per row: `[B]` int64.
    pub fn sample(&self, logits: &Tensor) -> Result<Tensor> {
        Ok(self.probabilities(logits)?.multinomial(1, false).squeeze_dim(1))
    }
}
