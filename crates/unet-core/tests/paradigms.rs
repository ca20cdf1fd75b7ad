//! Diffusion, GAN and autoregressive machinery against known answers.

use tch::{nn, nn::Module, nn::OptimizerConfig, Device, Kind, Tensor};
use unet_core::attention::{Attention, AttentionConfig};
use unet_core::autoregressive::{lm_loss, LogisticMixture, MaskType, MaskedConv, TokenSampling};
use unet_core::diffusion::{self, BetaSchedule, NoiseSchedule, Prediction, SampleOptions, Sampler};
use unet_core::embeddings::{timestep_embedding, SinusoidalConfig};
use unet_core::gan::{
    gradient_penalty, phase, GanLoss, PatchDiscriminator, PatchDiscriminatorConfig, Phase,
    UNetDiscriminator,
};
use unet_core::{Result, UNetConfig};

fn f64s(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

#[test]
fn closed_form_noising_matches_iterating_the_forward_process() {
    tch::manual_seed(0);
    for kind in [BetaSchedule::ddpm(), BetaSchedule::stable_diffusion(), BetaSchedule::cosine()] {
        let s = NoiseSchedule::new(kind, 1000).unwrap();
        let n = 200_000;
        let x0 = Tensor::full([n], 0.7, (Kind::Double, Device::Cpu));
        let t = 300;
        let mut x = x0.copy();
        for k in 0..=t {
            let b = s.betas.double_value(&[k]);
            x = &x * (1.0 - b).sqrt() + Tensor::randn([n], (Kind::Double, Device::Cpu)) * b.sqrt();
        }
        let closed = s.q_sample(
            &x0,
            &Tensor::full([n], t, (Kind::Int64, Device::Cpu)),
            &Tensor::randn([n], (Kind::Double, Device::Cpu)),
        );
        let (m1, s1) = (x.mean(Kind::Double).double_value(&[]), x.std(true).double_value(&[]));
        let (m2, s2) =
            (closed.mean(Kind::Double).double_value(&[]), closed.std(true).double_value(&[]));
        let ab = s.alpha_bar(t);
        assert!(
            (m1 - 0.7 * ab.sqrt()).abs() < 0.01 && (m2 - 0.7 * ab.sqrt()).abs() < 0.01,
            "{kind:?} means {m1} {m2}"
        );
        assert!(
            (s1 - (1.0 - ab).sqrt()).abs() < 0.01 && (s2 - (1.0 - ab).sqrt()).abs() < 0.01,
            "{kind:?} stds {s1} {s2}"
        );
    }
}

#[test]
fn objectives_convert_and_guidance_scale_one_is_conditional() {
    let s = NoiseSchedule::new(BetaSchedule::cosine(), 100).unwrap();
    let x0 = Tensor::randn([4, 3], (Kind::Float, Device::Cpu));
    let eps = Tensor::randn([4, 3], (Kind::Float, Device::Cpu));
    let t = Tensor::from_slice(&[0i64, 10, 50, 99]);
    let xt = s.q_sample(&x0, &t, &eps);
    let ab = NoiseSchedule::gather(&s.alphas_cumprod, &t, 2, Kind::Float, Device::Cpu);
    for pred in [Prediction::Epsilon, Prediction::V, Prediction::Sample] {
        let target = diffusion::objective::target(pred, &x0, &eps, &ab);
        let (x0h, epsh) = diffusion::objective::to_x0_eps(pred, &target, &xt, &ab);
        assert!(x0h.allclose(&x0, 1e-3, 1e-3, false), "{pred:?}");
        assert!(epsh.allclose(&eps, 1e-3, 1e-3, false), "{pred:?}");
        let l = diffusion::loss(&s, pred, &target, &x0, &eps, &t, Some(5.0)).unwrap();
        assert!(l.double_value(&[]) < 1e-10);
    }
    let cond = Tensor::randn([2, 3], (Kind::Float, Device::Cpu));
    let uncond = Tensor::randn([2, 3], (Kind::Float, Device::Cpu));
    assert!(diffusion::guidance(&cond, &uncond, 1.0).equal(&cond));
    assert!(diffusion::guidance(&cond, &uncond, 0.0).allclose(&uncond, 1e-6, 1e-6, false));
    let labels = Tensor::from_slice(&[1i64; 1000]);
    let dropped = diffusion::drop_labels(&labels, 0.2, 10).eq(10).sum(Kind::Int64).int64_value(&[]);
    assert!((150..250).contains(&dropped), "{dropped}");
}

#[test]
fn inpainting_keeps_the_known_region() {
    tch::manual_seed(2);
    let s = NoiseSchedule::new(BetaSchedule::ddpm(), 200).unwrap();
    let known = Tensor::randn([2, 1, 8, 8], (Kind::Float, Device::Cpu));
    let mask = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    let _ = mask.narrow(3, 0, 4).fill_(1.0); // generate the left half
    let mut den = |x: &Tensor, _t: &Tensor| -> Result<Tensor> { Ok(x.zeros_like()) };
    for sampler in
        [Sampler::Ddpm, Sampler::Ddim { steps: 20, eta: 0.0 }, Sampler::DpmSolverPp2M { steps: 20 }]
    {
        let opts = SampleOptions {
            inpaint: Some(diffusion::Inpaint { known: &known, mask: &mask }),
            ..Default::default()
        };
        let out = diffusion::sample(
            &s,
            sampler,
            Tensor::randn([2, 1, 8, 8], (Kind::Float, Device::Cpu)),
            &mut den,
            &opts,
        )
        .unwrap();
        let kept = (out.narrow(3, 4, 4) - known.narrow(3, 4, 4)).abs().max().double_value(&[]);
        assert!(kept < 1e-5, "{sampler:?}: known region changed by {kept}");
    }
}

#[test]
fn logistic_mixture_probabilities_sum_to_one() {
    tch::manual_seed(3);
    let lm = LogisticMixture { components: 5, channels: 2 };
    let params = Tensor::randn([3, lm.param_channels(), 2, 2], (Kind::Float, Device::Cpu)) * 2.0;
    let levels = Tensor::arange(256, (Kind::Float, Device::Cpu)) / 127.5 - 1.0;
    let mut total = Tensor::zeros([3, 2, 2, 2], (Kind::Double, Device::Cpu));
    for k in 0..256 {
        let x = Tensor::full([3, 2, 2, 2], levels.double_value(&[k]), (Kind::Float, Device::Cpu));
        total += lm.log_prob(&params, &x).unwrap().exp().to_kind(Kind::Double);
    }
    let worst = (total - 1.0).abs().max().double_value(&[]);
    assert!(worst < 1e-3, "probabilities sum to 1 ± {worst}");
    let x = lm.sample(&params).unwrap();
    assert_eq!(x.size(), vec![3, 2, 2, 2]);
    assert!(x.min().double_value(&[]) >= -1.0 && x.max().double_value(&[]) <= 1.0);
    let q = (&x + 1.0) * 127.5;
    assert!((&q - q.round()).abs().max().double_value(&[]) < 1e-3, "samples lie on the 256 levels");
    // bits/dim is the mean negative log2-likelihood; a sharp component on the data is cheap.
    let bpd = lm.bits_per_dim(&params, &x).unwrap().double_value(&[]);
    let direct = -lm.log_prob(&params, &x).unwrap().mean(Kind::Double).double_value(&[])
        / std::f64::consts::LN_2;
    assert!((bpd - direct).abs() < 1e-4, "{bpd} vs {direct}");
    let one = LogisticMixture { components: 1, channels: 1 };
    let target =
        Tensor::full([2, 1, 3, 3], 0.2 * 127.5f64.recip() * 127.5, (Kind::Float, Device::Cpu));
    let target = ((target + 1.0) * 127.5).round() / 127.5 - 1.0;
    let sharp =
        Tensor::cat(&[target.zeros_like(), target.shallow_clone(), target.full_like(-7.0)], 1);
    assert!(one.bits_per_dim(&sharp, &target).unwrap().double_value(&[]) < 0.1);
}

#[test]
fn masked_convolutions_and_causal_attention_do_not_look_ahead() {
    tch::manual_seed(4);
    for dims in 1..=3usize {
        let vs = nn::VarStore::new(Device::Cpu);
        let a = MaskedConv::new(vs.root() / "a", dims, 2, 4, 3, MaskType::A).unwrap();
        let b = MaskedConv::new(vs.root() / "b", dims, 4, 4, 3, MaskType::B).unwrap();
        let mut shape = vec![1i64, 2];
        shape.extend(std::iter::repeat_n(5, dims));
        let x = Tensor::randn(&shape, (Kind::Float, Device::Cpu));
        let f = |x: &Tensor| b.forward(&a.forward(x).unwrap().relu()).unwrap().flatten(2, -1);
        let y = f(&x);
        let n = 5i64.pow(dims as u32);
        let p = n / 2; // a position in the middle (raster order)
        let x2 = x.flatten(2, -1).copy();
        let _ = x2.narrow(2, p, n - p).g_add_scalar_(3.0); // change inputs at positions ≥ p
        let y2 = f(&x2.view(shape.as_slice()));
        let before = (y2.narrow(2, 0, p + 1) - y.narrow(2, 0, p + 1)).abs().max().double_value(&[]);
        assert_eq!(
            before, 0.0,
            "{dims}D: outputs at positions ≤ p changed (type A excludes p itself)"
        );
        assert!((y2 - y).abs().max().double_value(&[]) > 0.0);
    }
    let vs = nn::VarStore::new(Device::Cpu);
    let att = Attention::new(vs.root(), 8, &AttentionConfig::new(2, 4)).unwrap();
    let x = Tensor::randn([1, 6, 8], (Kind::Float, Device::Cpu));
    let y = att.attend(&x, None, None, true).unwrap();
    let x2 = x.copy();
    let _ = x2.narrow(1, 3, 3).g_add_scalar_(1.0);
    let y2 = att.attend(&x2, None, None, true).unwrap();
    assert_eq!((y2.narrow(1, 0, 3) - y.narrow(1, 0, 3)).abs().max().double_value(&[]), 0.0);
}

#[test]
fn token_sampling_respects_temperature_top_k_top_p() {
    let logits = Tensor::from_slice(&[3.0f32, 2.0, 1.0, 0.0, -1.0]).view([1, 5]);
    let p = TokenSampling { top_k: Some(2), ..Default::default() }.probabilities(&logits).unwrap();
    let v = f64s(&p);
    assert!(v[2..].iter().all(|&x| x == 0.0) && (v[0] + v[1] - 1.0).abs() < 1e-6);
    let p =
        TokenSampling { top_p: Some(0.8), ..Default::default() }.probabilities(&logits).unwrap();
    let kept = f64s(&p).iter().filter(|&&x| x > 0.0).count();
    assert_eq!(kept, 2, "softmax(3,2,1,…) = .64,.24,…: two tokens reach 0.8");
    let cold = TokenSampling { temperature: 0.01, ..Default::default() };
    assert_eq!(cold.sample(&logits).unwrap().int64_value(&[0]), 0);
    assert!(TokenSampling { temperature: 0.0, ..Default::default() }
        .probabilities(&logits)
        .is_err());
    let l = lm_loss(
        &Tensor::zeros([2, 3, 5], (Kind::Float, Device::Cpu)),
        &Tensor::zeros([2, 3], (Kind::Int64, Device::Cpu)),
    )
    .unwrap();
    assert!((l.double_value(&[]) - 5f64.ln()).abs() < 1e-6);
}

#[test]
fn wgan_gp_penalty_is_exact_on_a_linear_critic() {
    let w = Tensor::from_slice(&[0.6f32, -0.3, 2.0]).set_requires_grad(true);
    let critic = |x: &Tensor| -> Result<Tensor> { Ok(x.matmul(&w)) };
    let real = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
    let fake = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
    let gp = gradient_penalty(&critic, &real, &fake).unwrap();
    let norm = (0.36f64 + 0.09 + 4.0).sqrt();
    assert!((gp.double_value(&[]) - (norm - 1.0).powi(2)).abs() < 1e-5);
    gp.backward();
    // d/dw (‖w‖ − 1)² = 2(‖w‖ − 1) w / ‖w‖.
    let want = [0.6, -0.3, 2.0].map(|x| 2.0 * (norm - 1.0) * x / norm);
    for (g, e) in f64s(&w.grad()).iter().zip(want) {
        assert!((g - e).abs() < 1e-4, "{g} vs {e}");
    }
    // Losses behave at their optimum.
    let big = Tensor::full([4, 1], 20.0, (Kind::Float, Device::Cpu));
    assert!(GanLoss::Vanilla.discriminator(&big, &big.neg()).double_value(&[]) < 1e-6);
    assert!(GanLoss::Hinge.discriminator(&big, &big.neg()).double_value(&[]) == 0.0);
    assert_eq!(phase(0, 5), Phase::Discriminator);
    assert_eq!(phase(5, 5), Phase::Generator);
}

#[test]
fn discriminators_have_the_published_shapes() {
    let vs = nn::VarStore::new(Device::Cpu);
    let d = PatchDiscriminator::new(&vs.root(), &PatchDiscriminatorConfig::default()).unwrap();
    let y =
        d.forward_t(&Tensor::randn([1, 6, 256, 256], (Kind::Float, Device::Cpu)), false).unwrap();
    assert_eq!(y.size(), vec![1, 1, 30, 30], "pix2pix 70×70 PatchGAN on 256²");
    assert_eq!(unet_core::parameter_count(&vs), 2_768_705, "pix2pix basic D with 6 input channels");
    for dims in [1usize, 3] {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = PatchDiscriminatorConfig {
            dims,
            in_channels: 2,
            ndf: 8,
            n_layers: 2,
            ..Default::default()
        };
        let d = PatchDiscriminator::new(&vs.root(), &cfg).unwrap();
        let mut shape = vec![2, 2];
        shape.extend(std::iter::repeat_n(32, dims));
        assert_eq!(
            d.forward_t(&Tensor::randn(&shape, (Kind::Float, Device::Cpu)), true).unwrap().size()
                [1],
            1
        );
    }
    let vs = nn::VarStore::new(Device::Cpu);
    let ud = UNetDiscriminator::new(
        &vs.root(),
        &UNetConfig { in_channels: 3, channels: vec![8, 16, 32], ..UNetConfig::default() },
    )
    .unwrap();
    let (global, pixel) =
        ud.forward_t(&Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu)), true).unwrap();
    assert_eq!(global.size(), vec![2, 1]);
    assert_eq!(pixel.size(), vec![2, 1, 16, 16]);
}

/// Four Gaussian modes on a square; a sample is "good" within 0.3 of a mode.
fn mixture_stats(x: &Tensor) -> (f64, Vec<f64>) {
    let modes = [(1.5, 1.5), (-1.5, 1.5), (1.5, -1.5), (-1.5, -1.5)];
    let v = f64s(x);
    let n = v.len() / 2;
    let mut counts = [0usize; 4];
    let mut good = 0;
    for i in 0..n {
        let (a, b) = (v[2 * i], v[2 * i + 1]);
        let (k, d) = modes
            .iter()
            .enumerate()
            .map(|(k, m)| (k, ((a - m.0).powi(2) + (b - m.1).powi(2)).sqrt()))
            .fold((0, f64::MAX), |acc, e| if e.1 < acc.1 { e } else { acc });
        if d < 0.3 {
            good += 1;
            counts[k] += 1;
        }
    }
    (good as f64 / n as f64, counts.iter().map(|&c| c as f64 / n as f64).collect())
}

fn mixture_batch(n: i64) -> Tensor {
    let idx = Tensor::randint(4, [n], (Kind::Int64, Device::Cpu));
    let sx = (idx.remainder(2) * 2 - 1).to_kind(Kind::Float) * 1.5;
    let sy = (idx.divide_scalar_mode(2, "floor") * 2 - 1).to_kind(Kind::Float) * 1.5;
    Tensor::stack(&[sx, sy], 1) + Tensor::randn([n, 2], (Kind::Float, Device::Cpu)) * 0.05
}

const GAN_STEPS: usize = 10_000;

fn mlp(p: nn::Path, i: i64, o: i64) -> nn::Sequential {
    nn::seq()
        .add(nn::linear(&p / "l1", i, 128, Default::default()))
        .add_fn(|x| x.silu())
        .add(nn::linear(&p / "l2", 128, 128, Default::default()))
        .add_fn(|x| x.silu())
        .add(nn::linear(&p / "l3", 128, 128, Default::default()))
        .add_fn(|x| x.silu())
        .add(nn::linear(&p / "l4", 128, o, Default::default()))
}

#[test]
fn toy_diffusion_and_gan_learn_a_gaussian_mixture() {
    tch::set_num_threads(1);
    tch::manual_seed(5);
    // Diffusion: an MLP denoiser on (x_t, t/T).
    let s = NoiseSchedule::new(BetaSchedule::cosine(), 200).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = mlp(vs.root(), 2 + 16, 2);
    let temb = |t: &Tensor| timestep_embedding(t, &SinusoidalConfig::new(16)).unwrap();
    let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
    for _ in 0..3000 {
        let x0 = mixture_batch(256);
        let t = s.sample_timesteps(256, Device::Cpu);
        let noise = Tensor::randn([256, 2], (Kind::Float, Device::Cpu));
        let xt = s.q_sample(&x0, &t, &noise);
        let inp = Tensor::cat(&[xt, temb(&t)], 1);
        let l = diffusion::loss(&s, Prediction::Epsilon, &net.forward(&inp), &x0, &noise, &t, None)
            .unwrap();
        opt.backward_step(&l);
    }
    let mut den = |x: &Tensor, t: &Tensor| -> Result<Tensor> {
        Ok(net.forward(&Tensor::cat(&[x.shallow_clone(), temb(t)], 1)))
    };
    // The cosine schedule's last step has ᾱ ≈ 0, where x̂₀ amplifies the network's error:
    // clip x̂₀ to the data range, as DDIM implementations do.
    let opts = SampleOptions { clip_x0: Some(3.0), ..Default::default() };
    let samples = diffusion::sample(
        &s,
        Sampler::Ddim { steps: 50, eta: 0.0 },
        Tensor::randn([2000, 2], (Kind::Float, Device::Cpu)),
        &mut den,
        &opts,
    )
    .unwrap();
    let (good, per_mode) = mixture_stats(&samples);
    eprintln!("diffusion: {good:.3} of samples within 0.3 of a mode; per mode {per_mode:?}");
    assert!(good > 0.7 && per_mode.iter().all(|&f| f > 0.1), "diffusion did not learn the mixture");
    let (noise_good, _) =
        mixture_stats(&(Tensor::randn([2000, 2], (Kind::Float, Device::Cpu)) * 1.5));
    assert!(noise_good < 0.2, "baseline check");

    // GAN: MLP generator and critic, WGAN-GP (λ = 0.1 as Gulrajani et al. use for toy data),
    // five critic updates per generator update, separate optimisers.
    tch::manual_seed(6);
    let gvs = nn::VarStore::new(Device::Cpu);
    let dvs = nn::VarStore::new(Device::Cpu);
    let gen = mlp(gvs.root(), 8, 2);
    let critic = mlp(dvs.root(), 2, 1);
    let adam = nn::Adam { beta1: 0.5, beta2: 0.9, wd: 0.0, eps: 1e-8, amsgrad: false };
    let mut gopt = adam.build(&gvs, 5e-4).unwrap();
    let mut dopt = adam.build(&dvs, 5e-4).unwrap();
    let loss = GanLoss::Wasserstein;
    let critic_fn = |x: &Tensor| -> Result<Tensor> { Ok(critic.forward(x)) };
    for step in 0..GAN_STEPS {
        let z = Tensor::randn([256, 8], (Kind::Float, Device::Cpu));
        match phase(step, 5) {
            Phase::Discriminator => {
                let real = mixture_batch(256);
                let fake = gen.forward(&z).detach();
                let gp = gradient_penalty(&critic_fn, &real, &fake).unwrap();
                dopt.backward_step(
                    &(loss.discriminator(&critic.forward(&real), &critic.forward(&fake))
                        + gp * 0.1),
                );
            }
            Phase::Generator => {
                gopt.backward_step(&loss.generator(&critic.forward(&gen.forward(&z))))
            }
        }
    }
    let samples =
        tch::no_grad(|| gen.forward(&Tensor::randn([2000, 8], (Kind::Float, Device::Cpu))));
    let (good, per_mode) = mixture_stats(&samples);
    eprintln!("GAN: {good:.3} of samples within 0.3 of a mode; per mode {per_mode:?}");
    assert!(
        good > 0.5 && per_mode.iter().filter(|&&f| f > 0.05).count() >= 3,
        "GAN did not learn the mixture"
    );
}

#[test]
fn kl_autoencoder_compresses_and_learns_on_every_rank() {
    use unet_core::diffusion::autoencoder::{Autoencoder, AutoencoderConfig};
    tch::set_num_threads(1);
    for dims in 1..=3usize {
        let cfg = AutoencoderConfig {
            dims,
            in_channels: 1,
            channels: vec![8, 16],
            latent_channels: 2,
            norm_groups: 4,
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let ae = Autoencoder::new(&vs.root(), &cfg).unwrap();
        let side = [0, 32, 16, 8][dims];
        let mut shape = vec![4i64, 1];
        shape.extend(std::iter::repeat_n(side, dims));
        let x = Tensor::rand(&shape, (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let (mean, logvar) = ae.encode(&x, false).unwrap();
        let mut lat = vec![4i64, 2];
        lat.extend(std::iter::repeat_n(side / ae.factor(), dims));
        assert_eq!(mean.size(), lat);
        assert_eq!(logvar.size(), lat);
        assert_eq!(ae.decode(&mean, false).unwrap().size(), shape);
        let mut opt = nn::Adam::default().build(&vs, 3e-3).unwrap();
        let first = ae.loss(&x).unwrap().0.double_value(&[]);
        for _ in 0..40 {
            let (recon, kl) = ae.loss(&x).unwrap();
            opt.backward_step(&(recon + kl * 1e-4));
        }
        let last = ae.loss(&x).unwrap().0.double_value(&[]);
        assert!(last < first * 0.7, "{dims}D: reconstruction {first} -> {last}");
    }
}
