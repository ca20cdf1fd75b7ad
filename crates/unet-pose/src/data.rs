//! The `motions` data set: loading the DeepMimic clips (cache or embedded sample), per-frame
//! features in the 6D rotation representation, normalisation, and labelled windows.
//!
//! Feature layout per frame ([`FeatureLayout`], 61 values for the humanoid): root position
//! (x, y, z in the window's ground frame: the first frame's root at the origin of x/z, its
//! heading along +x), root orientation in that frame (6D), the 8 ball joints' local rotations
//! (6D each) and the 4 hinge angles (radians).

use std::path::{Path, PathBuf};

use crate::motion::{canonicalize, hinge_angle, Clip};
use crate::rotation::{matrix_from_6d, matrix_to_6d, Quat};
use crate::skeleton::{JointKind, Pose, Skeleton};
use crate::{PoseError, Result};

/// The embedded sample (`datasets/motions/sample/`): four clips copied verbatim.
const SAMPLE: &[(&str, &str)] = &[
    ("humanoid3d_walk", include_str!("../../../datasets/motions/sample/humanoid3d_walk.txt")),
    ("humanoid3d_run", include_str!("../../../datasets/motions/sample/humanoid3d_run.txt")),
    (
        "humanoid3d_backflip",
        include_str!("../../../datasets/motions/sample/humanoid3d_backflip.txt"),
    ),
    ("humanoid3d_kick", include_str!("../../../datasets/motions/sample/humanoid3d_kick.txt")),
];

/// Number of clips in the full set (15 `humanoid3d_*` and 5 `walker/*`).
pub const FULL_CLIPS: usize = 20;

/// The cache folder `cargo xtask datasets fetch motions` fills.
pub fn cache_dir() -> Option<PathBuf> {
    unet_core::checkpoint::dataset_dir("motions")
}

/// A set of labelled clips.
#[derive(Debug, Clone)]
pub struct MotionSet {
    /// The clips, sorted by name.
    pub clips: Vec<Clip>,
    /// Class names, sorted; a clip's class index is its label's position here.
    pub classes: Vec<String>,
    /// Where the clips came from (for reports).
    pub source: String,
}

impl MotionSet {
    /// All DeepMimic humanoid clips under `dir` (`data/motions/humanoid3d_*.txt` and
    /// `data/motions/walker/*.txt` of the cache layout, or `*.txt` directly in `dir`).
    pub fn from_dir(dir: &Path) -> Result<MotionSet> {
        let mut paths = Vec::new();
        for sub in [dir.to_path_buf(), dir.join("data/motions"), dir.join("data/motions/walker")] {
            let Ok(rd) = std::fs::read_dir(&sub) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                let name = p.file_name().and_then(|s| s.to_str()).unwrap_or_default();
                let is_walker = sub.ends_with("walker");
                if name.ends_with(".txt") && (name.starts_with("humanoid3d_") || is_walker) {
                    paths.push(p);
                }
            }
        }
        if paths.is_empty() {
            return Err(PoseError::format(
                dir,
                None,
                "no DeepMimic humanoid clips (humanoid3d_*.txt or walker/*.txt) found",
            ));
        }
        let clips = paths.iter().map(|p| Clip::read(p)).collect::<Result<Vec<_>>>()?;
        Ok(MotionSet::from_clips(clips, dir.display().to_string()))
    }

    /// The embedded sample (four clips).
    pub fn sample() -> Result<MotionSet> {
        let clips = SAMPLE
            .iter()
            .map(|(stem, text)| {
                let path = PathBuf::from(format!("datasets/motions/sample/{stem}.txt (embedded)"));
                Clip::parse(text, stem, &path)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(MotionSet::from_clips(clips, "embedded sample (datasets/motions/sample)".into()))
    }

    /// The cached full set when all 20 clips are there, the embedded sample otherwise.
    pub fn load_default() -> Result<MotionSet> {
        MotionSet::load(cache_dir().as_deref())
    }

    /// The full set from `dir` (a `motions` cache folder) when all 20 clips are there, the
    /// embedded sample otherwise.
    pub fn load(dir: Option<&Path>) -> Result<MotionSet> {
        if let Some(dir) = dir.filter(|d| d.join("data/motions").is_dir()) {
            let set = MotionSet::from_dir(dir)?;
            if set.clips.len() == FULL_CLIPS {
                return Ok(set);
            }
        }
        MotionSet::sample()
    }

    fn from_clips(mut clips: Vec<Clip>, source: String) -> MotionSet {
        clips.sort_by(|a, b| a.name.cmp(&b.name));
        let mut classes: Vec<String> = clips.iter().map(|c| c.label.clone()).collect();
        classes.sort();
        classes.dedup();
        MotionSet { clips, classes, source }
    }

    /// Class index of a clip.
    pub fn class_of(&self, clip: &Clip) -> usize {
        self.classes.iter().position(|c| *c == clip.label).unwrap_or(0)
    }

    /// Total number of source frames.
    pub fn frames(&self) -> usize {
        self.clips.iter().map(|c| c.poses.len()).sum()
    }
}

/// Where each part of a frame's feature vector lives.
#[derive(Debug, Clone)]
pub struct FeatureLayout {
    /// The skeleton.
    pub skeleton: Skeleton,
    spherical: Vec<usize>,
    revolute: Vec<usize>,
}

impl FeatureLayout {
    /// The layout for `skeleton`.
    pub fn new(skeleton: Skeleton) -> Self {
        let spherical = skeleton.spherical();
        let revolute = skeleton.revolute();
        FeatureLayout { skeleton, spherical, revolute }
    }

    /// The DeepMimic humanoid's layout (61 values per frame).
    pub fn humanoid() -> Self {
        FeatureLayout::new(Skeleton::deepmimic_humanoid())
    }

    /// Values per frame.
    pub fn dim(&self) -> usize {
        3 + 6 + 6 * self.spherical.len() + self.revolute.len()
    }

    /// Features of canonicalised poses, `[dim, T]` channel-major.
    pub fn encode(&self, poses: &[Pose]) -> Vec<f32> {
        let (d, t) = (self.dim(), poses.len());
        let mut out = vec![0f32; d * t];
        for (k, p) in poses.iter().enumerate() {
            let mut f = Vec::with_capacity(d);
            f.extend_from_slice(&p.root_pos);
            f.extend_from_slice(&matrix_to_6d(&p.rotations[0].to_matrix()));
            for &j in &self.spherical {
                f.extend_from_slice(&matrix_to_6d(&p.rotations[j].to_matrix()));
            }
            for &j in &self.revolute {
                f.push(hinge_angle(&self.skeleton, j, p.rotations[j]));
            }
            for (c, v) in f.iter().enumerate() {
                out[c * t + k] = *v as f32;
            }
        }
        out
    }

    /// Poses back from `[dim, T]` features (any 6D vector is projected onto a rotation).
    pub fn decode(&self, feats: &[f32], t: usize) -> Result<Vec<Pose>> {
        let d = self.dim();
        if feats.len() != d * t {
            return Err(PoseError::Invalid(format!(
                "features hold {} values; {d} × {t} expected",
                feats.len()
            )));
        }
        let at = |c: usize, k: usize| feats[c * t + k] as f64;
        let rot6 = |c: usize, k: usize| {
            let r =
                [at(c, k), at(c + 1, k), at(c + 2, k), at(c + 3, k), at(c + 4, k), at(c + 5, k)];
            Quat::from_matrix(&matrix_from_6d(&r))
        };
        let n = self.skeleton.len();
        Ok((0..t)
            .map(|k| {
                let mut rotations = vec![Quat::IDENTITY; n];
                rotations[0] = rot6(3, k);
                let mut c = 9;
                for &j in &self.spherical {
                    rotations[j] = rot6(c, k);
                    c += 6;
                }
                for &j in &self.revolute {
                    let axis = match self.skeleton.joints[j].kind {
                        JointKind::Revolute { axis } => axis,
                        _ => [0.0, 0.0, 1.0],
                    };
                    rotations[j] = Quat::from_axis_angle(axis, at(c, k));
                    c += 1;
                }
                Pose { root_pos: [at(0, k), at(1, k), at(2, k)], rotations }
            })
            .collect())
    }

    /// World joint positions `[T][J]` of `[dim, T]` features.
    pub fn positions(&self, feats: &[f32], t: usize) -> Result<Vec<Vec<[f64; 3]>>> {
        self.decode(feats, t)?.iter().map(|p| self.skeleton.forward(p)).collect()
    }
}

/// Labelled fixed-length windows of a motion set.
#[derive(Debug, Clone)]
pub struct Windows {
    /// Frames per window.
    pub len: usize,
    /// Frame rate, frames per second.
    pub fps: f64,
    /// Features per window, `[dim, len]` channel-major, not normalised.
    pub feats: Vec<Vec<f32>>,
    /// Class index per window.
    pub labels: Vec<usize>,
    /// Clip index per window.
    pub clip: Vec<usize>,
    /// First frame of the window in its (resampled, continued) clip.
    pub start: Vec<usize>,
    /// The class names.
    pub classes: Vec<String>,
    /// The feature layout.
    pub layout: FeatureLayout,
}

impl Windows {
    /// Every window of `len` frames at `fps`, `stride` frames apart, each canonicalised.
    /// Looping clips are continued over three lengths of a window; a clip shorter than a
    /// window gives one window padded by holding its last pose.
    pub fn build(set: &MotionSet, fps: f64, len: usize, stride: usize) -> Result<Windows> {
        if len < 2 || stride == 0 {
            return Err(PoseError::Invalid(format!(
                "windows need len ≥ 2 and stride ≥ 1 (got len {len}, stride {stride})"
            )));
        }
        let layout = FeatureLayout::humanoid();
        let mut w = Windows {
            len,
            fps,
            feats: Vec::new(),
            labels: Vec::new(),
            clip: Vec::new(),
            start: Vec::new(),
            classes: set.classes.clone(),
            layout,
        };
        for (ci, clip) in set.clips.iter().enumerate() {
            let mut poses = clip.resample(fps, 3 * len)?;
            while poses.len() < len {
                let last = poses[poses.len() - 1].clone();
                poses.push(last);
            }
            let mut s = 0;
            while s + len <= poses.len() {
                let win = canonicalize(&poses[s..s + len]);
                w.feats.push(w.layout.encode(&win));
                w.labels.push(set.class_of(clip));
                w.clip.push(ci);
                w.start.push(s);
                s += stride;
            }
        }
        Ok(w)
    }

    /// Number of windows.
    pub fn count(&self) -> usize {
        self.feats.len()
    }

    /// Per-feature mean and standard deviation over all windows and frames (std floored at
    /// `1e-3` so constant features stay finite).
    pub fn stats(&self) -> (Vec<f32>, Vec<f32>) {
        let d = self.layout.dim();
        let t = self.len;
        let mut mean = vec![0f64; d];
        let mut sq = vec![0f64; d];
        let n = (self.count() * t).max(1) as f64;
        for f in &self.feats {
            for c in 0..d {
                for k in 0..t {
                    let v = f[c * t + k] as f64;
                    mean[c] += v;
                    sq[c] += v * v;
                }
            }
        }
        let mean: Vec<f64> = mean.iter().map(|m| m / n).collect();
        let std = sq.iter().zip(&mean).map(|(s, m)| ((s / n - m * m).max(0.0)).sqrt().max(1e-3));
        (mean.iter().map(|&m| m as f32).collect(), std.map(|s| s as f32).collect())
    }
}
