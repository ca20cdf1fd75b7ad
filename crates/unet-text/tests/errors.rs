//! Typed errors of the text encoder: missing, corrupt and foreign files name the file and
//! what is wrong; strict loading refuses truncated checkpoints and wrong shapes. Uses a tiny
//! random BERT, so it needs no cache. Run with `cargo test -p unet-text --test errors`.

use std::collections::BTreeMap;
use std::path::Path;

use tch::{nn, Device, Kind, Tensor};
use unet_core::checkpoint;
use unet_text::minilm::load_weights;
use unet_text::{MiniLm, MiniLmConfig, TextError, TextTokenizer};

fn tiny() -> MiniLmConfig {
    MiniLmConfig {
        vocab_size: 50,
        hidden_size: 8,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 16,
        max_position_embeddings: 16,
        ..MiniLmConfig::default()
    }
}

/// A tiny model's state dict as the file would hold it.
fn tiny_tensors() -> BTreeMap<String, Tensor> {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    MiniLm::new(&vs.root(), &tiny()).unwrap();
    checkpoint::named_variables(&vs)
}

fn write(path: &Path, tensors: &BTreeMap<String, Tensor>) {
    checkpoint::write_atomic(path, &checkpoint::to_bytes(tensors, None).unwrap()).unwrap();
}

fn load_into_fresh(path: &Path) -> Result<(nn::VarStore, MiniLm), TextError> {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let m = MiniLm::new(&vs.root(), &tiny())?;
    load_weights(&mut vs, path, &tiny())?;
    Ok((vs, m))
}

fn names(err: &TextError, path: &Path) -> String {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name {}: {msg}",
        path.display()
    );
    msg
}

#[test]
fn tokenizer_file_errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();

    let missing = tmp.path().join("nope.json");
    let e = TextTokenizer::from_file(&missing).unwrap_err();
    assert!(matches!(e, TextError::Io { .. }), "{e:?}");
    names(&e, &missing);

    let corrupt = tmp.path().join("tokenizer.json");
    std::fs::write(&corrupt, b"{\"version\": \"1.0\", \"model\": {").unwrap();
    let e = TextTokenizer::from_file(&corrupt).unwrap_err();
    assert!(matches!(e, TextError::InvalidJson { .. }), "{e:?}");
    assert!(names(&e, &corrupt).contains("invalid JSON"));

    let foreign = tmp.path().join("other.json");
    std::fs::write(&foreign, br#"{"model": {"type": "NoSuchModel"}, "hello": 1}"#).unwrap();
    let e = TextTokenizer::from_file(&foreign).unwrap_err();
    assert!(matches!(e, TextError::UnknownTokenizerFormat { .. }), "{e:?}");
    names(&e, &foreign);
}

#[test]
fn missing_model_folder_says_how_to_fetch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let e = MiniLm::load(&mut vs, tmp.path()).unwrap_err();
    assert!(matches!(e, TextError::ModelNotFound { .. }), "{e:?}");
    assert!(names(&e, tmp.path()).contains("cargo xtask datasets fetch minilm"));
}

#[test]
fn strict_loading_round_trip_and_key_handling() {
    let tmp = tempfile::tempdir().unwrap();
    let want = tiny_tensors();

    // Plain round trip, plus a `bert.` prefix and a correct `position_ids` buffer.
    let mut file = BTreeMap::new();
    for (k, v) in &want {
        file.insert(format!("bert.{k}"), v.shallow_clone());
    }
    file.insert(
        "bert.embeddings.position_ids".into(),
        Tensor::arange(16, (Kind::Int64, Device::Cpu)).unsqueeze(0),
    );
    let path = tmp.path().join("prefixed.safetensors");
    write(&path, &file);
    let (vs, model) = load_into_fresh(&path).unwrap();
    for (k, v) in checkpoint::named_variables(&vs) {
        assert!(v.equal(&want[&k]), "{k} differs after loading");
    }
    let ids = Tensor::from_slice2(&[[1i64, 5, 7, 0], [2, 3, 0, 0]]);
    let mask = Tensor::from_slice2(&[[1i64, 1, 1, 0], [1, 1, 0, 0]]);
    assert_eq!(model.forward(&ids, &mask).unwrap().size(), [2, 4, 8]);
    let emb = model.embed(&ids, &mask).unwrap();
    let norms = emb.norm_scalaropt_dim(2, 1, false);
    assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-5);

    // A wrong position_ids buffer is refused.
    let mut bad =
        want.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect::<BTreeMap<_, _>>();
    bad.insert(
        "embeddings.position_ids".into(),
        Tensor::zeros([1, 16], (Kind::Int64, Device::Cpu)),
    );
    let path = tmp.path().join("badpos.safetensors");
    write(&path, &bad);
    let e = load_into_fresh(&path).unwrap_err();
    assert!(matches!(e, TextError::BadPositionIds { .. }), "{e:?}");
    names(&e, &path);
}

#[test]
fn truncated_checkpoint_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.safetensors");
    write(&path, &tiny_tensors());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_into_fresh(&path).unwrap_err();
    assert!(matches!(e, TextError::Core(unet_core::Error::CorruptCheckpoint { .. })), "{e:?}");
    names(&e, &path);
}

#[test]
fn wrong_shape_missing_and_extra_keys_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file = tiny_tensors();
    file.insert(
        "encoder.layer.1.intermediate.dense.weight".into(),
        Tensor::zeros([8, 8], (Kind::Float, Device::Cpu)),
    );
    file.remove("pooler.dense.bias");
    file.insert("cls.predictions.bias".into(), Tensor::zeros([50], (Kind::Float, Device::Cpu)));
    let path = tmp.path().join("model.safetensors");
    write(&path, &file);
    let e = load_into_fresh(&path).unwrap_err();
    let msg = names(&e, &path);
    match &e {
        TextError::Core(unet_core::Error::CheckpointMismatch {
            missing,
            unexpected,
            shape_mismatch,
            ..
        }) => {
            assert_eq!(missing, &["pooler.dense.bias"]);
            assert_eq!(unexpected, &["cls.predictions.bias"]);
            assert_eq!(shape_mismatch.len(), 1);
            assert_eq!(shape_mismatch[0].0, "encoder.layer.1.intermediate.dense.weight");
        }
        other => panic!("expected CheckpointMismatch, got {other:?}"),
    }
    assert!(msg.contains("[16, 8]") && msg.contains("[8, 8]"), "{msg}");
}

#[test]
fn config_and_input_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config.json");
    std::fs::write(&path, br#"{"hidden_size": 384, "num_attention_heads": 5}"#).unwrap();
    let e = MiniLmConfig::from_file(&path).unwrap_err();
    assert!(
        matches!(e, TextError::InvalidModelConfig { field: "num_attention_heads", .. }),
        "{e:?}"
    );
    names(&e, &path);
    std::fs::write(&path, br#"{"hidden_act": "relu"}"#).unwrap();
    assert!(matches!(
        MiniLmConfig::from_file(&path),
        Err(TextError::InvalidModelConfig { field: "hidden_act", .. })
    ));
    std::fs::write(&path, b"not json").unwrap();
    assert!(matches!(MiniLmConfig::from_file(&path), Err(TextError::InvalidJson { .. })));
    assert_eq!(MiniLmConfig::from_dir(tmp.path().join("absent")).unwrap(), MiniLmConfig::default());

    let vs = nn::VarStore::new(Device::Cpu);
    let model = MiniLm::new(&vs.root(), &tiny()).unwrap();
    let ok = Tensor::from_slice2(&[[1i64, 2, 3]]);
    for (ids, mask) in [
        (Tensor::from_slice(&[1i64, 2, 3]), Tensor::from_slice(&[1i64, 1, 1])), // rank 1
        (Tensor::from_slice2(&[[1i64, 2, 99]]), ok.ones_like()),                // id >= vocab
        (ok.shallow_clone(), Tensor::ones([1, 4], (Kind::Int64, Device::Cpu))), // mask shape
        (ok.to_kind(Kind::Float), ok.ones_like()),                              // float ids
        (
            Tensor::zeros([1, 17], (Kind::Int64, Device::Cpu)),
            Tensor::ones([1, 17], (Kind::Int64, Device::Cpu)),
        ), // > max positions
    ] {
        let e = model.forward(&ids, &mask).unwrap_err();
        assert!(matches!(e, TextError::InvalidInput(_)), "{e:?}");
    }
}
