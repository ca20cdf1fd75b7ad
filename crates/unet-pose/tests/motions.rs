//! The DeepMimic reader, re-timing, looping, features and their typed errors.

use std::path::Path;

use unet_pose::data::{FeatureLayout, MotionSet, Windows};
use unet_pose::motion::{canonicalize, label_of, Clip};
use unet_pose::skeleton::Skeleton;
use unet_pose::PoseError;

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

#[test]
fn labels_come_from_file_names() {
    assert_eq!(label_of("humanoid3d_walk"), "walk");
    assert_eq!(label_of("humanoid3d_getup_facedown"), "getup_facedown");
    assert_eq!(label_of("0walk_forward"), "walk_forward");
    assert_eq!(label_of("turn_left1"), "turn_left");
}

#[test]
fn sample_set_loads_and_features_round_trip_through_kinematics() {
    let set = MotionSet::sample().unwrap();
    assert_eq!(set.clips.len(), 4);
    assert_eq!(set.classes, ["backflip", "kick", "run", "walk"]);
    let layout = FeatureLayout::humanoid();
    assert_eq!(layout.dim(), 61);
    let skel = Skeleton::deepmimic_humanoid();
    for clip in &set.clips {
        let poses = canonicalize(&clip.resample(30.0, 0).unwrap());
        let f = layout.encode(&poses);
        let back = layout.decode(&f, poses.len()).unwrap();
        for (p, q) in poses.iter().zip(&back) {
            let (a, b) = (skel.forward(p).unwrap(), skel.forward(q).unwrap());
            for (x, y) in a.iter().zip(&b) {
                assert!(dist(*x, *y) < 1e-4, "{}: {x:?} vs {y:?}", clip.name);
            }
        }
    }
}

#[test]
fn resampling_keeps_the_clip_and_loops_continue_smoothly() {
    let set = MotionSet::sample().unwrap();
    let walk = set.clips.iter().find(|c| c.label == "walk").unwrap();
    assert!(walk.looping);
    let skel = Skeleton::deepmimic_humanoid();
    // At the source frame times the resampled poses are the source poses.
    let fps = 1.0 / walk.durations[0];
    let re = walk.resample(fps, 0).unwrap();
    let a = skel.forward(&re[5]).unwrap();
    let b = skel.forward(&walk.poses[5]).unwrap();
    assert!(dist(a[5], b[5]) < 1e-6);
    // Continued over cycles: no jump at the seam, and the walker keeps moving forward.
    let long = walk.resample(30.0, 200).unwrap();
    assert!(long.len() >= 200);
    let mut worst: f64 = 0.0;
    for w in long.windows(2) {
        let (p, q) = (skel.forward(&w[0]).unwrap(), skel.forward(&w[1]).unwrap());
        for j in 0..p.len() {
            worst = worst.max(dist(p[j], q[j]));
        }
    }
    assert!(worst < 0.15, "largest per-frame joint step {worst} m");
    let travelled = dist(long[0].root_pos, long[long.len() - 1].root_pos);
    assert!(travelled > 5.0, "walked {travelled} m in {} frames", long.len());
}

#[test]
fn windows_are_canonical_and_labelled() {
    let set = MotionSet::sample().unwrap();
    let w = Windows::build(&set, 24.0, 32, 4).unwrap();
    assert!(w.count() > 20);
    let t = w.len;
    for f in &w.feats {
        // Root x and z start at the origin.
        assert!(f[0].abs() < 1e-6 && f[2 * t].abs() < 1e-6);
    }
    for c in 0..set.classes.len() {
        assert!(w.labels.contains(&c), "class {c} has windows");
    }
    let (mean, std) = w.stats();
    assert_eq!(mean.len(), 61);
    assert!(std.iter().all(|s| *s >= 1e-3 && s.is_finite()));
    assert!(matches!(Windows::build(&set, 24.0, 1, 4), Err(PoseError::Invalid(_))));
}

#[test]
fn malformed_motion_files_give_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"Loop": "wrap", "Frames": [[0.1, 0, 0.8, 0, 1,0,0,0, 1,0,0,0, 1,0,0,0, 1,0,0,0, 0, 1,0,0,0, 1,0,0,0, 0, 1,0,0,0, 0, 1,0,0,0, 1,0,0,0, 0]]}"#;
    let frame: serde_json::Value = serde_json::from_str(good).unwrap();
    let row = frame["Frames"][0].clone();
    let two = serde_json::json!({"Loop": "wrap", "Frames": [row, row]}).to_string();
    std::fs::write(dir.path().join("ok.txt"), &two).unwrap();
    assert_eq!(Clip::read(&dir.path().join("ok.txt")).unwrap().poses.len(), 2);

    let mut short_row = row.as_array().unwrap().clone();
    short_row.pop();
    let mut bad_dt = row.as_array().unwrap().clone();
    bad_dt[0] = serde_json::json!(-1.0);
    let cases: Vec<(&str, String, &str)> = vec![
        ("notjson.txt", "{\"Frames\": [[1, 2,".to_string(), "not a DeepMimic motion"),
        ("noframes.txt", "{\"Loop\": \"wrap\"}".to_string(), "no \"Frames\""),
        ("one.txt", serde_json::json!({"Frames": [row]}).to_string(), "at least 2"),
        ("short.txt", serde_json::json!({"Frames": [short_row, row]}).to_string(), "43 values"),
        ("dt.txt", serde_json::json!({"Frames": [bad_dt, row]}).to_string(), "duration"),
        (
            "loop.txt",
            serde_json::json!({"Loop": "twice", "Frames": [row, row]}).to_string(),
            "Loop",
        ),
        ("text.txt", serde_json::json!({"Frames": [row, "x"]}).to_string(), "not an array"),
    ];
    for (name, text, want) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let e = Clip::read(&p).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, PoseError::Format { .. }), "{name}: {msg}");
        assert!(msg.contains(name) && msg.contains(want), "{name}: {msg}");
    }
    let e = Clip::read(Path::new("/no/such/clip.txt")).unwrap_err();
    assert!(matches!(e, PoseError::Io { .. }) && e.to_string().contains("clip.txt"));
}

#[test]
fn full_set_has_twenty_clips_when_fetched() {
    let Some(dir) = unet_pose::data::cache_dir().filter(|d| d.join("data/motions").is_dir()) else {
        println!("motions cache absent (cargo xtask datasets fetch motions); skipped");
        return;
    };
    let set = MotionSet::from_dir(&dir).unwrap();
    assert_eq!(set.clips.len(), 20);
    assert_eq!(set.frames(), 1810);
    assert_eq!(set.classes.len(), 18);
}
