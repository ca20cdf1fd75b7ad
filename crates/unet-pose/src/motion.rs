//! DeepMimic motion clips (`pybullet_data/data/motions/*.txt`): JSON with `"Loop"`
//! (`"wrap"` or `"none"`) and `"Frames"`, each frame 44 numbers: duration, root position (3),
//! root orientation, chest, neck, right hip quaternions (`w x y z`), right knee angle, right
//! ankle and shoulder quaternions, right elbow angle, then the same for the left side.
//!
//! [`Clip`] holds the frames as [`Pose`]s of [`Skeleton::deepmimic_humanoid`];
//! [`Clip::resample`] re-times a clip at a fixed rate (linear root position, slerp rotations,
//! as pybullet's `HumanoidPoseInterpolator` does).

use std::path::Path;

use crate::rotation::{heading, mat_mul, mat_vec, transpose, yaw_matrix, Quat, Vec3};
use crate::skeleton::{JointKind, Pose, Skeleton};
use crate::{PoseError, Result};

/// Values per DeepMimic humanoid frame.
pub const FRAME_LEN: usize = 44;

/// A motion clip.
#[derive(Debug, Clone)]
pub struct Clip {
    /// File stem, e.g. `humanoid3d_walk`.
    pub name: String,
    /// Class label derived from the name, e.g. `walk`, `turn_left`.
    pub label: String,
    /// `"Loop": "wrap"`: the clip repeats (its last frame continues into its first).
    pub looping: bool,
    /// Duration of each frame, seconds (the time to the next frame).
    pub durations: Vec<f64>,
    /// The poses.
    pub poses: Vec<Pose>,
}

/// The class label of a clip file stem: `humanoid3d_` and trailing digits removed, a leading
/// digit run removed (`0walk_forward` → `walk_forward`, `turn_left1` → `turn_left`).
pub fn label_of(stem: &str) -> String {
    let s = stem.strip_prefix("humanoid3d_").unwrap_or(stem);
    let s = s.trim_start_matches(|c: char| c.is_ascii_digit());
    s.trim_end_matches(|c: char| c.is_ascii_digit()).to_string()
}

impl Clip {
    /// Reads a DeepMimic clip.
    pub fn read(path: &Path) -> Result<Clip> {
        let text = std::fs::read_to_string(path).map_err(|e| PoseError::io(path, e))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("clip").to_string();
        Clip::parse(&text, &stem, path)
    }

    /// Parses the JSON text of a clip (`path` names it in errors).
    pub fn parse(text: &str, stem: &str, path: &Path) -> Result<Clip> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            PoseError::format(path, Some(e.line()), format!("not a DeepMimic motion: {e}"))
        })?;
        let looping = match v.get("Loop").and_then(|l| l.as_str()) {
            None | Some("none") => false,
            Some("wrap") => true,
            Some(other) => {
                return Err(PoseError::format(
                    path,
                    None,
                    format!("\"Loop\" is \"{other}\"; expected \"wrap\" or \"none\""),
                ))
            }
        };
        let frames = v
            .get("Frames")
            .and_then(|f| f.as_array())
            .ok_or_else(|| PoseError::format(path, None, "no \"Frames\" array"))?;
        if frames.len() < 2 {
            return Err(PoseError::format(
                path,
                None,
                format!("{} frame(s); a clip needs at least 2", frames.len()),
            ));
        }
        let skel = Skeleton::deepmimic_humanoid();
        let mut durations = Vec::with_capacity(frames.len());
        let mut poses = Vec::with_capacity(frames.len());
        for (i, f) in frames.iter().enumerate() {
            let row = f.as_array().ok_or_else(|| {
                PoseError::format(path, None, format!("frame {i} is not an array of numbers"))
            })?;
            if row.len() != FRAME_LEN {
                return Err(PoseError::format(
                    path,
                    None,
                    format!(
                        "frame {i} has {} values; a DeepMimic humanoid frame has {FRAME_LEN}",
                        row.len()
                    ),
                ));
            }
            let mut x = [0.0; FRAME_LEN];
            for (k, val) in row.iter().enumerate() {
                x[k] = val.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                    PoseError::format(
                        path,
                        None,
                        format!("frame {i} value {k} is not a finite number ({val})"),
                    )
                })?;
            }
            let last = i + 1 == frames.len();
            if !(x[0] > 0.0 || (last && x[0] >= 0.0)) {
                return Err(PoseError::format(
                    path,
                    None,
                    format!("frame {i} has duration {}; durations must be positive", x[0]),
                ));
            }
            durations.push(x[0]);
            poses.push(pose_from_frame(&skel, &x));
        }
        Ok(Clip { name: stem.to_string(), label: label_of(stem), looping, durations, poses })
    }

    /// Length in seconds (from the first to the last frame).
    pub fn duration(&self) -> f64 {
        self.durations[..self.durations.len() - 1].iter().sum()
    }

    /// The pose at time `t` seconds (clamped to the clip), interpolated.
    pub fn sample(&self, t: f64) -> Pose {
        let mut start = 0.0;
        let n = self.poses.len();
        for i in 0..n - 1 {
            let d = self.durations[i];
            if t < start + d || i == n - 2 {
                let a = ((t - start) / d).clamp(0.0, 1.0);
                return interpolate(&self.poses[i], &self.poses[i + 1], a);
            }
            start += d;
        }
        self.poses[n - 1].clone()
    }

    /// The clip re-timed at `fps` frames per second; looping clips are continued over
    /// further cycles (each cycle moved by the root's ground-plane displacement and turn over
    /// one cycle) until they hold at least `min_frames` frames.
    pub fn resample(&self, fps: f64, min_frames: usize) -> Result<Vec<Pose>> {
        if !(fps > 0.0 && fps.is_finite()) {
            return Err(PoseError::Invalid(format!("fps must be positive, got {fps}")));
        }
        let dur = self.duration();
        let one = (dur * fps).floor() as usize + 1;
        let mut out: Vec<Pose> = (0..one).map(|k| self.sample(k as f64 / fps)).collect();
        if !self.looping || dur <= 0.0 {
            return Ok(out);
        }
        let first = &self.poses[0];
        let last = &self.poses[self.poses.len() - 1];
        let mut cycle = 1usize;
        while out.len() < min_frames {
            let mut k = out.len();
            loop {
                let t = k as f64 / fps - cycle as f64 * dur;
                if t > dur {
                    break;
                }
                let mut p = self.sample(t);
                for _ in 0..cycle {
                    p = carry_over(&p, first, last);
                }
                out.push(p);
                k += 1;
            }
            cycle += 1;
        }
        Ok(out)
    }
}

/// Moves `p` by the ground-plane rigid motion that takes `first`'s root onto `last`'s root
/// (heading and x/z position), continuing a looping clip into its next cycle.
pub fn carry_over(p: &Pose, first: &Pose, last: &Pose) -> Pose {
    let h0 = heading(&first.rotations[0].to_matrix());
    let h1 = heading(&last.rotations[0].to_matrix());
    let turn = yaw_matrix(h1 - h0);
    let rel = [p.root_pos[0] - first.root_pos[0], 0.0, p.root_pos[2] - first.root_pos[2]];
    let moved = mat_vec(&turn, rel);
    let mut q = p.clone();
    q.root_pos = [last.root_pos[0] + moved[0], p.root_pos[1], last.root_pos[2] + moved[2]];
    q.rotations[0] = Quat::from_matrix(&mat_mul(&turn, &p.rotations[0].to_matrix()));
    q
}

/// Expresses `poses` in the ground frame of their first pose: root x/z at the origin and the
/// first heading along +x (the root height and everything else unchanged).
pub fn canonicalize(poses: &[Pose]) -> Vec<Pose> {
    let Some(p0) = poses.first() else {
        return Vec::new();
    };
    let h = heading(&p0.rotations[0].to_matrix());
    let inv = transpose(&yaw_matrix(h));
    poses
        .iter()
        .map(|p| {
            let rel = [p.root_pos[0] - p0.root_pos[0], 0.0, p.root_pos[2] - p0.root_pos[2]];
            let r = mat_vec(&inv, rel);
            let mut q = p.clone();
            q.root_pos = [r[0], p.root_pos[1], r[2]];
            q.rotations[0] = Quat::from_matrix(&mat_mul(&inv, &p.rotations[0].to_matrix()));
            q
        })
        .collect()
}

/// Linear root position and slerped rotations between two poses.
pub fn interpolate(a: &Pose, b: &Pose, t: f64) -> Pose {
    let lerp = |x: Vec3, y: Vec3| -> Vec3 {
        [x[0] + t * (y[0] - x[0]), x[1] + t * (y[1] - x[1]), x[2] + t * (y[2] - x[2])]
    };
    Pose {
        root_pos: lerp(a.root_pos, b.root_pos),
        rotations: a.rotations.iter().zip(&b.rotations).map(|(p, q)| p.slerp(*q, t)).collect(),
    }
}

fn pose_from_frame(skel: &Skeleton, x: &[f64; FRAME_LEN]) -> Pose {
    let q = |k: usize| Quat::new(x[k], x[k + 1], x[k + 2], x[k + 3]);
    // Offsets of each joint's data in the frame, in skeleton order; wrists and end points
    // are fixed.
    let mut rotations = vec![Quat::IDENTITY; skel.len()];
    let spherical =
        [(0, 4), (1, 8), (2, 12), (3, 16), (5, 21), (6, 25), (9, 30), (11, 35), (12, 39)];
    for (j, k) in spherical {
        rotations[j] = q(k);
    }
    for (j, k) in [(4, 20), (7, 29), (10, 34), (13, 43)] {
        let axis = match skel.joints[j].kind {
            JointKind::Revolute { axis } => axis,
            _ => [0.0, 0.0, 1.0],
        };
        rotations[j] = Quat::from_axis_angle(axis, x[k]);
    }
    Pose { root_pos: [x[1], x[2], x[3]], rotations }
}

/// The frame row of a pose (the inverse of the reader), with duration `dt`.
pub fn frame_from_pose(skel: &Skeleton, pose: &Pose, dt: f64) -> Vec<f64> {
    let mut x = vec![0.0; FRAME_LEN];
    x[0] = dt;
    x[1..4].copy_from_slice(&pose.root_pos);
    let put = |x: &mut Vec<f64>, k: usize, q: Quat| {
        x[k..k + 4].copy_from_slice(&[q.w, q.x, q.y, q.z]);
    };
    for (j, k) in [(0, 4), (1, 8), (2, 12), (3, 16), (5, 21), (6, 25), (9, 30), (11, 35), (12, 39)]
    {
        put(&mut x, k, pose.rotations[j]);
    }
    for (j, k) in [(4, 20), (7, 29), (10, 34), (13, 43)] {
        x[k] = hinge_angle(skel, j, pose.rotations[j]);
    }
    x
}

/// The signed angle of a hinge joint's rotation about its axis.
pub fn hinge_angle(skel: &Skeleton, joint: usize, q: Quat) -> f64 {
    let axis = match skel.joints[joint].kind {
        JointKind::Revolute { axis } => axis,
        _ => [0.0, 0.0, 1.0],
    };
    let s = q.x * axis[0] + q.y * axis[1] + q.z * axis[2];
    2.0 * s.atan2(q.w)
}
