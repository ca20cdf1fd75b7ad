//! `unet-image`: the runner behind `cargo xtask params|reproduce <image model>`.
//!
//! ```text
//! unet-image params unet2015
//! unet-image reproduce unet2015 --out target/reproduce/unet2015 [--steps N] [--device cuda]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tch::Device;
use unet_image::models::seg_variants::{self, Variant};
use unet_image::models::{controlnet, ddpm, freeu, inpainting, ldm, pix2pix, pixelcnnpp, unet2015};

#[derive(Parser)]
#[command(name = "unet-image", about = "Image U-Net reproductions of unet-rs")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once per process; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Print `<model> params <N>` for the full-size preset.
    Params { model: String },
    /// Load a trained checkpoint and write a PNG of samples (or translations).
    Sample {
        model: String,
        /// Checkpoint written by the model's reproduction.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Output PNG.
        #[arg(long, default_value = "samples.png")]
        out: PathBuf,
        /// Number of images.
        #[arg(long, default_value_t = 16)]
        n: i64,
        /// Sampler steps (diffusion models).
        #[arg(long, default_value_t = 25)]
        steps: i64,
        /// Seed of the initial noise.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// `cpu`, `cuda`, `cuda:N` or `auto`.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Input image (image-to-image models); repeat for several.
        #[arg(long)]
        input: Vec<PathBuf>,
        /// Text prompt (text-conditioned models); repeat for several.
        #[arg(long)]
        prompt: Vec<String>,
        /// Classifier-free guidance scale (text-conditioned models).
        #[arg(long, default_value_t = 3.0)]
        guidance: f64,
    },
    /// Train, evaluate and write the report of a model.
    Reproduce {
        model: String,
        /// Output folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Data cache with fetched data sets (embedded samples otherwise).
        #[arg(long)]
        data_cache: Option<PathBuf>,
        /// Optimiser steps.
        #[arg(long)]
        steps: Option<usize>,
        /// Batch size.
        #[arg(long)]
        batch_size: Option<usize>,
        /// Learning rate.
        #[arg(long)]
        lr: Option<f64>,
        /// Channels at full resolution of the small model.
        #[arg(long)]
        base: Option<i64>,
        /// Down-sampling levels of the small model.
        #[arg(long)]
        depth: Option<usize>,
        /// `cpu`, `cuda`, `cuda:N` or `auto`.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Training scenes.
        #[arg(long)]
        train_scenes: Option<usize>,
        /// Test scenes.
        #[arg(long)]
        test_scenes: Option<usize>,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

fn diffusers_params(
    name: &str,
    cfg: unet_image::Result<unet_image::diffusers::DiffusersConfig>,
) -> Result<(), String> {
    let cfg = cfg.map_err(|e| e.to_string())?;
    let vs = tch::nn::VarStore::new(Device::Cpu);
    unet_image::diffusers::DiffusersUNet::new(&vs.root(), &cfg).map_err(|e| e.to_string())?;
    println!("{name} params {}", unet_image::parameter_count(&vs));
    Ok(())
}

/// Models whose reproduction trains data-parallel under a launch with several processes.
const DATA_PARALLEL: &[&str] = &["ddpm"];

fn unknown(model: &str) -> String {
    format!("unknown image model `{model}`; available: {}", unet_image::models::MODELS.join(", "))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let res: Result<(), String> = match cli.cmd {
        Cmd::Params { model } => match model.as_str() {
            "unet2015" => {
                let vs = tch::nn::VarStore::new(Device::Cpu);
                unet_image::UNet::new(&vs.root(), &unet2015::full())
                    .map(|_| println!("unet2015 params {}", unet_image::parameter_count(&vs)))
                    .map_err(|e| e.to_string())
            }
            "resunet" | "multiresunet" => {
                let v = if model == "resunet" { Variant::ResUNet } else { Variant::MultiResUNet };
                v.full_params().map(|n| println!("{model} params {n}")).map_err(|e| e.to_string())
            }
            "pixelcnnpp" => {
                let vs = tch::nn::VarStore::new(Device::Cpu);
                unet_image::arch::PixelCnnPP::new(&vs.root(), &pixelcnnpp::full())
                    .map(|_| println!("pixelcnnpp params {}", unet_image::parameter_count(&vs)))
                    .map_err(|e| e.to_string())
            }
            "pix2pix" => pix2pix::full_params()
                .map(|(g, d)| {
                    println!("pix2pix params {} (generator {g}, discriminator {d})", g + d)
                })
                .map_err(|e| e.to_string()),
            // FreeU adds no parameters: its count is that of the U-Net it re-weights.
            "ddpm" | "freeu" => diffusers_params(&model, ddpm::full()),
            "inpainting" => diffusers_params(&model, inpainting::full()),
            "ldm" => diffusers_params(&model, ldm::full()),
            "controlnet" => controlnet::full()
                .and_then(|cfg| {
                    let vs = tch::nn::VarStore::new(Device::Cpu);
                    unet_image::diffusers::ControlNet::new(&vs.root(), &cfg)?;
                    Ok(unet_image::parameter_count(&vs))
                })
                .map(|n| println!("controlnet params {n}"))
                .map_err(|e| e.to_string()),
            m => Err(unknown(m)),
        },
        Cmd::Sample { model, checkpoint, out, n, steps, seed, device, input, prompt, guidance } => {
            unet_image::parse_device(&device)
                .map_err(|e| e.to_string())
                .and_then(|device| {
                    unet_image::sample::run(&unet_image::sample::SampleOptions {
                        model,
                        checkpoint,
                        out,
                        n,
                        steps,
                        seed,
                        device,
                        inputs: input,
                        freeu: None,
                        prompts: prompt,
                        guidance,
                    })
                    .map_err(|e| e.to_string())
                })
                .map(|p| println!("wrote {}", p.display()))
        }
        Cmd::Reproduce {
            model,
            out,
            data_cache,
            steps,
            batch_size,
            lr,
            base,
            depth,
            device,
            seed,
            train_scenes,
            test_scenes,
            quiet,
        } => (move || -> Result<(), String> {
            let out = out.unwrap_or_else(|| PathBuf::from("target/reproduce").join(&model));
            // A data-parallel launch (torchrun's variables, or `cargo xtask reproduce --nproc`).
            // Refused before joining, so no rank waits at the rendezvous for nothing.
            let launched =
                unet_image::distributed::LaunchEnv::from_env().map_err(|e| e.to_string())?;
            if launched.is_some() && !DATA_PARALLEL.contains(&model.as_str()) {
                return Err(format!(
                    "`{model}` does not train data-parallel yet (models that do: {})",
                    DATA_PARALLEL.join(", ")
                ));
            }
            let group = unet_image::distributed::init_from_env().map_err(|e| e.to_string())?;
            let worker = group.as_ref().is_some_and(|g| g.rank() > 0);
            let device = match (&group, device.as_str()) {
                // One GPU per process: the launch's local rank picks it.
                (Some(g), "cuda") => format!("cuda:{}", g.launch().local_rank),
                _ => device,
            };
            unet_image::parse_device(&device).map_err(|e| e.to_string()).and_then(|device| {
                // The options the diffusion reproductions share, with the ddpm defaults.
                let ddpm_opts = |out: PathBuf| {
                    let d = ddpm::RunOptions::default();
                    ddpm::RunOptions {
                        out,
                        data_cache: data_cache.clone(),
                        steps: steps.unwrap_or(d.steps),
                        batch_size: batch_size.map(|b| b as i64).unwrap_or(d.batch_size),
                        base: base.unwrap_or(d.base),
                        device,
                        seed: seed.unwrap_or(d.seed),
                        progress: !quiet,
                        ..d
                    }
                };
                match model.as_str() {
                    "unet2015" => {
                        let d = unet2015::RunOptions::default();
                        let opts = unet2015::RunOptions {
                            out,
                            data_cache: data_cache.clone(),
                            steps: steps.unwrap_or(d.steps),
                            batch_size: batch_size.unwrap_or(d.batch_size),
                            lr: lr.unwrap_or(d.lr),
                            base: base.unwrap_or(d.base),
                            depth: depth.unwrap_or(d.depth),
                            device,
                            seed: seed.unwrap_or(d.seed),
                            train_scenes: train_scenes.unwrap_or(d.train_scenes),
                            test_scenes: test_scenes.unwrap_or(d.test_scenes),
                            progress: !quiet,
                            ..d
                        };
                        let r = unet2015::run(&opts).map_err(|e| e.to_string())?;
                        println!(
                            "unet2015: Dice {:.4} / IoU {:.4} (U-Net) vs {:.4} / {:.4} (Otsu); report {}",
                            r.unet.0,
                            r.unet.1,
                            r.otsu.0,
                            r.otsu.1,
                            unet2015::report_path(&opts.out).display()
                        );
                    }
                    "resunet" | "multiresunet" => {
                        let v = if model == "resunet" { Variant::ResUNet } else { Variant::MultiResUNet };
                        let d = seg_variants::RunOptions::for_variant(v);
                        let opts = seg_variants::RunOptions {
                            out,
                            data_cache: data_cache.clone(),
                            steps: steps.unwrap_or(d.steps),
                            batch_size: batch_size.unwrap_or(d.batch_size),
                            lr: lr.unwrap_or(d.lr),
                            base: base.unwrap_or(d.base),
                            depth: depth.unwrap_or(d.depth),
                            device,
                            seed: seed.unwrap_or(d.seed),
                            train_scenes: train_scenes.unwrap_or(d.train_scenes),
                            test_scenes: test_scenes.unwrap_or(d.test_scenes),
                            progress: !quiet,
                            ..d
                        };
                        let r = seg_variants::run(v, &opts).map_err(|e| e.to_string())?;
                        println!(
                            "{model}: Dice {:.4} vs {:.4} (unet2015 design, same budget) vs {:.4} (Otsu); report {}",
                            r.variant.scores.0,
                            r.unet2015.scores.0,
                            r.otsu.0,
                            opts.out.join("report.md").display()
                        );
                    }
                    "pixelcnnpp" => {
                        let d = pixelcnnpp::RunOptions::default();
                        let opts = pixelcnnpp::RunOptions {
                            out,
                            data_cache: data_cache.clone(),
                            steps: steps.unwrap_or(d.steps),
                            batch_size: batch_size.map(|b| b as i64).unwrap_or(d.batch_size),
                            lr: lr.unwrap_or(d.lr),
                            nr_filters: base.unwrap_or(d.nr_filters),
                            nr_resnet: depth.unwrap_or(d.nr_resnet),
                            device,
                            seed: seed.unwrap_or(d.seed),
                            progress: !quiet,
                            ..d
                        };
                        let r = pixelcnnpp::run(&opts).map_err(|e| e.to_string())?;
                        println!(
                            "pixelcnnpp: test {:.3} bits/dim vs {:.3} (independent pixels) vs 8.000 (uniform); report {}",
                            r.test_bpd,
                            r.histogram_bpd,
                            opts.out.join("report.md").display()
                        );
                    }
                    "pix2pix" => {
                        let d = pix2pix::RunOptions::default();
                        let opts = pix2pix::RunOptions {
                            out,
                            data_cache: data_cache.clone(),
                            steps: steps.unwrap_or(d.steps),
                            batch_size: batch_size.map(|b| b as i64).unwrap_or(d.batch_size),
                            lr: lr.unwrap_or(d.lr),
                            ngf: base.unwrap_or(d.ngf),
                            device,
                            seed: seed.unwrap_or(d.seed),
                            progress: !quiet,
                            ..d
                        };
                        let r = pix2pix::run(&opts).map_err(|e| e.to_string())?;
                        for s in &r.scores {
                            println!(
                                "pix2pix: {:<45} PSNR {:.2} dB  SSIM {:.4}  FD-FMNIST {:.2}",
                                s.name, s.psnr, s.ssim, s.fd
                            );
                        }
                        println!("report {}", opts.out.join("report.md").display());
                    }
                    "ddpm" if worker => ddpm::train_worker(&ddpm_opts(out)).map_err(|e| e.to_string())?,
                    "ddpm" => {
                        let opts = ddpm_opts(out);
                        let r = ddpm::run(&opts).map_err(|e| e.to_string())?;
                        println!(
                            "ddpm: FD-FMNIST {:.2} with skips vs {:.2} without (real {:.2}, noise {:.2}); report {}",
                            r.variants[0].fd,
                            r.variants[1].fd,
                            r.fd_real,
                            r.fd_noise,
                            opts.out.join("report.md").display()
                        );
                    }
                    "freeu" => {
                        // FreeU re-weights the model the ddpm reproduction trained, beside `out`.
                        let ddpm_out = out.parent().map(|p| p.join("ddpm")).unwrap_or_else(|| PathBuf::from("target/reproduce/ddpm"));
                        let r = freeu::run(&out, &ddpm_opts(ddpm_out)).map_err(|e| e.to_string())?;
                        for s in &r {
                            println!("freeu: {:<40} FD-FMNIST {:.2}", s.name, s.fd);
                        }
                        println!("report {}", out.join("report.md").display());
                    }
                    "controlnet" => {
                        // Controls the model the ddpm reproduction trained, beside `out`.
                        let ddpm_out = out.parent().map(|p| p.join("ddpm")).unwrap_or_else(|| PathBuf::from("target/reproduce/ddpm"));
                        let d = controlnet::RunOptions::default();
                        let opts = controlnet::RunOptions {
                            out,
                            ddpm: ddpm_opts(ddpm_out),
                            steps: steps.unwrap_or(d.steps),
                            batch_size: batch_size.map(|b| b as i64).unwrap_or(d.batch_size),
                            lr: lr.unwrap_or(d.lr),
                            seed: seed.unwrap_or(d.seed),
                            progress: !quiet,
                            ..d
                        };
                        let r = controlnet::run(&opts).map_err(|e| e.to_string())?;
                        println!(
                            "controlnet: edge F1 {:.4} with control vs {:.4} without; FD-FMNIST {:.2} vs {:.2}; report {}",
                            r.scores[1].edge_f1,
                            r.scores[0].edge_f1,
                            r.scores[1].fd,
                            r.scores[0].fd,
                            opts.out.join("report.md").display()
                        );
                    }
                    "inpainting" => {
                        let shared = ddpm_opts(out);
                        let d = inpainting::RunOptions::default();
                        let opts = inpainting::RunOptions {
                            out: shared.out,
                            data_cache: shared.data_cache,
                            steps: steps.unwrap_or(d.steps),
                            batch_size: shared.batch_size,
                            base: shared.base,
                            device,
                            seed: seed.unwrap_or(d.seed),
                            progress: shared.progress,
                            ..d
                        };
                        let r = inpainting::run(&opts).map_err(|e| e.to_string())?;
                        println!(
                            "inpainting: PSNR(hole) {:.2} dB / SSIM {:.3} vs mean fill {:.2} dB / {:.3}; report {}",
                            r.psnr_hole.0,
                            r.ssim.0,
                            r.psnr_hole.1,
                            r.ssim.1,
                            opts.out.join("report.md").display()
                        );
                    }
                    "ldm" => {
                        let d = ldm::RunOptions::default();
                        let opts = ldm::RunOptions {
                            out,
                            data_cache: data_cache.clone(),
                            steps: steps.unwrap_or(d.steps),
                            batch_size: batch_size.map(|b| b as i64).unwrap_or(d.batch_size),
                            base: base.unwrap_or(d.base),
                            device,
                            seed: seed.unwrap_or(d.seed),
                            progress: !quiet,
                            ..d
                        };
                        let r = ldm::run(&opts).map_err(|e| e.to_string())?;
                        println!(
                            "ldm ({}): accuracy on the prompted class {:.1} % (CFG {}) / {:.1} % (no guidance) vs {:.1} % (empty prompt), chance 10 %; FD-FMNIST {:.2} (reconstruction ceiling {:.2}, AE PSNR {:.2} dB); report {}",
                            r.conditioning,
                            100.0 * r.accuracy_guided,
                            opts.guidance,
                            100.0 * r.accuracy_unguided,
                            100.0 * r.accuracy_empty_prompt,
                            r.fd_guided,
                            r.fd_recon,
                            r.ae_psnr,
                            opts.out.join("report.md").display()
                        );
                    }
                    m => return Err(unknown(m)),
                }
                Ok(())
            })
        })(),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
