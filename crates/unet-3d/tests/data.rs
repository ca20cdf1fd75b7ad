//! The 3D data sets: embedded samples always, the full cached sets of
//! `cargo xtask datasets fetch cgal|pyvista` when present (skipped with a note otherwise).

use unet_3d::data::{
    default_cache, frog_tissues, label_volumes, liver, shape_meshes, voxel_shapes, CGAL_MESHES,
};

#[test]
fn embedded_label_volumes() {
    let vols = label_volumes(None).unwrap();
    assert_eq!(vols.len(), 2);
    let liver = &vols[0];
    assert_eq!((liver.name.as_str(), liver.labels.dims), ("liver", [438, 353, 165]));
    assert_eq!(liver.values, vec![0, 85, 127, 255]);
    // the voxel counts of the file: 85 and the two stray 84s merged into class 1
    let l = &liver.labels;
    assert_eq!(
        [l.count(0), l.count(1), l.count(2), l.count(3)],
        [22_019_024, 17_704, 314_086, 3_160_496]
    );
    assert!(liver.source.contains("embedded"));

    let frog = &vols[1];
    assert_eq!(frog.labels.dims, [125, 118, 34]);
    assert_eq!(frog.labels.spacing, [4.0, 4.0, 6.0]);
    assert!(frog.classes() > 10 && frog.classes() <= 26, "{}", frog.classes());
    assert_eq!(frog.values[0], 0);
    assert!(frog.values.windows(2).all(|w| w[0] < w[1]) && *frog.values.last().unwrap() <= 29);
    // ids are dense: every class occurs, none past the last
    assert_eq!(frog.labels.unique_labels().len(), frog.classes());
    assert!(frog.labels.data.iter().all(|&v| (v as usize) < frog.classes()));
}

#[test]
fn embedded_meshes_voxelise_deterministically() {
    let meshes = shape_meshes(None).unwrap();
    assert_eq!(meshes.len(), 13);
    for (name, m) in &meshes {
        assert!(m.is_closed(), "{name} is not closed");
        assert!(CGAL_MESHES.contains(&name.as_str()), "{name} not in the recipe list");
    }
    let v32 = voxel_shapes(&meshes, 32);
    assert_eq!(v32.len(), 13);
    assert_eq!(v32, voxel_shapes(&meshes, 32));
    for ((name, _), v) in meshes.iter().zip(&v32) {
        assert_eq!(v.dims, [32, 32, 32]);
        let filled = v.count(1);
        assert!(filled > 20 && filled <= 30 * 30 * 30, "{name}: {filled} voxels");
        // the one-voxel margin stays empty
        assert!((0..32)
            .all(|a| (0..32).all(|b| v.get(0, a, b) == Some(0) && v.get(a, b, 31) == Some(0))));
    }
    // the cube fills its 30³ box exactly
    let cube = meshes.iter().position(|(n, _)| n == "cube.off").unwrap();
    assert_eq!(v32[cube].count(1), 27_000);
    let v64 = voxel_shapes(&meshes[cube..cube + 1], 64);
    assert_eq!(v64[0].dims, [64, 64, 64]);
    assert!(v64[0].count(1) > 7 * v32[cube].count(1));
}

#[test]
fn cached_sets_when_fetched() {
    let Some(cache) = default_cache() else { return };
    if cache.join("cgal/data/images/liver.inr.gz").is_file() {
        let l = liver(Some(&cache)).unwrap();
        assert_eq!((l.labels.dims, l.classes()), ([438, 353, 165], 4));
        assert!(!l.source.contains("embedded"));
    } else {
        eprintln!("note: cgal not cached (cargo xtask datasets fetch cgal); skipped");
    }
    if cache.join("cgal/data/meshes").is_dir() {
        let meshes = shape_meshes(Some(&cache)).unwrap();
        assert_eq!(meshes.len(), 44);
        let vox = voxel_shapes(&meshes, 32);
        for ((name, m), v) in meshes.iter().zip(&vox) {
            assert!(m.is_closed(), "{name} is not closed");
            assert!(v.count(1) > 20, "{name}: {} voxels", v.count(1));
        }
    }
    if cache.join("pyvista/frog_tissues.vti").is_file() {
        let f = frog_tissues(Some(&cache)).unwrap();
        assert_eq!((f.labels.dims, f.classes()), ([500, 470, 136], 26));
        assert_eq!(f.values.last(), Some(&29));
    } else {
        eprintln!("note: pyvista not cached (cargo xtask datasets fetch pyvista); skipped");
    }
}
