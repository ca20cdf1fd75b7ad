//! Samplers against a 1D Gaussian mixture whose density, and hence exact denoiser, is known.
//!
//! One test in its own binary: it compares random trajectories drawn from libtorch's global
//! generator, which tests running in parallel threads would otherwise share.

use tch::{Device, Kind, Tensor};
use unet_core::diffusion::{self, BetaSchedule, NoiseSchedule, SampleOptions, Sampler, Spacing};
use unet_core::Result;

fn f64s(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

/// Exact ε-denoiser of a 1D Gaussian mixture (known density) under `s`.
struct Gmm {
    w: Vec<f64>,
    mu: Vec<f64>,
    sd: Vec<f64>,
}

impl Gmm {
    fn eps(&self, s: &NoiseSchedule, x: &Tensor, t: &Tensor) -> Tensor {
        let ab = NoiseSchedule::gather(&s.alphas_cumprod, t, x.dim(), Kind::Double, Device::Cpu);
        let mut logps = Vec::new();
        let mut scores = Vec::new();
        for k in 0..self.w.len() {
            let mean = ab.sqrt() * self.mu[k];
            let var = &ab * (self.sd[k] * self.sd[k]) + ab.neg() + 1.0;
            logps
                .push((x - &mean).square().neg() / (&var * 2.0) - var.log() * 0.5 + self.w[k].ln());
            scores.push((&mean - x) / &var);
        }
        // Responsibilities by a stable softmax over components.
        let r = Tensor::stack(&logps, 0).softmax(0, Kind::Double);
        let score = (r * Tensor::stack(&scores, 0)).sum_dim_intlist(0, false, Kind::Double);
        score * (ab.neg() + 1.0).sqrt().neg()
    }

    fn nll(&self, x: &[f64]) -> f64 {
        let pdf = |v: f64| -> f64 {
            (0..self.w.len())
                .map(|k| {
                    self.w[k] * (-(v - self.mu[k]).powi(2) / (2.0 * self.sd[k].powi(2))).exp()
                        / (self.sd[k] * (2.0 * std::f64::consts::PI).sqrt())
                })
                .sum()
        };
        -x.iter().map(|&v| pdf(v).max(1e-300).ln()).sum::<f64>() / x.len() as f64
    }
}

fn run(s: &NoiseSchedule, g: &Gmm, sampler: Sampler, xt: &Tensor) -> Tensor {
    let mut den = |x: &Tensor, t: &Tensor| -> Result<Tensor> { Ok(g.eps(s, x, t)) };
    // Few-step samplers on timesteps evenly spaced in log-SNR (DPM-Solver's analysis); all
    // 1000 steps where every timestep is visited.
    let few = matches!(sampler, Sampler::Ddim { steps, .. } | Sampler::DpmSolverPp2M { steps } if steps < 1000);
    let spacing = if few { Spacing::LogSnr } else { Spacing::Linear };
    let opts = SampleOptions { spacing, ..Default::default() };
    diffusion::sample(s, sampler, xt.copy(), &mut den, &opts).unwrap()
}

#[test]
fn samplers_on_a_gaussian_mixture_with_known_density() {
    tch::manual_seed(1);
    let s = NoiseSchedule::new(BetaSchedule::ddpm(), 1000).unwrap();
    let g = Gmm { w: vec![0.3, 0.7], mu: vec![-2.0, 1.5], sd: vec![0.3, 0.5] };
    let xt = Tensor::randn([4000], (Kind::Double, Device::Cpu));

    // DDIM η = 0 is deterministic.
    tch::manual_seed(10);
    let a = run(&s, &g, Sampler::Ddim { steps: 50, eta: 0.0 }, &xt);
    tch::manual_seed(11);
    let b = run(&s, &g, Sampler::Ddim { steps: 50, eta: 0.0 }, &xt);
    assert!(a.equal(&b));

    // DDIM with η = 1 over all 1000 steps follows DDPM's ancestral path (same noise draws).
    tch::manual_seed(12);
    let ddpm = run(&s, &g, Sampler::Ddpm, &xt.narrow(0, 0, 200));
    tch::manual_seed(12);
    let ddim1 = run(&s, &g, Sampler::Ddim { steps: 1000, eta: 1.0 }, &xt.narrow(0, 0, 200));
    let gap = (&ddpm - &ddim1).abs().max().double_value(&[]);
    assert!(gap < 1e-6, "DDIM(η=1, all steps) vs DDPM: {gap}");

    // 20 steps: DPM-Solver++(2M) lands closer to the 1000-step solution of the same ODE than DDIM.
    let reference = run(&s, &g, Sampler::Ddim { steps: 1000, eta: 0.0 }, &xt);
    let dpm = run(&s, &g, Sampler::DpmSolverPp2M { steps: 20 }, &xt);
    let ddim = run(&s, &g, Sampler::Ddim { steps: 20, eta: 0.0 }, &xt);
    let err = |x: &Tensor| (x - &reference).abs().mean(Kind::Double).double_value(&[]);
    let (e_dpm, e_ddim) = (err(&dpm), err(&ddim));
    eprintln!("mean |x - x_ref|: DPM-Solver++ {e_dpm:.4}, DDIM {e_ddim:.4}");
    assert!(e_dpm < e_ddim * 0.5, "DPM-Solver++ {e_dpm} vs DDIM {e_ddim}");

    // And in distribution: the negative log-likelihood under the known density is closer to
    // that of 1000-step DDPM samples.
    tch::manual_seed(13);
    let ddpm_full = run(&s, &g, Sampler::Ddpm, &xt);
    let nll = |x: &Tensor| g.nll(&f64s(x));
    let (n_ref, n_dpm, n_ddim) = (nll(&ddpm_full), nll(&dpm), nll(&ddim));
    eprintln!("NLL: DDPM-1000 {n_ref:.4}, DPM-Solver++-20 {n_dpm:.4}, DDIM-20 {n_ddim:.4}");
    assert!((n_dpm - n_ref).abs() < (n_ddim - n_ref).abs());
    // Mixture weights are recovered (fraction of samples nearer the right-hand mode).
    let right = f64s(&dpm).iter().filter(|&&v| v > -0.25).count() as f64 / 4000.0;
    assert!((right - 0.7).abs() < 0.05, "weight {right}");
}
