//! Device selection, and the CUDA backend of libtorch made reachable.
//!
//! Under the default `--as-needed` linking, a Rust binary that calls no CUDA symbol directly
//! loses its dependency on `libtorch_cuda.so`; libtorch then never registers its CUDA hooks and
//! `tch::Cuda::is_available()` is false even on a GPU machine. [`load_cuda_backend`] loads the
//! library explicitly (as Python's `import torch` does), so the CUDA path works in every binary
//! built against a CUDA-enabled libtorch such as PyPI's `torch==2.11.0`.

use std::ffi::CString;
use std::sync::OnceLock;

use tch::Device;

use crate::{Error, Result};

static CUDA_BACKEND: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Loads `libtorch_cuda.so` (found through `LD_LIBRARY_PATH` / the run path) once per
/// process. `Ok(())` when it is loaded; an error string when this libtorch has no CUDA build or
/// its CUDA runtime libraries cannot be loaded. Harmless on machines without a GPU.
pub fn load_cuda_backend() -> std::result::Result<(), String> {
    CUDA_BACKEND
        .get_or_init(|| {
            let name = CString::new("libtorch_cuda.so").map_err(|e| e.to_string())?;
            // SAFETY: dlopen with a valid NUL-terminated name; the handle is intentionally
            // kept open for the life of the process.
            let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if handle.is_null() {
                // SAFETY: dlerror returns a thread-local C string or null.
                let msg = unsafe {
                    let e = libc::dlerror();
                    if e.is_null() {
                        "unknown dlopen error".to_string()
                    } else {
                        std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
                    }
                };
                Err(msg)
            } else {
                Ok(())
            }
        })
        .clone()
}

/// Parses `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available, else CPU), loading the CUDA
/// backend first; asking for CUDA where none is available is an error.
pub fn parse_device(s: &str) -> Result<Device> {
    let wants_cuda = s == "auto" || s.starts_with("cuda");
    let backend = if wants_cuda { load_cuda_backend() } else { Ok(()) };
    let device = match s {
        "cpu" => Device::Cpu,
        "auto" => Device::cuda_if_available(),
        "cuda" => Device::Cuda(0),
        _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => Device::Cuda(n),
            None => return Err(Error::config("device", s, "use cpu, cuda, cuda:N or auto")),
        },
    };
    if let Device::Cuda(n) = device {
        let count = tch::Cuda::device_count();
        if n as i64 >= count {
            let why = match backend {
                Err(e) => format!("the CUDA backend of libtorch could not be loaded: {e}"),
                Ok(()) => format!("{count} CUDA device(s) visible"),
            };
            return Err(Error::config("device", s, why));
        }
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_cuda_without_gpu_is_a_clear_error() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert!(parse_device("tpu").unwrap_err().to_string().contains("cpu, cuda"));
        let auto = parse_device("auto").unwrap();
        if tch::Cuda::device_count() == 0 {
            assert_eq!(auto, Device::Cpu);
            let e = parse_device("cuda").unwrap_err();
            assert!(e.to_string().contains("device"), "{e}");
        }
    }

    #[test]
    fn the_cuda_backend_of_a_cuda_libtorch_is_loaded() {
        // PyPI's torch==2.11.0 (what `cargo xtask setup` installs) is a CUDA build: its
        // libtorch_cuda.so must load (and register its hooks) even where no GPU exists.
        let has_cuda_lib = std::env::var("LD_LIBRARY_PATH")
            .unwrap_or_default()
            .split(':')
            .any(|d| std::path::Path::new(d).join("libtorch_cuda.so").exists());
        let r = load_cuda_backend();
        if has_cuda_lib {
            assert!(r.is_ok(), "libtorch_cuda.so present but not loadable: {r:?}");
        }
        // Querying CUDA after loading must not crash without a GPU.
        let _ = tch::Cuda::is_available();
    }
}
