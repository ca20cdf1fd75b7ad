//! Readers on real files: small ones embedded in `tests/data` (always run) and the cached
//! data sets of `cargo xtask datasets fetch cgal|pyvista|nibabel` (skipped with a note when
//! absent). Override the locations with `UNET3D_CGAL_DATA`, `UNET3D_PYVISTA_DATA`,
//! `UNET3D_NIBABEL_DATA`.

use std::path::{Path, PathBuf};

use unet_3d::{AnyVolume, Error3d};

fn embedded(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn download_dir(var: &str, set: &str) -> Option<PathBuf> {
    let p = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => unet_3d::checkpoint::dataset_dir(set)?,
    };
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("note: {} not found (set {var}); skipping real-data test", p.display());
        None
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn embedded_cgal_samples() {
    let c = unet_3d::io::off::read_off(embedded("cube.off")).unwrap();
    assert_eq!((c.vertices.len(), c.faces.len()), (8, 12));
    assert!(c.is_closed());
    assert!((c.signed_volume().abs() - 8.0).abs() < 1e-6);
    let m = unet_3d::io::off::read_off(embedded("mesh_with_colors.off")).unwrap();
    assert_eq!(m.vertices.len(), 8);
    assert_eq!(m.colours.as_ref().unwrap()[0], [230, 0, 0]);
    let t = unet_3d::io::ply::read_ply(embedded("colored_tetra.ply")).unwrap();
    assert_eq!((t.vertices.len(), t.faces.len()), (4, 4));
    assert!(t.normals.is_some() && t.colours.is_some());
    let s = unet_3d::io::stl::read_stl(embedded("sphere.stl")).unwrap();
    let p = unet_3d::io::ply::read_ply(embedded("sphere.ply")).unwrap();
    assert_eq!((s.vertices.len(), s.faces.len()), (162, 320));
    assert_eq!((p.vertices.len(), p.faces.len()), (162, 320));
    assert!(s.is_closed() && p.is_closed());
    match unet_3d::io::inr::read_inr(embedded("small-scalar.inr")).unwrap() {
        AnyVolume::F32(v) => {
            assert_eq!(v.dims, [2, 2, 2]);
            assert_eq!(v.min_max(), Some((-3.0, 6.0)));
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn embedded_nibabel_and_pyvista_samples() {
    let v = unet_3d::io::nifti::read_nifti_volume(embedded("standard.nii.gz")).unwrap();
    let u = v.as_u8().unwrap();
    assert_eq!(u.dims, [4, 5, 7]);
    assert_eq!(u.spacing, [1.0, 3.0, 2.0]);
    assert_eq!(u.data.iter().map(|&x| x as u32).sum::<u32>(), 7650);
    assert_eq!(u.get(1, 2, 3), Some(255));
    // Big-endian float32 with NaNs; values checked against nibabel's get_fdata().
    let r = unet_3d::io::nifti::read_nifti_volume(embedded("resampled_anat_moved.nii")).unwrap();
    let f = r.to_f64();
    assert_eq!(f.dims, [17, 21, 3]);
    assert_eq!(f.data.iter().filter(|x| x.is_nan()).count(), 153);
    let sum: f64 = f.data.iter().filter(|x| !x.is_nan()).sum();
    assert!((sum - 7_749_957.098_663_33).abs() < 1e-3, "{sum}");
    assert!((f.get(8, 10, 1).unwrap() - 10_849.904_296_875).abs() < 1e-9);
    let ant = unet_3d::io::ply::read_ply(embedded("ant.ply")).unwrap();
    assert_eq!((ant.vertices.len(), ant.faces.len()), (486, 912));
}

#[test]
fn embedded_pipeline_voxelize_mesh_metrics() {
    let sphere = unet_3d::io::stl::read_stl(embedded("sphere.stl")).unwrap();
    let vox = unet_3d::voxelize::voxelize_solid(&sphere, 24, 0.1);
    let frac = vox.count(1) as f64 / vox.len() as f64;
    assert!((0.2..0.3).contains(&frac), "{frac}");
    let mesh = unet_3d::marching_cubes::marching_cubes(&vox.to_f32(), 0.5);
    assert!(mesh.is_closed());
    let pts_a = mesh.sample_surface(512, 1);
    let pts_b = mesh.sample_surface(512, 2);
    assert!(unet_3d::metrics::chamfer(&pts_a, &pts_b) < 0.5);
    assert_eq!(unet_3d::metrics::dice(&vox, &vox).unwrap(), 1.0);
}

#[test]
fn readers_name_the_file_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.nii");
    std::fs::write(&p, b"not a nifti").unwrap();
    let e = unet_3d::io::nifti::read_nifti(&p).unwrap_err();
    assert!(matches!(e, Error3d::Format { .. }));
    assert!(e.to_string().contains("x.nii"));
    let missing = unet_3d::io::ply::read_ply(dir.path().join("none.ply")).unwrap_err();
    assert!(matches!(missing, Error3d::Io { .. }) && missing.to_string().contains("none.ply"));
}

#[test]
fn cgal_demo_data_all_parse() {
    let Some(dir) = download_dir("UNET3D_CGAL_DATA", "cgal") else {
        return;
    };
    let mut files = Vec::new();
    walk(&dir, &mut files);
    let mut n = 0;
    for f in &files {
        let name = f.to_string_lossy();
        let ok = if name.ends_with(".off") {
            unet_3d::io::off::read_off(f).map(|_| ())
        } else if name.ends_with(".ply") {
            unet_3d::io::ply::read_ply(f).map(|_| ())
        } else if name.ends_with(".stl") {
            unet_3d::io::stl::read_stl(f).map(|_| ())
        } else if name.ends_with(".xyz") || name.ends_with(".pwn") {
            unet_3d::io::xyz::read_xyz(f).map(|_| ())
        } else if name.ends_with(".inr") || name.ends_with(".inr.gz") {
            unet_3d::io::inr::read_inr(f).map(|_| ())
        } else {
            continue;
        };
        ok.unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    // The recipe's 49 files (liver, 44 meshes, 4 point clouds); 181 in the whole tarball.
    assert!(n >= 49, "{n}");
    let liver = unet_3d::io::inr::read_inr(dir.join("data/images/liver.inr.gz")).unwrap();
    assert_eq!(liver.dims(), [438, 353, 165]);
    assert_eq!(liver.type_name(), "u8");
}

#[test]
fn pyvista_frog_and_meshes() {
    let Some(dir) = download_dir("UNET3D_PYVISTA_DATA", "pyvista") else {
        return;
    };
    let frog = unet_3d::io::vti::read_vti(dir.join("frog_tissues.vti"), None).unwrap();
    let frog = frog.as_u8().unwrap();
    assert_eq!(frog.dims, [500, 470, 136]);
    assert_eq!(frog.spacing, [1.0, 1.0, 1.5]);
    let labels = frog.unique_labels();
    assert_eq!(labels.len(), 26);
    assert_eq!(labels.last(), Some(&29));
    let ch = unet_3d::io::vti::read_vti(dir.join("channels.vti"), Some("facies")).unwrap();
    assert_eq!(ch.dims(), [250, 250, 100]);
    for m in ["ant.ply", "airplane.ply", "nut.ply", "sphere.ply"] {
        let mesh = unet_3d::io::ply::read_ply(dir.join(m)).unwrap();
        assert!(!mesh.faces.is_empty());
    }
}

#[test]
fn nibabel_test_images() {
    let Some(dir) = download_dir("UNET3D_NIBABEL_DATA", "nibabel") else {
        return;
    };
    for f in [
        "anatomical.nii",
        "example4d.nii.gz",
        "example_nifti2.nii.gz",
        "functional.nii",
        "reoriented_anat_moved.nii",
        "resampled_anat_moved.nii",
        "row_major.dconn.nii",
        "standard.nii.gz",
    ] {
        unet_3d::io::nifti::read_nifti(dir.join(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    let a = unet_3d::io::nifti::read_nifti(dir.join("anatomical.nii")).unwrap();
    assert_eq!(a.dims, vec![33, 41, 25]);
    let f = unet_3d::io::nifti::read_nifti(dir.join("functional.nii")).unwrap();
    assert_eq!(f.frames.len(), 20);
    assert!(f.scl_slope != 1.0 && f.frames[0].type_name() == "f32");
    let n2 = unet_3d::io::nifti::read_nifti(dir.join("example_nifti2.nii.gz")).unwrap();
    assert_eq!((n2.version, n2.dims.clone()), (2, vec![32, 20, 12, 2]));
}
