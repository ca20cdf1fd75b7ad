//! Forward kinematics against pybullet's own: every frame index in a spread of the clips is
//! posed in pybullet (`humanoid.urdf`, `globalScaling = 0.25`, the DeepMimic environment's
//! loading) and the 15 link-frame positions are compared with [`Skeleton::forward`].
//!
//! Needs the venv's python with pybullet (`cargo xtask test` provides both); the clips come
//! from the cache when fetched, the embedded sample otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use unet_pose::motion::Clip;
use unet_pose::skeleton::Skeleton;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("UNET_RS_PYTHON") {
        return PathBuf::from(p);
    }
    let lt = std::env::var_os("LIBTORCH").expect("run through `cargo xtask test` (LIBTORCH unset)");
    let venv = Path::new(&lt).ancestors().nth(4).expect("LIBTORCH inside a venv").to_path_buf();
    venv.join("bin").join("python")
}

fn clip_paths() -> Vec<PathBuf> {
    let cache = unet_pose::data::cache_dir().map(|d| d.join("data/motions"));
    if let Some(dir) = cache.filter(|d| d.join("humanoid3d_cartwheel.txt").exists()) {
        ["humanoid3d_cartwheel", "humanoid3d_backflip", "humanoid3d_crawl", "walker/turn_left0"]
            .iter()
            .map(|n| dir.join(format!("{n}.txt")))
            .collect()
    } else {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/motions/sample");
        ["humanoid3d_walk", "humanoid3d_backflip", "humanoid3d_kick"]
            .iter()
            .map(|n| dir.join(format!("{n}.txt")))
            .collect()
    }
}

#[test]
fn forward_kinematics_matches_pybullet() {
    let skel = Skeleton::deepmimic_humanoid();
    let mut jobs = Vec::new();
    let mut ours = Vec::new();
    for path in clip_paths() {
        let clip = Clip::read(&path).unwrap();
        let n = clip.poses.len();
        for i in [0, n / 3, n / 2, n - 1] {
            jobs.push(serde_json::json!([path.display().to_string(), i]));
            ours.push(skel.forward(&clip.poses[i]).unwrap());
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pybullet_fk.py");
    let mut child = Command::new(python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&jobs).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pybullet reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let json_line = text.lines().rev().find(|l| l.starts_with('[')).expect("JSON output");
    let theirs: Vec<Vec<[f64; 3]>> = serde_json::from_str(json_line).unwrap();
    assert_eq!(theirs.len(), ours.len());
    let mut worst: f64 = 0.0;
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(b.len(), 15, "pybullet's humanoid has 15 links");
        for (j, pb) in b.iter().enumerate() {
            let d =
                ((a[j][0] - pb[0]).powi(2) + (a[j][1] - pb[1]).powi(2) + (a[j][2] - pb[2]).powi(2))
                    .sqrt();
            worst = worst.max(d);
        }
    }
    println!("{} poses, worst joint distance to pybullet {worst:.2e} m", ours.len());
    assert!(worst < 1e-5, "worst joint distance {worst} m");
}
