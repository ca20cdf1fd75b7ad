//! Skeletons and forward kinematics.
//!
//! [`Skeleton::deepmimic_humanoid`] is the humanoid of DeepMimic as pybullet ships it
//! (`pybullet_data/humanoid/humanoid.urdf`, loaded with `globalScaling = 0.25`): Y up, metres,
//! 15 frames (root, chest, neck, both hips, knees, ankles, shoulders, elbows, wrists) plus three
//! end points for drawing and contact (head centre, both toes). Joint frames carry no rest
//! rotation, so a joint's world frame is its parent's frame, moved by the scaled offset and
//! turned by the joint's local rotation. `tests/fk_pybullet.rs` checks [`Skeleton::forward`]
//! against pybullet's own kinematics.

use crate::rotation::{mat_mul, mat_vec, Mat3, Quat, Vec3};
use crate::{PoseError, Result};

/// How a joint moves relative to its parent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JointKind {
    /// The root: world position and orientation.
    Root,
    /// A ball joint (a quaternion per frame).
    Spherical,
    /// A hinge about a fixed local axis (an angle per frame).
    Revolute {
        /// Unit axis in the joint frame.
        axis: Vec3,
    },
    /// Rigidly attached (a wrist, an end point).
    Fixed,
}

/// Which side of the body a joint is on (for colours and mirroring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The midline.
    Centre,
    /// Left.
    Left,
    /// Right.
    Right,
}

/// One joint.
#[derive(Debug, Clone, PartialEq)]
pub struct Joint {
    /// Name (the URDF joint name).
    pub name: &'static str,
    /// Parent index (`None` for the root); parents come before children.
    pub parent: Option<usize>,
    /// Offset from the parent's frame in the parent's frame, metres.
    pub offset: Vec3,
    /// Degrees of freedom.
    pub kind: JointKind,
    /// Body side.
    pub side: Side,
}

/// A kinematic tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Skeleton {
    /// Joints, parents first.
    pub joints: Vec<Joint>,
}

/// One pose of a skeleton: the root's world position and orientation and, per joint, a local
/// rotation (identity for fixed joints; a rotation about the hinge axis for revolute ones).
#[derive(Debug, Clone, PartialEq)]
pub struct Pose {
    /// World position of the root, metres.
    pub root_pos: Vec3,
    /// Local rotations, one per joint (index 0 is the root's world orientation).
    pub rotations: Vec<Quat>,
}

impl Skeleton {
    /// The DeepMimic humanoid of pybullet (see the module documentation).
    pub fn deepmimic_humanoid() -> Skeleton {
        const S: f64 = 0.25; // globalScaling of pybullet's DeepMimic environment
        let z = [0.0, 0.0, 1.0];
        let j = |name, parent, o: Vec3, kind, side| Joint {
            name,
            parent,
            offset: [o[0] * S, o[1] * S, o[2] * S],
            kind,
            side,
        };
        use JointKind::*;
        use Side::*;
        Skeleton {
            joints: vec![
                j("root", None, [0.0, 0.0, 0.0], Root, Centre),
                j("chest", Some(0), [0.0, 0.944604, 0.0], Spherical, Centre),
                j("neck", Some(1), [0.0, 0.895576, 0.0], Spherical, Centre),
                j("right_hip", Some(0), [0.0, 0.0, 0.339548], Spherical, Right),
                j("right_knee", Some(3), [0.0, -1.686184, 0.0], Revolute { axis: z }, Right),
                j("right_ankle", Some(4), [0.0, -1.63948, 0.0], Spherical, Right),
                j("right_shoulder", Some(1), [-0.0962, 0.974, 0.73244], Spherical, Right),
                j("right_elbow", Some(6), [0.0, -1.099152, 0.0], Revolute { axis: z }, Right),
                j("right_wrist", Some(7), [0.0, -1.035788, 0.0], Fixed, Right),
                j("left_hip", Some(0), [0.0, 0.0, -0.339548], Spherical, Left),
                j("left_knee", Some(9), [0.0, -1.686184, 0.0], Revolute { axis: z }, Left),
                j("left_ankle", Some(10), [0.0, -1.63948, 0.0], Spherical, Left),
                j("left_shoulder", Some(1), [-0.0962, 0.974, -0.73244], Spherical, Left),
                j("left_elbow", Some(12), [0.0, -1.099152, 0.0], Revolute { axis: z }, Left),
                j("left_wrist", Some(13), [0.0, -1.035788, 0.0], Fixed, Left),
                // End points: the head sphere's centre and the front of each foot box's sole.
                j("head", Some(2), [0.0, 0.7, 0.0], Fixed, Centre),
                j("right_toe", Some(5), [0.534, -0.2, 0.0], Fixed, Right),
                j("left_toe", Some(11), [0.534, -0.2, 0.0], Fixed, Left),
            ],
        }
    }

    /// Number of joints.
    pub fn len(&self) -> usize {
        self.joints.len()
    }

    /// True when there are no joints.
    pub fn is_empty(&self) -> bool {
        self.joints.is_empty()
    }

    /// Index of the joint called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.joints.iter().position(|j| j.name == name)
    }

    /// Bones as `(parent, child)` pairs.
    pub fn bones(&self) -> Vec<(usize, usize)> {
        self.joints.iter().enumerate().filter_map(|(i, j)| j.parent.map(|p| (p, i))).collect()
    }

    /// A colour per bone: left limbs orange, right limbs blue, the midline grey.
    pub fn bone_colours(&self) -> Vec<[u8; 3]> {
        self.bones()
            .iter()
            .map(|&(_, c)| match self.joints[c].side {
                Side::Left => [230, 120, 30],
                Side::Right => [40, 110, 220],
                Side::Centre => [70, 70, 70],
            })
            .collect()
    }

    /// The joints with a ball joint (their rotations are features).
    pub fn spherical(&self) -> Vec<usize> {
        self.indices(|k| matches!(k, JointKind::Spherical))
    }

    /// The hinge joints (their angles are features).
    pub fn revolute(&self) -> Vec<usize> {
        self.indices(|k| matches!(k, JointKind::Revolute { .. }))
    }

    fn indices(&self, f: impl Fn(&JointKind) -> bool) -> Vec<usize> {
        self.joints.iter().enumerate().filter(|(_, j)| f(&j.kind)).map(|(i, _)| i).collect()
    }

    /// The contact points used for foot sliding (both toes and ankles).
    pub fn feet(&self) -> Vec<usize> {
        ["right_toe", "left_toe", "right_ankle", "left_ankle"]
            .iter()
            .filter_map(|n| self.index(n))
            .collect()
    }

    /// World joint positions and orientations of `pose`.
    pub fn forward_frames(&self, pose: &Pose) -> Result<(Vec<Vec3>, Vec<Mat3>)> {
        if pose.rotations.len() != self.joints.len() {
            return Err(PoseError::Invalid(format!(
                "pose has {} rotations for a skeleton of {} joints",
                pose.rotations.len(),
                self.joints.len()
            )));
        }
        let mut pos = Vec::with_capacity(self.joints.len());
        let mut rot: Vec<Mat3> = Vec::with_capacity(self.joints.len());
        for (i, j) in self.joints.iter().enumerate() {
            let local = pose.rotations[i].to_matrix();
            match j.parent {
                None => {
                    pos.push(pose.root_pos);
                    rot.push(local);
                }
                Some(p) => {
                    let o = mat_vec(&rot[p], j.offset);
                    pos.push([pos[p][0] + o[0], pos[p][1] + o[1], pos[p][2] + o[2]]);
                    rot.push(mat_mul(&rot[p], &local));
                }
            }
        }
        Ok((pos, rot))
    }

    /// World joint positions of `pose`, metres.
    pub fn forward(&self, pose: &Pose) -> Result<Vec<Vec3>> {
        Ok(self.forward_frames(pose)?.0)
    }

    /// The rest pose (identity rotations) standing with the root at `height`.
    pub fn rest_pose(&self, height: f64) -> Pose {
        Pose { root_pos: [0.0, height, 0.0], rotations: vec![Quat::IDENTITY; self.joints.len()] }
    }
}
