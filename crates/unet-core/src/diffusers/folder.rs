//! diffusers model folders: `config.json` + `diffusion_pytorch_model.safetensors`, both ways,
//! plus an `io.safetensors` with a fixed input and this model's output for parity checks.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tch::{nn, Device, Kind, Tensor};

use super::config::{DiffusersConfig, Flavor};
use super::model::DiffusersUNet;
use crate::checkpoint::{assign_strict, read, to_bytes, write_atomic};
use crate::{Error, Result};

/// File name of the weights in a diffusers folder.
pub const WEIGHTS: &str = "diffusion_pytorch_model.safetensors";

/// Renames the attention keys of checkpoints saved by early diffusers (`query`, `key`, `value`,
/// `proj_attn`) to the current names, as diffusers does when loading them.
pub fn rename_legacy_keys(tensors: BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    tensors
        .into_iter()
        .map(|(k, v)| {
            let k = k
                .replace(".query.", ".to_q.")
                .replace(".key.", ".to_k.")
                .replace(".value.", ".to_v.")
                .replace(".proj_attn.", ".to_out.0.");
            (k, v)
        })
        .collect()
}

/// Loads a diffusers folder onto `device`: the config, then the weights with the strict
/// two-way key and shape check (fp16/bf16 files are cast to float32).
pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<(nn::VarStore, DiffusersUNet)> {
    let dir = dir.as_ref();
    let cfg = DiffusersConfig::from_file(&dir.join("config.json"))?;
    let mut vs = nn::VarStore::new(device);
    let model = DiffusersUNet::new(&vs.root(), &cfg)?;
    let weights = dir.join(WEIGHTS);
    let ckpt = read(&weights)?;
    assign_strict(&mut vs, &rename_legacy_keys(ckpt.tensors), &weights, true)?;
    Ok((vs, model))
}

/// Writes `config.json` and the weights of `vs` into `dir` (atomically, file by file).
pub fn save(vs: &nn::VarStore, cfg: &DiffusersConfig, dir: impl AsRef<Path>) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.into(), source: e })?;
    let mut json = cfg.raw.clone();
    if let Some(o) = json.as_object_mut() {
        o.entry("_diffusers_version").or_insert_with(|| "0.42.1".into());
    }
    let text = serde_json::to_string_pretty(&json).unwrap_or_default();
    write_atomic(&dir.join("config.json"), text.as_bytes())?;
    let vars = crate::checkpoint::named_variables(vs);
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_atomic(&dir.join(WEIGHTS), &to_bytes(&vars, Some(meta))?)
}

/// Re-draws every 1-D parameter (norm scales and shifts, biases) around its initial value so
/// that a parity check exercises them too; deterministic under `tch::manual_seed`.
pub fn perturb_vectors(vs: &nn::VarStore, std: f64) {
    tch::no_grad(|| {
        for (_, v) in crate::checkpoint::named_variables(vs) {
            if v.dim() == 1 && v.is_floating_point() {
                let mut v = v;
                let noise = Tensor::randn(v.size(), (v.kind(), v.device())) * std;
                let _ = v.g_add_(&noise);
            }
        }
    });
}

/// The fixed input of a parity check: batch 2, spatial side `side`, timesteps (10, 500),
/// a 7-token context for conditional models, labels (1, 3) for class-conditional ones.
pub fn parity_inputs(cfg: &DiffusersConfig, side: i64) -> BTreeMap<String, Tensor> {
    let mut shape = vec![2, cfg.in_channels];
    shape.extend(std::iter::repeat_n(side, cfg.dims));
    let mut m = BTreeMap::new();
    m.insert("sample".to_string(), Tensor::randn(&shape, (Kind::Float, Device::Cpu)));
    m.insert("timestep".to_string(), Tensor::from_slice(&[10i64, 500]));
    if cfg.flavor == Flavor::Conditional {
        let ctx = cfg.cross_attention_dim[0];
        m.insert(
            "encoder_hidden_states".to_string(),
            Tensor::randn([2, 7, ctx], (Kind::Float, Device::Cpu)),
        );
    }
    if cfg.num_class_embeds.is_some() {
        m.insert("class_labels".to_string(), Tensor::from_slice(&[1i64, 3]));
    }
    m
}

/// Runs `model` on the inputs of [`parity_inputs`].
pub fn run_on(model: &DiffusersUNet, io: &BTreeMap<String, Tensor>) -> Result<Tensor> {
    tch::no_grad(|| {
        model.forward(
            &io["sample"],
            &io["timestep"],
            io.get("encoder_hidden_states"),
            io.get("class_labels"),
        )
    })
}

/// Exports a folder diffusers can load (`from_pretrained(dir)`) plus `io.safetensors` holding
/// the fixed input and this model's `output` on it.
pub fn export_with_io(
    vs: &nn::VarStore,
    model: &DiffusersUNet,
    dir: impl AsRef<Path>,
    side: i64,
) -> Result<()> {
    let dir = dir.as_ref();
    save(vs, model.config(), dir)?;
    let mut io = parity_inputs(model.config(), side);
    let out = run_on(model, &io)?;
    io.insert("output".to_string(), out);
    write_atomic(&dir.join("io.safetensors"), &to_bytes(&io, None)?)
}
