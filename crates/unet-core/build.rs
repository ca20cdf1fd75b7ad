//! Compiles the C++ shims against the libtorch that `torch-sys` found: `csrc/ops.cpp` (ATen
//! operators tch does not expose) and `csrc/c10d.cpp` (distributed training).
//!
//! libtorch ships the c10d headers but not the Gloo headers they include; those come from
//! Debian's `libgloo-dev` (`/usr/include/gloo`) or `$GLOO_INCLUDE_DIR`. Without them the crate
//! still builds, and `unet_core::distributed` returns a typed error saying what to install.
//! The `nccl` feature adds ProcessGroupNCCL; it needs a CUDA toolkit (`$CUDA_HOME/include`)
//! and `nccl.h` (`$NCCL_INCLUDE_DIR`, else the `nvidia-nccl` wheel beside libtorch).

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(unet_c10d)");
    println!("cargo::rustc-check-cfg=cfg(unet_c10d_nccl)");
    println!("cargo::rustc-check-cfg=cfg(unet_ops)");
    println!("cargo:rerun-if-changed=csrc/c10d.cpp");
    println!("cargo:rerun-if-changed=csrc/ops.cpp");
    for v in ["GLOO_INCLUDE_DIR", "CUDA_HOME", "NCCL_INCLUDE_DIR", "LIBTORCH_CXX11_ABI"] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    if std::env::var("DOCS_RS").is_ok() {
        return;
    }
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        println!(
            "cargo:warning=unet-core: torch-sys reported no libtorch folder; building without c10d"
        );
        return;
    };
    let torch = lib.parent().map(Path::to_path_buf).unwrap_or_default();
    let include = torch.join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let base = || {
        let mut b = cc::Build::new();
        b.cpp(true)
            .pic(true)
            .std("c++17")
            .warnings(false)
            .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
            .define("GLOG_USE_GLOG_EXPORT", None)
            .include(&include)
            .include(include.join("torch/csrc/api/include"));
        b
    };
    println!("cargo:rustc-link-search=native={}", lib.display());
    if include.join("ATen/ops/leaky_relu.h").exists() {
        base().file("csrc/ops.cpp").compile("unet_ops");
        println!("cargo:rustc-link-lib=dylib=torch_cpu");
        println!("cargo:rustc-link-lib=dylib=c10");
        println!("cargo:rustc-cfg=unet_ops");
    }
    if !include.join("torch/csrc/distributed/c10d/ProcessGroupGloo.hpp").exists() {
        println!(
            "cargo:warning=unet-core: {} has no c10d headers; building without distributed training",
            include.display()
        );
        return;
    }
    let gloo = std::env::var_os("GLOO_INCLUDE_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/include"), PathBuf::from("/usr/local/include")])
        .find(|d| d.join("gloo/algorithm.h").exists());
    let Some(gloo) = gloo else {
        // Build again once they are installed (a new folder changes these folders' listings).
        for d in ["/usr/include", "/usr/local/include"] {
            if Path::new(d).exists() {
                println!("cargo:rerun-if-changed={d}");
            }
        }
        println!(
            "cargo:warning=unet-core: no Gloo headers (install Debian's libgloo-dev or set \
             GLOO_INCLUDE_DIR); building without distributed training"
        );
        return;
    };
    println!("cargo:rerun-if-changed={}", gloo.join("gloo/algorithm.h").display());
    let mut b = base();
    b.define("USE_C10D_GLOO", None).include(&gloo).file("csrc/c10d.cpp");
    if std::env::var_os("CARGO_FEATURE_NCCL").is_some() {
        let cuda = std::env::var_os("CUDA_HOME").map(PathBuf::from);
        let nccl = std::env::var_os("NCCL_INCLUDE_DIR")
            .map(PathBuf::from)
            .or_else(|| Some(torch.parent()?.join("nvidia/nccl/include")));
        match (cuda, nccl) {
            (Some(c), Some(n))
                if c.join("include/cuda_runtime.h").exists() && n.join("nccl.h").exists() =>
            {
                b.define("USE_C10D_NCCL", None)
                    .define("USE_CUDA", None)
                    .include(c.join("include"))
                    .include(n);
                println!("cargo:rustc-cfg=unet_c10d_nccl");
                println!("cargo:rustc-link-lib=dylib=torch_cuda");
                println!("cargo:rustc-link-lib=dylib=c10_cuda");
            }
            _ => panic!(
                "unet-core feature `nccl`: need $CUDA_HOME/include/cuda_runtime.h and nccl.h \
                 ($NCCL_INCLUDE_DIR or the nvidia-nccl wheel beside libtorch)"
            ),
        }
    }
    b.compile("unet_c10d");
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    println!("cargo:rustc-cfg=unet_c10d");
}
