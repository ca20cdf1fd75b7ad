use std::path::Path;
use unet_pose::bvh::{euler_from_matrix, matrix_from_euler, Bvh, BvhJoint, Channel};
use unet_pose::PoseError;

use Channel::{Xposition, Xrotation, Yposition, Yrotation, Zposition, Zrotation};

type Mat3 = [[f64; 3]; 3];

fn assert_close3(got: [f64; 3], want: [f64; 3], tol: f64, what: &str) {
    for a in 0..3 {
        assert!((got[a] - want[a]).abs() <= tol, "{what}: got {got:?}, want {want:?}");
    }
}

fn max_mat_diff(a: &Mat3, b: &Mat3) -> f64 {
    let mut m = 0.0f64;
    for i in 0..3 {
        for j in 0..3 {
            m = m.max((a[i][j] - b[i][j]).abs());
        }
    }
    m
}

fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

fn mat_vec(a: &Mat3, v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| (0..3).map(|k| a[i][k] * v[k]).sum())
}

/// Simple 64-bit LCG (Knuth's MMIX constants), uniform in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
    /// A uniformly random rotation from a random unit quaternion.
    fn rotation(&mut self) -> Mat3 {
        let (mut w, mut x, mut y, mut z);
        loop {
            w = self.range(-1.0, 1.0);
            x = self.range(-1.0, 1.0);
            y = self.range(-1.0, 1.0);
            z = self.range(-1.0, 1.0);
            let n2: f64 = w * w + x * x + y * y + z * z;
            if n2 > 1e-3 && n2 <= 1.0 {
                let n = n2.sqrt();
                w /= n;
                x /= n;
                y /= n;
                z /= n;
                break;
            }
        }
        [
            [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y)],
            [2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x)],
            [2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)],
        ]
    }
}

const THREE_JOINTS: &str = "HIERARCHY
ROOT Hips
{
\tOFFSET 5 5 5
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
\tJOINT Chest
\t{
\t\tOFFSET 0 10 0
\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\tJOINT Head
\t\t{
\t\t\tOFFSET 0 5 0
\t\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\t\tEnd Site
\t\t\t{
\t\t\t\tOFFSET 0 2 0
\t\t\t}
\t\t}
\t}
}
MOTION
Frames: 3
Frame Time: 0.0333333
1 2 3 0 0 0 0 0 0 0 0 0
1 2 3 90 0 0 0 90 0 0 0 0
0 0 0 0 0 90 -90 0 0 0 0 0
";

#[test]
fn hand_computed_forward_kinematics() {
    let bvh = Bvh::parse(THREE_JOINTS, Path::new("three.bvh")).unwrap();
    assert_eq!(bvh.joints.len(), 3);
    assert_eq!(bvh.joints[0].parent, None);
    assert_eq!(bvh.joints[1].parent, Some(0));
    assert_eq!(bvh.joints[2].parent, Some(1));
    assert_eq!(bvh.joints[2].end_site, Some([0.0, 2.0, 0.0]));
    assert_eq!(bvh.channel_count(), 12);
    assert_eq!(bvh.frames.len(), 3);
    assert!((bvh.frame_time - 0.0333333).abs() < 1e-15);

    // Frame 0: no rotation; position channels replace the root OFFSET (5 5 5).
    let p = bvh.positions(0).unwrap();
    assert_close3(p[0], [1.0, 2.0, 3.0], 1e-12, "f0 root");
    assert_close3(p[1], [1.0, 12.0, 3.0], 1e-12, "f0 chest");
    assert_close3(p[2], [1.0, 17.0, 3.0], 1e-12, "f0 head");
    let e = bvh.end_site_positions(0).unwrap();
    assert_eq!(e[0], None);
    assert_close3(e[2].unwrap(), [1.0, 19.0, 3.0], 1e-12, "f0 end");

    // Frame 1: root Z 90° sends +Y to −X; chest X 90° sends +Y to +Z.
    let p = bvh.positions(1).unwrap();
    assert_close3(p[0], [1.0, 2.0, 3.0], 1e-12, "f1 root");
    assert_close3(p[1], [-9.0, 2.0, 3.0], 1e-12, "f1 chest");
    assert_close3(p[2], [-9.0, 2.0, 8.0], 1e-12, "f1 head");
    let e = bvh.end_site_positions(1).unwrap();
    assert_close3(e[2].unwrap(), [-9.0, 2.0, 10.0], 1e-12, "f1 end");

    // Frame 2: root Y 90° ((x,y,z) -> (z,y,-x)), chest Z -90° (+Y -> +X).
    let p = bvh.positions(2).unwrap();
    assert_close3(p[0], [0.0, 0.0, 0.0], 1e-12, "f2 root");
    assert_close3(p[1], [0.0, 10.0, 0.0], 1e-12, "f2 chest");
    assert_close3(p[2], [0.0, 10.0, -5.0], 1e-12, "f2 head");
    let e = bvh.end_site_positions(2).unwrap();
    assert_close3(e[2].unwrap(), [0.0, 10.0, -7.0], 1e-12, "f2 end");

    // Local transforms: the root translation is the position channels.
    let local = bvh.local_transforms(1).unwrap();
    assert_close3(local[0].1, [1.0, 2.0, 3.0], 0.0, "local root t");
    assert_close3(local[1].1, [0.0, 10.0, 0.0], 0.0, "local chest t");
    assert!(
        max_mat_diff(&local[0].0, &[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) < 1e-12
    );

    // Out-of-range frame is a typed error.
    assert!(matches!(bvh.positions(3), Err(PoseError::Invalid(m)) if m.contains('3')));
}

#[test]
fn string_round_trip_is_identical_and_tolerates_crlf() {
    let bvh = Bvh::parse(THREE_JOINTS, Path::new("a.bvh")).unwrap();
    let text = bvh.to_bvh_string();
    let again = Bvh::parse(&text, Path::new("b.bvh")).unwrap();
    assert_eq!(bvh.joints, again.joints);
    assert_eq!(bvh.frames, again.frames);
    assert_eq!(bvh.frame_time, again.frame_time);
    let crlf = THREE_JOINTS.replace('\n', "\r\n");
    let c = Bvh::parse(&crlf, Path::new("c.bvh")).unwrap();
    assert_eq!(c, bvh);
}

fn chain_skeleton(order: [Channel; 3]) -> Vec<BvhJoint> {
    let rot = order.to_vec();
    let mut root_ch = vec![Xposition, Yposition, Zposition];
    root_ch.extend_from_slice(&rot);
    let mut joints = vec![BvhJoint::new("root", None, [0.0, 0.0, 0.0], root_ch)];
    let offsets = [[0.0, 45.0, 3.0], [12.0, 30.0, -4.0], [0.0, 38.5, 0.0], [-20.0, 5.0, 7.5]];
    for (i, off) in offsets.iter().enumerate() {
        joints.push(BvhJoint::new(format!("j{i}"), Some(i), *off, rot.clone()));
    }
    // A branch from joint 1, so the hierarchy is not a plain chain.
    joints.push(BvhJoint::new("branch", Some(1), [15.0, 0.0, 9.0], rot.clone()));
    joints[4].end_site = Some([0.0, 11.0, 0.0]);
    joints
}

fn fk_from_matrices(joints: &[BvhJoint], root: [f64; 3], rots: &[Mat3]) -> Vec<[f64; 3]> {
    let mut wr: Vec<Mat3> = Vec::new();
    let mut wp: Vec<[f64; 3]> = Vec::new();
    for (i, j) in joints.iter().enumerate() {
        match j.parent {
            None => {
                wr.push(rots[i]);
                wp.push(root);
            }
            Some(p) => {
                let t = mat_vec(&wr[p], j.offset);
                wp.push([t[0] + wp[p][0], t[1] + wp[p][1], t[2] + wp[p][2]]);
                wr.push(mat_mul(&wr[p], &rots[i]));
            }
        }
    }
    wp
}

fn round_trip_for(order: [Channel; 3], seed: u64) {
    let mut rng = Lcg(seed);
    let joints = chain_skeleton(order);
    let n = joints.len();
    let mut rotations: Vec<Vec<Mat3>> = Vec::new();
    let mut roots = Vec::new();
    // Random rotations.
    for _ in 0..40 {
        rotations.push((0..n).map(|_| rng.rotation()).collect());
        roots.push([rng.range(-300.0, 300.0), rng.range(50.0, 150.0), rng.range(-300.0, 300.0)]);
    }
    // Near gimbal lock: middle angle ±90° minus tiny amounts, and exactly ±90°.
    for tiny in [0.0, 1e-12, 1e-9, 1e-7, 1e-5, 1e-3] {
        for sign in [1.0, -1.0] {
            let frame = (0..n)
                .map(|_| {
                    let a = rng.range(-180.0, 180.0);
                    let c = rng.range(-180.0, 180.0);
                    matrix_from_euler(order, [a, sign * (90.0 - tiny), c])
                })
                .collect();
            rotations.push(frame);
            roots.push([rng.range(-10.0, 10.0), 90.0, rng.range(-10.0, 10.0)]);
        }
    }
    let bvh = Bvh::from_rotations(joints.clone(), 1.0 / 30.0, &roots, &rotations).unwrap();
    assert_eq!(bvh.frames.len(), rotations.len());
    assert!(bvh.frames.iter().flatten().all(|v| v.is_finite()));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("motion.bvh");
    bvh.write(&path).unwrap();
    let back = Bvh::read(&path).unwrap();
    assert_eq!(back.joints.len(), n);
    assert_eq!(back.frames.len(), rotations.len());
    assert!((back.frame_time - 1.0 / 30.0).abs() < 1e-15);
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let mut worst = 0.0f64;
    for f in 0..rotations.len() {
        let want = fk_from_matrices(&joints, roots[f], &rotations[f]);
        let direct = bvh.positions(f).unwrap();
        let reread = back.positions(f).unwrap();
        for j in 0..n {
            for a in 0..3 {
                worst = worst.max((direct[j][a] - want[j][a]).abs());
                worst = worst.max((reread[j][a] - want[j][a]).abs());
            }
        }
        let e0 = bvh.end_site_positions(f).unwrap();
        let e1 = back.end_site_positions(f).unwrap();
        assert_close3(e1[4].unwrap(), e0[4].unwrap(), 1e-6, "end site");
    }
    eprintln!("{order:?}: worst {worst:e}");
    assert!(worst < 1e-6, "{order:?}: worst position error {worst}");
}

#[test]
fn round_trip_from_rotations_zxy() {
    round_trip_for([Zrotation, Xrotation, Yrotation], 1);
}

#[test]
fn round_trip_from_rotations_xyz() {
    round_trip_for([Xrotation, Yrotation, Zrotation], 2);
}

#[test]
fn euler_decomposition_reproduces_matrix_for_all_orders() {
    let axes = [Xrotation, Yrotation, Zrotation];
    let mut orders = Vec::new();
    for &a in &axes {
        for &b in &axes {
            for &c in &axes {
                if a != b && b != c {
                    orders.push([a, b, c]);
                }
            }
        }
    }
    assert_eq!(orders.len(), 12);
    let mut rng = Lcg(7);
    for order in orders {
        let proper = order[0] == order[2];
        let mut mats: Vec<Mat3> = (0..200).map(|_| rng.rotation()).collect();
        let locks: &[f64] = if proper {
            &[0.0, 180.0, 1e-9, 180.0 - 1e-9]
        } else {
            &[90.0, -90.0, 90.0 - 1e-9, -90.0 + 1e-9]
        };
        for &b in locks {
            for _ in 0..5 {
                let a = rng.range(-180.0, 180.0);
                let c = rng.range(-180.0, 180.0);
                mats.push(matrix_from_euler(order, [a, b, c]));
            }
        }
        mats.push([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        for m in &mats {
            let deg = euler_from_matrix(m, order);
            assert!(deg.iter().all(|v| v.is_finite()), "{order:?}: {deg:?}");
            let back = matrix_from_euler(order, deg);
            let d = max_mat_diff(m, &back);
            assert!(d < 1e-12, "{order:?}: matrix differs by {d}");
            if proper {
                assert!((-1e-9..=180.0 + 1e-9).contains(&deg[1]), "{deg:?}");
            } else {
                assert!((-90.0 - 1e-9..=90.0 + 1e-9).contains(&deg[1]), "{deg:?}");
            }
        }
    }
    // Angles away from lock come back exactly.
    let deg = euler_from_matrix(
        &matrix_from_euler([Zrotation, Xrotation, Yrotation], [30.0, -20.0, 110.0]),
        [Zrotation, Xrotation, Yrotation],
    );
    assert_close3(deg, [30.0, -20.0, 110.0], 1e-9, "zxy angles");
}

#[test]
fn euler_with_degenerate_orders_stays_finite() {
    let m = matrix_from_euler([Yrotation, Xposition, Yposition], [40.0, 0.0, 0.0]);
    let deg = euler_from_matrix(&m, [Yrotation, Xposition, Yposition]);
    assert_close3(deg, [40.0, 0.0, 0.0], 1e-9, "single axis");
    let order = [Xrotation, Xrotation, Zrotation];
    let m = matrix_from_euler(order, [25.0, 0.0, -60.0]);
    let deg = euler_from_matrix(&m, order);
    assert!(max_mat_diff(&matrix_from_euler(order, deg), &m) < 1e-12);
}

#[test]
fn writer_reorders_non_depth_first_joints() {
    // root, a, b, a_child: depth-first order is root, a, a_child, b.
    let joints = vec![
        BvhJoint::new("root", None, [0.0; 3], vec![Zrotation, Xrotation, Yrotation]),
        BvhJoint::new("a", Some(0), [1.0, 0.0, 0.0], vec![Zrotation, Xrotation, Yrotation]),
        BvhJoint::new("b", Some(0), [-1.0, 0.0, 0.0], vec![Zrotation, Xrotation, Yrotation]),
        BvhJoint::new("a_child", Some(1), [0.0, 2.0, 0.0], vec![]),
    ];
    let bvh = Bvh {
        joints,
        frame_time: 0.04,
        frames: vec![vec![10.0, 20.0, 30.0, 0.0, 0.0, 45.0, 5.0, 6.0, 7.0]],
    };
    bvh.validate().unwrap();
    let back = Bvh::parse(&bvh.to_bvh_string(), Path::new("x.bvh")).unwrap();
    let names: Vec<&str> = back.joints.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["root", "a", "a_child", "b"]);
    let p0 = bvh.positions(0).unwrap();
    let p1 = back.positions(0).unwrap();
    for (i, j) in bvh.joints.iter().enumerate() {
        let k = back.joint_index(&j.name).unwrap();
        assert_close3(p1[k], p0[i], 1e-9, &j.name);
    }
}

#[test]
fn root_without_channels_is_allowed() {
    let text = "HIERARCHY\nROOT r\n{\n OFFSET 0 0 0\n JOINT c\n {\n  OFFSET 0 1 0\n  CHANNELS 1 Xrotation\n  End Site\n  {\n   OFFSET 0 1 0\n  }\n }\n}\nMOTION\nFrames: 2\nFrame Time: 0.1\n0\n90\n";
    let bvh = Bvh::parse(text, Path::new("r.bvh")).unwrap();
    assert!(bvh.joints[0].channels.is_empty());
    assert_eq!(bvh.frames, vec![vec![0.0], vec![90.0]]);
    let e = bvh.end_site_positions(1).unwrap();
    assert_close3(e[1].unwrap(), [0.0, 1.0, 1.0], 1e-12, "end");
    // And it survives a round trip.
    let again = Bvh::parse(&bvh.to_bvh_string(), Path::new("r2.bvh")).unwrap();
    assert_eq!(again, bvh);
}

const GOOD_HEAD: &str = "HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 3 Xposition Yposition Zposition
  JOINT Leg
  {
    OFFSET 0 -1 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 -1 0
    }
  }
}
";

/// Parses `text` as "bad.bvh" and checks the error is `Format` at `line` and mentions `needle`.
fn expect_format(text: &str, line: Option<usize>, needle: &str) {
    let err = Bvh::parse(text, Path::new("dir/bad.bvh")).unwrap_err();
    let msg = err.to_string();
    match &err {
        PoseError::Format { line: got, .. } => {
            assert_eq!(*got, line, "line for {needle:?}: {msg}");
        }
        other => panic!("expected Format error for {needle:?}, got {other:?}"),
    }
    assert!(msg.contains("bad.bvh"), "{msg}");
    if let Some(l) = line {
        assert!(msg.contains(&format!("bad.bvh:{l}: ")), "{msg}");
    }
    assert!(
        msg.to_lowercase().contains(&needle.to_lowercase()),
        "{msg:?} should mention {needle:?}"
    );
}

#[test]
fn malformed_files_give_format_errors_with_file_and_line() {
    let motion = "MOTION\nFrames: 1\nFrame Time: 0.01\n0 0 0 0 0 0\n";
    let good = format!("{GOOD_HEAD}{motion}");
    Bvh::parse(&good, Path::new("good.bvh")).unwrap();

    expect_format("", None, "empty file");
    expect_format(" \n\t\n", None, "empty file");
    // Missing HIERARCHY.
    expect_format(&good.replacen("HIERARCHY\n", "", 1), Some(1), "missing HIERARCHY");
    // Missing MOTION.
    expect_format(GOOD_HEAD, Some(15), "missing MOTION");
    // ROOT missing.
    expect_format(&good.replacen("ROOT Hips", "JOINT Hips", 1), Some(2), "ROOT missing");
    expect_format(&format!("HIERARCHY\n{motion}"), Some(1), "ROOT missing");
    // Unbalanced braces: the Leg's closing brace removed; reported at the root's '{' (line 3).
    let unclosed = good.replacen("    }\n  }\n}\n", "    }\n}\n", 1);
    expect_format(&unclosed, Some(3), "unbalanced braces");
    // An extra closing brace.
    expect_format(&good.replacen("}\nMOTION", "}\n}\nMOTION", 1), Some(16), "unbalanced braces");
    // Unknown keyword.
    expect_format(
        &good.replacen("    OFFSET 0 -1 0\n    CHANNELS", "    OFFSETS 0 -1 0\n    CHANNELS", 1),
        Some(8),
        "unknown keyword 'OFFSETS'",
    );
    // Unknown channel name.
    expect_format(
        &good.replacen("Zrotation Xrotation", "Wrotation Xrotation", 1),
        Some(9),
        "unknown channel name 'Wrotation'",
    );
    // CHANNELS count not matching the names.
    expect_format(
        &good.replacen("CHANNELS 3 Zrotation", "CHANNELS 4 Zrotation", 1),
        Some(9),
        "declares 4 channels but lists 3",
    );
    // Non-numeric values in an OFFSET and in a frame row.
    expect_format(
        &good.replacen("OFFSET 0 -1 0", "OFFSET 0 abc 0", 1),
        Some(8),
        "non-numeric value 'abc'",
    );
    expect_format(
        &good.replacen("0 0 0 0 0 0", "0 0 0 0 x 0", 1),
        Some(19),
        "non-numeric value 'x'",
    );
    expect_format(&good.replacen("0 0 0 0 0 0", "0 0 0 0 nan 0", 1), Some(19), "non-finite");
    // OFFSET with the wrong number of values.
    expect_format(
        &good.replacen("OFFSET 0 -1 0", "OFFSET 0 -1", 1),
        Some(8),
        "OFFSET needs 3 values",
    );
    // A frame row with the wrong number of values.
    expect_format(
        &good.replacen("0 0 0 0 0 0", "0 0 0 0 0", 1),
        Some(19),
        "has 5 values but the hierarchy declares 6",
    );
    // Frames count not matching the rows: too few rows, too many rows.
    expect_format(
        &good.replacen("Frames: 1", "Frames: 2", 1),
        Some(17),
        "declares 2 frames but 1 rows",
    );
    expect_format(&format!("{good}1 1 1 1 1 1\n"), Some(20), "more frame rows");
    expect_format(&good.replacen("Frames: 1", "Frames: -1", 1), Some(17), "frame count");
    // Non-positive or non-finite Frame Time.
    for bad in ["0", "-0.5", "inf", "NaN"] {
        expect_format(
            &good.replacen("0.01", bad, 1),
            Some(18),
            "Frame Time must be a positive finite",
        );
    }
    expect_format(
        &good.replacen("Frame Time: 0.01", "Frame Time: fast", 1),
        Some(18),
        "non-numeric Frame Time",
    );
    expect_format(
        &good.replacen("Frame Time: 0.01", "FrameRate 100", 1),
        Some(18),
        "expected 'Frame Time",
    );
    // More than one ROOT: after the first root, and nested.
    let second_root = "ROOT Other\n{\n  OFFSET 0 0 0\n}\n";
    expect_format(&format!("{GOOD_HEAD}{second_root}{motion}"), Some(16), "more than one ROOT");
    expect_format(&good.replacen("JOINT Leg", "ROOT Leg", 1), Some(6), "more than one ROOT");
    // Missing joint name, missing OFFSET, duplicate End Site.
    expect_format(&good.replacen("JOINT Leg", "JOINT", 1), Some(6), "missing joint name");
    expect_format(
        &good.replacen("    OFFSET 0 -1 0\n    CHANNELS", "    CHANNELS", 1),
        Some(13),
        "no OFFSET",
    );
}

#[test]
fn missing_file_gives_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.bvh");
    let err = Bvh::read(&path).unwrap_err();
    match &err {
        PoseError::Io { path: p, source } => {
            assert_eq!(p, &path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(err.to_string().contains("nope.bvh"), "{err}");
}

#[test]
fn read_reports_the_real_path_in_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.bvh");
    std::fs::write(&path, "HIERARCHY\nROOT a\n{\n OFFSET 0 0 0\n CHANNELS 1 Qrotation\n}\nMOTION\nFrames: 0\nFrame Time: 1\n").unwrap();
    let err = Bvh::read(&path).unwrap_err();
    assert!(matches!(err, PoseError::Format { line: Some(5), .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("{}:5: ", path.display())), "{err}");
}

#[test]
fn from_rotations_checks_lengths_and_channels() {
    let joints = chain_skeleton([Zrotation, Xrotation, Yrotation]);
    let n = joints.len();
    let id = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let rots = vec![vec![id; n]; 2];
    // Root has position channels: one root position per frame is required.
    let err = Bvh::from_rotations(joints.clone(), 0.1, &[[0.0; 3]], &rots).unwrap_err();
    assert!(matches!(&err, PoseError::Invalid(m) if m.contains("root_positions has 1")), "{err}");
    // Wrong number of rotations in a frame.
    let short = vec![vec![id; n - 1]; 2];
    let err = Bvh::from_rotations(joints.clone(), 0.1, &[[0.0; 3]; 2], &short).unwrap_err();
    assert!(
        matches!(&err, PoseError::Invalid(m) if m.contains("frame 0 has 5 rotations")),
        "{err}"
    );
    // Not a rotation matrix.
    let mut bad = rots.clone();
    bad[1][2] = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let err = Bvh::from_rotations(joints.clone(), 0.1, &[[0.0; 3]; 2], &bad).unwrap_err();
    assert!(
        matches!(&err, PoseError::Invalid(m) if m.contains("joint 2") && m.contains("frame 1")),
        "{err}"
    );
    // Unsupported channel layout.
    let mut odd = joints.clone();
    odd[1].channels = vec![Xrotation, Yrotation];
    let err = Bvh::from_rotations(odd, 0.1, &[[0.0; 3]; 2], &rots).unwrap_err();
    assert!(matches!(&err, PoseError::Invalid(m) if m.contains("j0")), "{err}");
    // Bad frame time.
    let err = Bvh::from_rotations(joints.clone(), 0.0, &[[0.0; 3]; 2], &rots).unwrap_err();
    assert!(matches!(&err, PoseError::Invalid(m) if m.contains("frame time")), "{err}");
    // A second root.
    let mut two_roots = joints;
    two_roots[3].parent = None;
    let err = Bvh::from_rotations(two_roots, 0.1, &[[0.0; 3]; 2], &rots).unwrap_err();
    assert!(matches!(&err, PoseError::Invalid(m) if m.contains("more than one ROOT")), "{err}");
}

#[test]
fn write_refuses_invalid_motion_and_leaves_no_file() {
    let mut bvh = Bvh::parse(THREE_JOINTS, Path::new("t.bvh")).unwrap();
    bvh.frames[1].pop();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.bvh");
    let err = bvh.write(&path).unwrap_err();
    assert!(matches!(&err, PoseError::Invalid(m) if m.contains("frame 1 has 11 values")), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Writing below a regular file is an I/O error naming the path.
    bvh.frames[1].push(0.0);
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    let bad = dir.path().join("file").join("out.bvh");
    let err = bvh.write(&bad).unwrap_err();
    assert!(err.to_string().contains("file"), "{err:?}");
    // Into a folder that does not exist yet: created, as every writer of the project does.
    bvh.write(&dir.path().join("new").join("out.bvh")).unwrap();
}
