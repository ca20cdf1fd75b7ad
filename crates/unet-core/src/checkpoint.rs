//! Checkpoints as safetensors: atomic writes and strict loads (house rule 4).
//!
//! [`save`] writes every variable of a `VarStore` (parameters and buffers such as batch-norm
//! running statistics) to `path` through a temporary file in the same directory that is
//! fsync'ed and renamed over the target, so a crash never leaves a half-written checkpoint.
//! [`load_strict`] compares names, shapes and dtypes in both directions before copying a single
//! value and reports every difference by name.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::{Error, Result};

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source }
}

fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Bool => Dtype::BOOL,
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Int16 => Dtype::I16,
        Kind::Int => Dtype::I32,
        Kind::Int64 => Dtype::I64,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Half => Dtype::F16,
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        _ => return None,
    })
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::BOOL => Kind::Bool,
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::I16 => Kind::Int16,
        Dtype::I32 => Kind::Int,
        Dtype::I64 => Kind::Int64,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F16 => Kind::Half,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        _ => return None,
    })
}

/// Serialises named tensors (sorted by name) with optional string metadata.
pub fn to_bytes(
    tensors: &BTreeMap<String, Tensor>,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?;
        let dtype = dtype_of(t.kind()).ok_or_else(|| {
            Error::config("checkpoint", name, format!("dtype {:?} cannot be saved", t.kind()))
        })?;
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)?;
        let shape = t.size().iter().map(|&s| s as usize).collect();
        owned.push((name.clone(), dtype, shape, bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, d, s, b)| {
            TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)).map_err(|e| {
                Error::config("checkpoint", n, format!("cannot build a safetensors view: {e}"))
            })
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, metadata)
        .map_err(|e| Error::config("checkpoint", "<tensors>", format!("serialisation failed: {e}")))
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, fsync, rename,
/// fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// All variables (trainable parameters and buffers) of `vs`, by state-dict name.
pub fn named_variables(vs: &VarStore) -> BTreeMap<String, Tensor> {
    vs.variables().into_iter().collect()
}

/// Saves every variable of `vs` to `path` (safetensors), atomically, with `metadata`
/// (e.g. the model config as JSON) in the file header.
pub fn save(
    vs: &VarStore,
    path: impl AsRef<Path>,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes = to_bytes(&named_variables(vs), metadata)?;
    write_atomic(path.as_ref(), &bytes)
}

/// A parsed checkpoint: tensors on the CPU plus the header metadata.
#[derive(Debug)]
pub struct Checkpoint {
    /// Tensors by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// `__metadata__` of the safetensors header.
    pub metadata: HashMap<String, String>,
}

/// Reads and validates a safetensors file. A truncated or corrupt file is
/// [`Error::CorruptCheckpoint`] naming the file.
pub fn read(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let corrupt = |reason: String| Error::CorruptCheckpoint { path: path.to_path_buf(), reason };
    let st = SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let kind = kind_of(view.dtype()).ok_or_else(|| {
            corrupt(format!("tensor `{name}` has unsupported dtype {:?}", view.dtype()))
        })?;
        let shape: Vec<i64> = view.shape().iter().map(|&s| s as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .map_err(|e| corrupt(format!("tensor `{name}`: {e}")))?;
        tensors.insert(name, t);
    }
    Ok(Checkpoint { tensors, metadata: meta.metadata().clone().unwrap_or_default() })
}

fn describe(t: &Tensor) -> String {
    format!("{:?} {:?}", t.size(), t.kind())
}

/// Loads `path` into `vs` after checking, in both directions, that the names, shapes and
/// dtypes agree; nothing is copied unless everything matches. Returns the file's metadata.
pub fn load_strict(vs: &mut VarStore, path: impl AsRef<Path>) -> Result<HashMap<String, String>> {
    let path = path.as_ref();
    let ckpt = read(path)?;
    assign_strict(vs, &ckpt.tensors, path, false)?;
    Ok(ckpt.metadata)
}

/// Copies `tensors` into `vs` after the two-way name/shape check of [`load_strict`]; with
/// `convert_floats`, floating-point tensors of another precision (e.g. fp16 files) are cast
/// to the variable's dtype instead of being refused. `origin` names the source in errors.
pub fn assign_strict(
    vs: &mut VarStore,
    tensors: &BTreeMap<String, Tensor>,
    origin: &Path,
    convert_floats: bool,
) -> Result<()> {
    let vars = named_variables(vs);
    let missing: Vec<String> = vars.keys().filter(|k| !tensors.contains_key(*k)).cloned().collect();
    let unexpected: Vec<String> =
        tensors.keys().filter(|k| !vars.contains_key(*k)).cloned().collect();
    let compatible = |v: &Tensor, f: &Tensor| {
        f.kind() == v.kind() || (convert_floats && f.is_floating_point() && v.is_floating_point())
    };
    let shape_mismatch: Vec<(String, String, String)> = vars
        .iter()
        .filter_map(|(k, v)| {
            let f = tensors.get(k)?;
            (f.size() != v.size() || !compatible(v, f))
                .then(|| (k.clone(), describe(v), describe(f)))
        })
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() || !shape_mismatch.is_empty() {
        return Err(Error::CheckpointMismatch {
            path: origin.to_path_buf(),
            missing,
            unexpected,
            shape_mismatch,
        });
    }
    tch::no_grad(|| -> Result<()> {
        for (k, v) in &vars {
            let mut v = v.shallow_clone();
            let src = tensors[k].f_to_kind(v.kind())?.f_to_device(v.device())?;
            v.f_copy_(&src)?;
        }
        Ok(())
    })
}

/// Number of trainable scalars in `vs` (buffers such as running statistics excluded).
pub fn parameter_count(vs: &VarStore) -> i64 {
    vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
}

/// The unet-rs cache folder that `cargo xtask datasets fetch` fills: `$UNET_RS_CACHE`, else
/// `$XDG_CACHE_HOME/unet-rs`, else `~/.cache/unet-rs`; `None` when none of them is set.
pub fn cache_root() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("UNET_RS_CACHE") {
        Some(PathBuf::from(p))
    } else if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        Some(PathBuf::from(p).join("unet-rs"))
    } else {
        Some(PathBuf::from(std::env::var_os("HOME")?).join(".cache").join("unet-rs"))
    }
}

/// `<cache_root>/datasets/<name>`, where `cargo xtask datasets fetch <name>` writes.
pub fn dataset_dir(name: &str) -> Option<PathBuf> {
    Some(cache_root()?.join("datasets").join(name))
}
