//! The humanoid's motions exported to BVH and read back give the same joint positions.

use unet_pose::bvh::{humanoid_bvh, Bvh, BVH_UNITS_PER_METRE};
use unet_pose::data::MotionSet;
use unet_pose::skeleton::Skeleton;

#[test]
fn humanoid_motion_round_trips_through_bvh() {
    let set = MotionSet::sample().unwrap();
    let skel = Skeleton::deepmimic_humanoid();
    let dir = tempfile::tempdir().unwrap();
    for clip in &set.clips {
        let poses = clip.resample(30.0, 0).unwrap();
        let path = dir.path().join(format!("{}.bvh", clip.name));
        humanoid_bvh(&skel, &poses, 1.0 / 30.0).unwrap().write(&path).unwrap();
        let back = Bvh::read(&path).unwrap();
        assert_eq!(back.frames.len(), poses.len());
        assert_eq!(back.joints.len(), 13, "5 fixed leaves become end sites");
        let mut worst: f64 = 0.0;
        for (f, pose) in poses.iter().enumerate() {
            let ours = skel.forward(pose).unwrap();
            let theirs = back.positions(f).unwrap();
            let ends = back.end_site_positions(f).unwrap();
            for (i, j) in skel.joints.iter().enumerate() {
                let got = match back.joint_index(j.name) {
                    Some(b) => theirs[b],
                    None => {
                        let parent = back.joint_index(skel.joints[j.parent.unwrap()].name).unwrap();
                        ends[parent].unwrap()
                    }
                };
                for a in 0..3 {
                    worst = worst.max((got[a] / BVH_UNITS_PER_METRE - ours[i][a]).abs());
                }
            }
        }
        assert!(worst < 1e-6, "{}: worst {worst} m", clip.name);
    }
}
