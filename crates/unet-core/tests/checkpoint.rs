//! Safetensors checkpoints: bit-exact round trips, strict refusal of mismatches, corrupt files.

use std::collections::HashMap;

use tch::{nn, Device, Kind, Tensor};
use unet_core::{checkpoint, Error, UNet, UNetConfig};

fn cfg() -> UNetConfig {
    UNetConfig { channels: vec![4, 8, 16], ..UNetConfig::default() }
}

fn model(c: &UNetConfig, seed: i64) -> (nn::VarStore, UNet) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = UNet::new(&vs.root(), c).unwrap();
    (vs, net)
}

#[test]
fn round_trip_is_bit_exact_including_buffers_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let (vs, net) = model(&cfg(), 1);
    // Move the batch-norm buffers away from their initial values.
    let x = Tensor::randn([2, 1, 16, 16], (Kind::Float, Device::Cpu));
    let _ = net.forward_t(&x, true).unwrap();
    let meta = HashMap::from([("config".to_string(), serde_json::to_string(&cfg()).unwrap())]);
    checkpoint::save(&vs, &path, Some(meta)).unwrap();

    let (mut vs2, net2) = model(&cfg(), 2);
    let got_meta = checkpoint::load_strict(&mut vs2, &path).unwrap();
    let restored: UNetConfig = serde_json::from_str(&got_meta["config"]).unwrap();
    assert_eq!(restored, cfg());
    let a = vs.variables();
    let b = vs2.variables();
    assert_eq!(a.len(), b.len());
    for (k, t) in &a {
        assert!(t.equal(&b[k]), "{k} differs after round trip");
    }
    let ya = net.forward_t(&x, false).unwrap();
    let yb = net2.forward_t(&x, false).unwrap();
    assert!(ya.equal(&yb), "outputs differ bit-wise");
    // No temporary file is left behind.
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn mismatched_checkpoints_are_refused_with_names() {
    let dir = tempfile::tempdir().unwrap();
    let (vs, _) = model(&cfg(), 1);
    let mut tensors = checkpoint::named_variables(&vs);

    // Missing key.
    let mut missing = tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect::<std::collections::BTreeMap<_, _>>();
    missing.remove("outc.conv.bias");
    let p = dir.path().join("missing.safetensors");
    checkpoint::write_atomic(&p, &checkpoint::to_bytes(&missing, None).unwrap()).unwrap();
    let (mut target, _) = model(&cfg(), 2);
    let before = target.variables()["outc.conv.weight"].copy();
    match checkpoint::load_strict(&mut target, &p).unwrap_err() {
        Error::CheckpointMismatch { missing, unexpected, shape_mismatch, .. } => {
            assert_eq!(missing, vec!["outc.conv.bias".to_string()]);
            assert!(unexpected.is_empty() && shape_mismatch.is_empty());
        }
        e => panic!("unexpected {e}"),
    }
    assert!(before.equal(&target.variables()["outc.conv.weight"]), "nothing copied on failure");

    // Extra key.
    tensors.insert("extra.weight".into(), Tensor::zeros([3], (Kind::Float, Device::Cpu)));
    let p = dir.path().join("extra.safetensors");
    checkpoint::write_atomic(&p, &checkpoint::to_bytes(&tensors, None).unwrap()).unwrap();
    let e = checkpoint::load_strict(&mut target, &p).unwrap_err();
    assert!(e.to_string().contains("extra.weight"), "{e}");
    assert!(
        matches!(e, Error::CheckpointMismatch { ref unexpected, .. } if unexpected == &["extra.weight"])
    );
    tensors.remove("extra.weight");

    // Wrong shape.
    tensors
        .insert("outc.conv.weight".into(), Tensor::zeros([2, 4, 1, 1], (Kind::Float, Device::Cpu)));
    let p = dir.path().join("shape.safetensors");
    checkpoint::write_atomic(&p, &checkpoint::to_bytes(&tensors, None).unwrap()).unwrap();
    let e = checkpoint::load_strict(&mut target, &p).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("outc.conv.weight")
            && text.contains("[1, 4, 1, 1]")
            && text.contains("[2, 4, 1, 1]"),
        "{text}"
    );

    // A checkpoint of another architecture.
    let (other, _) = model(&UNetConfig { channels: vec![4, 8], ..UNetConfig::default() }, 3);
    let p = dir.path().join("other.safetensors");
    checkpoint::save(&other, &p, None).unwrap();
    match checkpoint::load_strict(&mut target, &p).unwrap_err() {
        Error::CheckpointMismatch { missing, shape_mismatch, .. } => {
            assert!(missing.iter().any(|k| k.starts_with("down2.")));
            assert!(!shape_mismatch.is_empty());
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn truncated_and_corrupt_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (vs, _) = model(&cfg(), 1);
    let good = dir.path().join("good.safetensors");
    checkpoint::save(&vs, &good, None).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let (mut target, _) = model(&cfg(), 2);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short-header", bytes[..4].to_vec()),
        ("truncated-header", bytes[..40].to_vec()),
        ("truncated-data", bytes[..bytes.len() - 100].to_vec()),
        ("garbage", b"this is not a safetensors file at all, just text".to_vec()),
        ("huge-header-len", {
            let mut b = bytes.clone();
            b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
            b
        }),
        ("bad-json", {
            let mut b = bytes.clone();
            b[8] = b'#';
            b
        }),
    ];
    for (name, data) in cases {
        let p = dir.path().join(format!("{name}.safetensors"));
        std::fs::write(&p, data).unwrap();
        match checkpoint::load_strict(&mut target, &p) {
            Err(Error::CorruptCheckpoint { path, reason }) => {
                assert_eq!(path, p, "{name}");
                assert!(!reason.is_empty());
            }
            other => panic!("{name}: expected CorruptCheckpoint, got {other:?}"),
        }
    }
    let missing = dir.path().join("nope.safetensors");
    let e = checkpoint::load_strict(&mut target, &missing).unwrap_err();
    assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("nope.safetensors"));
}

#[test]
fn a_failed_write_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let (vs, _) = model(&cfg(), 1);
    checkpoint::save(&vs, &path, None).unwrap();
    let before = std::fs::read(&path).unwrap();
    // Writing into a directory that cannot hold the temp file fails, and the target survives.
    let bad = path.join("sub").join("x.safetensors");
    assert!(checkpoint::save(&vs, &bad, None).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
