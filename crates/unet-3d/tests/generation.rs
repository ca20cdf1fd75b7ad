//! Smoke runs of the two 3D generation reproductions (`voxel-diffusion`, `3dgaunet`) on the
//! embedded CGAL meshes: a few steps of a tiny model, every artefact written, metrics finite
//! and in range, the memoriser baseline's novelty 0, and a PLY sample that reads back with the
//! same vertex and face counts (the MeshLab round trip).
//!
//! Run: `cargo test -p unet-3d --test generation`.

use std::path::Path;

use tch::Device;
use unet_3d::io::ply::read_ply;
use unet_3d::models::shapes::{self, ShapeData, ShapeMetrics};
use unet_3d::models::{gaunet, voxel_diffusion};

fn check_metrics(m: &ShapeMetrics, what: &str) {
    for (name, v) in [("cov_iou", m.cov_iou), ("cov_cd", m.cov_cd)] {
        assert!((0.0..=1.0).contains(&v), "{what} {name} = {v}");
    }
    assert!((0.0..=1.0).contains(&m.mmd_iou), "{what} mmd_iou = {}", m.mmd_iou);
    assert!(m.mmd_cd.is_finite() && m.mmd_cd >= 0.0, "{what} mmd_cd = {}", m.mmd_cd);
    assert!((0.0..=1.0).contains(&m.novelty), "{what} novelty = {}", m.novelty);
    assert!((0.0..=1.0).contains(&m.occupancy), "{what} occupancy = {}", m.occupancy);
}

fn check_artefacts(out: &Path, plys: &[std::path::PathBuf], memoriser: &ShapeMetrics) {
    for f in ["report.md", "metrics.json", "loss.png", "samples.png"] {
        let p = out.join(f);
        assert!(p.is_file() && std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) > 0, "{f}");
    }
    let png = std::fs::read(out.join("samples.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(memoriser.novelty, 0.0);
    assert_eq!(plys.len(), 8);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("COV-IoU") && report.contains("memoriser"));
    assert!(!report.contains("NaN"), "{report}");
    // Round trip through the PLY reader.
    for p in plys {
        assert!(p.is_file());
    }
    let soft = shapes::from_tensor(
        &shapes::to_tensor(&ShapeData::load(None, 32).unwrap().train[..1]).unwrap(),
    )
    .unwrap();
    let mesh = shapes::mesh_of(&soft[0]);
    let path = out.join("roundtrip.ply");
    unet_3d::io::ply::write_ply(&path, &mesh, unet_3d::io::ply::PlyFormat::BinaryLittleEndian)
        .unwrap();
    let back = read_ply(&path).unwrap();
    assert!(!mesh.faces.is_empty());
    assert_eq!((back.vertices.len(), back.faces.len()), (mesh.vertices.len(), mesh.faces.len()));
    // Every written sample reads back with the counts its header declares.
    for p in plys {
        let bytes = std::fs::read(p).unwrap();
        let end = bytes.windows(10).position(|w| w == b"end_header").unwrap();
        let header = String::from_utf8_lossy(&bytes[..end]).to_string();
        let count = |element: &str| -> usize {
            header
                .lines()
                .find_map(|l| l.strip_prefix(&format!("element {element} ")))
                .map(|n| n.trim().parse().unwrap())
                .unwrap_or(0)
        };
        let mesh = read_ply(p).unwrap();
        assert_eq!((mesh.vertices.len(), mesh.faces.len()), (count("vertex"), count("face")));
    }
}

#[test]
fn split_augment_and_baselines() {
    let d = ShapeData::load(None, 32).unwrap();
    assert_eq!(d.train.len() + d.reference.len(), 13);
    assert_eq!(d.reference.len(), 2);
    let x = d.augmented_train().unwrap();
    assert_eq!(x.size(), [8 * d.train.len() as i64, 1, 32, 32, 32]);
    // Augmentation keeps the occupancy of every shape.
    let back = shapes::from_tensor(&x).unwrap();
    let n = d.train.len();
    for (i, v) in back.iter().enumerate() {
        let b = shapes::binarise(v);
        assert_eq!(b.count(1), d.train[i % n].count(1), "variant {i}");
    }
    let occ = d.train_occupancy();
    let rnd = shapes::random_baseline(4, 32, occ, 1).unwrap();
    for v in &rnd {
        let f = v.count(1) as f64 / v.len() as f64;
        assert!((f - occ).abs() < 0.01, "{f} vs {occ}");
    }
    let ev = shapes::Evaluator::new(&d);
    let (mem, rnd) = shapes::baselines(&d, &ev, 16, 3).unwrap();
    check_metrics(&mem, "memoriser");
    check_metrics(&rnd, "random");
    assert_eq!(mem.novelty, 0.0);
    assert!(rnd.novelty > mem.novelty);
    assert!(mem.mmd_iou < rnd.mmd_iou, "{mem:?} {rnd:?}");
}

#[test]
fn voxel_diffusion_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let opts = voxel_diffusion::RunOptions {
        out: dir.path().join("vd"),
        data_cache: None,
        steps: 2,
        batch_size: 2,
        base: 8,
        samples: 8,
        sample_steps: 2,
        device: Device::Cpu,
        seed: 1,
        progress: false,
    };
    let r = voxel_diffusion::run(&opts).unwrap();
    assert!(r.full_params > r.small_params && r.small_params > 0);
    assert_eq!(r.losses.len(), 2);
    check_metrics(&r.model, "voxel-diffusion");
    check_metrics(&r.memoriser, "memoriser");
    check_metrics(&r.random, "random");
    check_artefacts(&opts.out, &r.ply_files, &r.memoriser);
    assert!(opts.out.join("checkpoint.safetensors").is_file());
    // Resume: a finished run continues at its last step and trains no further.
    let again =
        voxel_diffusion::run(&voxel_diffusion::RunOptions { steps: 3, ..opts.clone() }).unwrap();
    assert_eq!(again.losses.last().map(|l| l.0), Some(3.0));
}

#[test]
fn gaunet_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let opts = gaunet::RunOptions {
        out: dir.path().join("gan"),
        data_cache: None,
        steps: 2,
        batch_size: 2,
        base: 4,
        disc_width: 4,
        samples: 8,
        device: Device::Cpu,
        seed: 1,
        progress: false,
        ..gaunet::RunOptions::default()
    };
    let r = gaunet::run(&opts).unwrap();
    assert!(r.full_params.0 > r.small_params.0 && r.full_params.1 > r.small_params.1);
    assert_eq!((r.g_losses.len(), r.d_losses.len()), (2, 2));
    check_metrics(&r.model, "3dgaunet");
    check_artefacts(&opts.out, &r.ply_files, &r.memoriser);
    assert!(opts.out.join("generator/checkpoint.safetensors").is_file());
    assert!(opts.out.join("discriminator/checkpoint.safetensors").is_file());
}
