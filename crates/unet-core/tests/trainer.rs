//! The trainer: exact resume, NaN guard, checkpoint contents, logs. One test in its own binary
//! because exact resume compares runs that draw from libtorch's global generator.

use tch::{nn, Device, Kind, Tensor};
use unet_core::trainer::{Trainer, TrainerConfig, CHECKPOINT};
use unet_core::{checkpoint, Error, UNet, UNetConfig};

const STEPS: usize = 8;

fn model(seed: i64) -> (nn::VarStore, UNet) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = UNetConfig { dims: 1, channels: vec![4, 8], ..UNetConfig::default() };
    let net = UNet::new(&vs.root(), &cfg).unwrap();
    (vs, net)
}

fn config(dir: &std::path::Path) -> TrainerConfig {
    TrainerConfig {
        lr: 3e-3,
        total_steps: STEPS,
        warmup_steps: 2,
        grad_clip: Some(1.0),
        ema_decay: Some(0.9),
        weight_decay: 0.01,
        checkpoint_every: 2,
        seed: 7,
        out_dir: dir.to_path_buf(),
        ..TrainerConfig::default()
    }
}

/// The loss of one step: data drawn from the (per-step seeded) global generator.
fn loss(net: &UNet, step: usize, fail_at: Option<usize>) -> unet_core::Result<Tensor> {
    if Some(step) == fail_at {
        return Err(Error::config("simulated", step, "crash"));
    }
    let x = Tensor::randn([4, 1, 16], (Kind::Float, Device::Cpu));
    let y = x.roll([1], [2]).sin();
    Ok((net.forward_t(&x, true)? - y).square().mean(Kind::Float))
}

#[test]
fn resume_is_exact_and_non_finite_losses_stop_training() {
    tch::set_num_threads(1);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();

    // Uninterrupted run.
    let (mut vs_a, net_a) = model(1);
    let mut t = Trainer::new(&vs_a, config(a.path())).unwrap();
    assert!(!t.resume(&mut vs_a).unwrap(), "fresh directory: nothing to resume");
    t.run(&mut vs_a, |s| loss(&net_a, s, None)).unwrap();
    assert_eq!(t.step(), STEPS);
    let losses_a = t.losses().to_vec();

    // Interrupted at step 5 (checkpoint at 4), then resumed in a fresh process-like setting:
    // a differently initialised model, a new trainer.
    let (mut vs_b, net_b) = model(1);
    let mut t = Trainer::new(&vs_b, config(b.path())).unwrap();
    assert!(t.run(&mut vs_b, |s| loss(&net_b, s, Some(5))).is_err());
    let (mut vs_c, net_c) = model(99);
    let mut t = Trainer::new(&vs_c, config(b.path())).unwrap();
    assert!(t.resume(&mut vs_c).unwrap());
    assert_eq!(t.step(), 4);
    // The loss history up to the checkpoint comes back from metrics.jsonl (for the plots).
    assert_eq!(t.losses().iter().map(|l| l.0 as usize).collect::<Vec<_>>(), [1, 2, 3, 4]);
    // ... bit for bit: the log's decimal text parses back to the f64 it was written from.
    assert_eq!(t.losses(), &losses_a[..4]);
    t.run(&mut vs_c, |s| loss(&net_c, s, None)).unwrap();
    assert_eq!(t.losses().len(), STEPS);

    let (va, vc) = (vs_a.variables(), vs_c.variables());
    assert_eq!(va.len(), vc.len());
    for (k, x) in &va {
        assert!(x.equal(&vc[k]), "{k} differs between the uninterrupted and the resumed run");
    }
    let ema = t.ema().unwrap();
    assert!(!ema["outc.conv.weight"].equal(&vc["outc.conv.weight"]), "EMA lags the weights");

    // Checkpoint contents and logs.
    let ck = checkpoint::read(a.path().join(CHECKPOINT)).unwrap();
    assert_eq!(ck.metadata["step"], STEPS.to_string());
    for prefix in ["model.", "optim.m.", "optim.v.", "ema."] {
        assert!(ck.tensors.keys().any(|k| k.starts_with(prefix)), "no {prefix}* in the checkpoint");
    }
    assert!(ck.tensors.contains_key("model.inc.double_conv.1.running_mean"), "buffers are saved");
    let log = std::fs::read_to_string(a.path().join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), STEPS);
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert!(first["lr"].as_f64().unwrap() > 0.0 && first["grad_norm"].as_f64().unwrap() > 0.0);
    assert!(a.path().join("loss.png").exists());

    // A NaN loss stops training with a clear error; the last checkpoint is intact.
    let n = tempfile::tempdir().unwrap();
    let (mut vs_n, net_n) = model(1);
    let mut t = Trainer::new(&vs_n, config(n.path())).unwrap();
    let e = t
        .run(&mut vs_n, |s| {
            Ok(if s == 3 { Tensor::from(f32::NAN) } else { loss(&net_n, s, None)? })
        })
        .unwrap_err();
    match e {
        Error::NonFinite { step, what, .. } => assert_eq!((step, what), (3, "loss")),
        other => panic!("expected NonFinite, got {other}"),
    }
    assert!(e_msg_mentions_lr(&t));
    assert_eq!(checkpoint::read(n.path().join(CHECKPOINT)).unwrap().metadata["step"], "2");

    // Impossible settings are refused.
    assert!(Trainer::new(&vs_n, TrainerConfig { lr: 0.0, ..config(n.path()) }).is_err());
    assert!(
        Trainer::new(&vs_n, TrainerConfig { ema_decay: Some(1.5), ..config(n.path()) }).is_err()
    );
}

fn e_msg_mentions_lr(t: &Trainer) -> bool {
    let e = Error::NonFinite { step: t.step(), what: "loss", value: f64::NAN };
    e.to_string().contains("learning rate")
}
