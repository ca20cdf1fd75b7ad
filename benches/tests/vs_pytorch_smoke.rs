//! Smoke test of `cargo xtask bench-vs-pytorch`: every model of the table at a tiny size, one
//! timing round, through the same binary and PyTorch worker the full run uses. It checks the
//! equality step (outputs, first train-step losses and gradient norms agree with PyTorch on the
//! same weights)
//! and that the table has one row per model.
//!
//! Run with: `cargo test -p unet-benches --test vs_pytorch_smoke` (libtorch environment set,
//! as `cargo xtask test` does; the venv's python from `UNET_RS_PYTHON` or `LIBTORCH`).

use std::path::Path;
use std::process::Command;

const MODELS: [&str; 5] = ["algorithm1", "wave-unet", "unet3d", "ddpm", "sd-cond"];

fn bench(args: &[&str], out: &Path) {
    let st = Command::new(env!("CARGO_BIN_EXE_bench-vs-pytorch"))
        .args(args)
        .arg(out)
        .status()
        .expect("the bench binary starts");
    assert!(st.success(), "bench-vs-pytorch {args:?} failed");
}

#[test]
fn every_model_agrees_with_pytorch_and_gets_a_row() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    bench(&["peak", "--tiny", "--threads", "1", "--out"], &dir.join("peak/00.json"));
    for m in MODELS {
        let args = ["run", "--model", m, "--tiny", "--rounds", "1", "--threads", "1", "--out"];
        bench(&args, &dir.join(format!("rows/{m}.json")));
    }
    bench(&["report", "--dir"], dir);

    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let rows = all["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(names, MODELS, "one row per model, in table order");
    for r in rows {
        for (k, tol) in
            [("forward_rel_diff", 1e-4), ("loss_rel_diff", 1e-4), ("grad_norm_rel_diff", 1e-3)]
        {
            let v = r[k].as_f64().unwrap();
            assert!(v <= tol, "{}: {k} = {v}", r["model"]);
        }
        for k in ["forward_ratio", "train_ratio", "flops_forward", "flops_train"] {
            let v = r[k].as_f64().unwrap();
            assert!(v.is_finite() && v > 0.0, "{}: {k} = {v}", r["model"]);
        }
        assert!(r["ours_peak_rss"].as_u64().unwrap() > 0);
        assert!(r["pytorch_peak_rss"].as_u64().unwrap() > 0);
    }
    let md = std::fs::read_to_string(dir.join("results.md")).unwrap();
    for m in MODELS {
        assert!(md.contains(&format!("| {m} |")), "no row for {m} in\n{md}");
    }
}
