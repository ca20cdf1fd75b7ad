use std::f64::consts::FRAC_PI_2;
use std::path::Path;
use unet_pose::render::{
    keypoint_image, render_frame, write_gif, write_gif_grid, Camera, Rgb8Image, BACKGROUND,
};
use unet_pose::PoseError;

/// A small stick figure: pelvis, spine, head, two arms, two legs (Y up, metres).
fn figure(shift: f64, phase: f64) -> Vec<[f64; 3]> {
    let s = phase.sin() * 0.2;
    vec![
        [shift, 1.0, 0.0],           // 0 pelvis
        [shift, 1.5, 0.0],           // 1 chest
        [shift, 1.75, 0.0],          // 2 head
        [shift - 0.4, 1.3 + s, 0.0], // 3 left hand
        [shift + 0.4, 1.3 - s, 0.0], // 4 right hand
        [shift - 0.15, 0.0, s],      // 5 left foot
        [shift + 0.15, 0.0, -s],     // 6 right foot
    ]
}

const BONES: [(usize, usize); 6] = [(0, 1), (1, 2), (1, 3), (1, 4), (0, 5), (0, 6)];
const COLOURS: [[u8; 3]; 6] =
    [[80, 80, 80], [80, 80, 80], [200, 40, 40], [40, 40, 200], [200, 40, 40], [40, 40, 200]];

fn motion(n: usize, shift: f64) -> Vec<Vec<[f64; 3]>> {
    (0..n).map(|i| figure(shift, i as f64 * 0.7)).collect()
}

fn decode_gif(path: &Path) -> (u16, u16, Vec<Vec<u8>>, Vec<u16>) {
    let file = std::fs::File::open(path).unwrap();
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(file).unwrap();
    let (w, h) = (dec.width(), dec.height());
    let mut frames = Vec::new();
    let mut delays = Vec::new();
    while let Some(f) = dec.read_next_frame().unwrap() {
        assert_eq!((f.width, f.height), (w, h));
        frames.push(f.buffer.to_vec());
        delays.push(f.delay);
    }
    (w, h, frames, delays)
}

#[test]
fn camera_target_projects_to_centre() {
    for (yaw, pitch) in [(0.0, 0.0), (0.7, 0.3), (-2.0, -0.4), (3.0, 1.2)] {
        let cam = Camera { yaw, pitch, distance: 4.0, focal: 1.3, target: [0.3, 1.1, -2.0] };
        let (uv, depth) = cam.project(cam.target);
        assert!(uv[0].abs() < 1e-12 && uv[1].abs() < 1e-12, "{uv:?}");
        assert!((depth - 4.0).abs() < 1e-12, "{depth}");
        // The camera centre is `distance` away from the target.
        let p = cam.position();
        let d: f64 = (0..3).map(|a| (p[a] - cam.target[a]).powi(2)).sum::<f64>().sqrt();
        assert!((d - 4.0).abs() < 1e-12);
    }
    // Front view: +X goes right, +Y goes up (negative image y), +Z comes closer.
    let cam = Camera { yaw: 0.0, pitch: 0.0, distance: 5.0, focal: 2.0, target: [0.0; 3] };
    let (uv, depth) = cam.project([1.0, 0.0, 0.0]);
    assert!((uv[0] - 0.4).abs() < 1e-12 && uv[1].abs() < 1e-12 && (depth - 5.0).abs() < 1e-12);
    let (uv, _) = cam.project([0.0, 1.0, 0.0]);
    assert!(uv[0].abs() < 1e-12 && (uv[1] + 0.4).abs() < 1e-12);
    let (_, depth) = cam.project([0.0, 0.0, 1.0]);
    assert!((depth - 4.0).abs() < 1e-12);
    // Side view (yaw 90°): the camera is on +X, so +Z goes to the left... i.e. -Z right.
    let side = Camera { yaw: FRAC_PI_2, ..cam };
    let (uv, _) = side.project([0.0, 0.0, -1.0]);
    assert!(uv[0] > 0.0, "{uv:?}");
    // Pixel mapping: centre of a 200x100 image.
    let (px, _) = cam.project_pixels(cam.target, 200, 100);
    assert_eq!(px, [100.0, 50.0]);
}

#[test]
fn fitted_camera_frames_all_points() {
    let all: Vec<[f64; 3]> = motion(12, 0.0).into_iter().flatten().collect();
    for (yaw, pitch) in [(0.0, 0.0), (0.6, 0.25), (2.5, -0.3)] {
        let cam = Camera::fit(&all, yaw, pitch);
        assert!(cam.distance.is_finite() && cam.distance > 0.0);
        let mut widest = 0.0f64;
        for p in &all {
            let (uv, depth) = cam.project(*p);
            assert!(depth > 0.0);
            assert!(uv[0].abs() <= 0.5 && uv[1].abs() <= 0.5, "{uv:?}");
            widest = widest.max(uv[0].abs()).max(uv[1].abs());
        }
        // Tight: the figure fills a good part of the frame.
        assert!(widest > 0.35, "{widest}");
    }
    // Degenerate inputs still give a usable camera.
    let c = Camera::fit(&[], 0.0, 0.0);
    assert!(c.distance > 0.0);
    let c = Camera::fit(&[[1.0, 2.0, 3.0]], 0.0, 0.0);
    assert_eq!(c.target, [1.0, 2.0, 3.0]);
    assert!(c.distance > 0.0);
}

#[test]
fn segment_draws_along_its_line_and_nowhere_else() {
    let bg = [250, 250, 250];
    let colour = [10, 120, 30];
    let mut img = Rgb8Image::new(64, 40, bg).unwrap();
    assert_eq!(img.data.len(), 64 * 40 * 3);
    let (a, b, r) = ([10.0, 20.0], [50.0, 28.0], 2.0);
    img.draw_segment(a, b, r, colour);
    let dist = |x: f64, y: f64| {
        let d = [b[0] - a[0], b[1] - a[1]];
        let t =
            (((x - a[0]) * d[0] + (y - a[1]) * d[1]) / (d[0] * d[0] + d[1] * d[1])).clamp(0.0, 1.0);
        ((x - a[0] - t * d[0]).powi(2) + (y - a[1] - t * d[1]).powi(2)).sqrt()
    };
    let mut inside = 0;
    for y in 0..40 {
        for x in 0..64 {
            let d = dist(x as f64 + 0.5, y as f64 + 0.5);
            let px = img.pixel(x, y).unwrap();
            if d > r + 0.5 {
                assert_eq!(px, bg, "pixel ({x},{y}) at distance {d} was drawn");
            } else if d < r - 0.5 {
                assert_eq!(px, colour, "pixel ({x},{y}) at distance {d} not fully drawn");
                inside += 1;
            }
        }
    }
    assert!(inside > 80, "{inside}");
    // Points along the line are drawn.
    for k in 0..=10 {
        let t = k as f64 / 10.0;
        let (x, y) = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]));
        assert_ne!(img.pixel(x as u32, y as u32).unwrap(), bg);
    }
    // Discs, off-image and non-finite drawing are safe.
    img.draw_disc([-100.0, -100.0], 3.0, colour);
    img.draw_segment([f64::NAN, 0.0], [1.0, 1.0], 2.0, colour);
    img.draw_segment([-1e300, 5.5], [1e300, 5.5], 0.5, [0, 0, 0]);
    img.draw_segment([-1e12, -1e12 + 30.0], [1e12, 1e12 + 30.0], 0.5, [0, 0, 0]);
    assert_eq!(img.pixel(4, 34).unwrap(), [0, 0, 0], "diagonal through far endpoints");
    assert_eq!(img.pixel(30, 5).unwrap(), [0, 0, 0]);
    let mut disc = Rgb8Image::new(20, 20, bg).unwrap();
    disc.draw_disc([10.0, 10.0], 4.0, colour);
    assert_eq!(disc.pixel(10, 10).unwrap(), colour);
    assert_eq!(disc.pixel(1, 1).unwrap(), bg);
    assert_eq!(disc.pixel(20, 0), None);
}

#[test]
fn render_frame_draws_figure_grid_and_respects_depth_order() {
    let pts = figure(0.0, 0.0);
    let cam = Camera::fit(&pts, 0.3, 0.2);
    let img = render_frame(&pts, &BONES, &COLOURS, &cam, 96, 96).unwrap();
    assert_eq!((img.width, img.height, img.data.len()), (96, 96, 96 * 96 * 3));
    let count = |c: [u8; 3]| img.data.chunks_exact(3).filter(|p| *p == c).count();
    assert!(count([200, 40, 40]) > 5, "left limbs drawn");
    assert!(count([40, 40, 200]) > 5, "right limbs drawn");
    assert!(count(BACKGROUND) > 96 * 96 / 3, "mostly background");
    // Grid lines: some light grey, non-background pixels below the feet.
    let greys =
        img.data.chunks_exact(3).filter(|p| p[0] == p[1] && p[0] < 240 && p[0] > 190).count();
    assert!(greys > 20, "{greys}");

    // Two crossing bones: the nearer one (larger z, camera on +Z) ends on top.
    let pts = vec![[-1.0, 0.5, 0.5], [1.0, 0.5, 0.5], [0.0, -0.5, -0.5], [0.0, 1.5, -0.5]];
    let cam = Camera { yaw: 0.0, pitch: 0.0, distance: 4.0, focal: 1.5, target: [0.0, 0.5, 0.0] };
    let red = [255, 0, 0];
    let blue = [0, 0, 255];
    // The near bone (0, 1) is red; pass it first and then last: painter's order by depth
    // must not depend on the order of the list.
    for (bones, colours) in [([(0, 1), (2, 3)], [red, blue]), ([(2, 3), (0, 1)], [blue, red])] {
        let img = render_frame(&pts, &bones, &colours, &cam, 80, 80).unwrap();
        // The crossing projects to the image centre, pixel (40, 40), away from joint dots.
        let (c, _) = cam.project_pixels([0.0, 0.5, 0.5], 80, 80);
        assert_eq!(c, [40.0, 40.0]);
        assert_eq!(img.pixel(40, 40).unwrap(), red);
        assert_eq!(img.pixel(40, 25).unwrap(), blue, "far bone visible away from the crossing");
    }
}

#[test]
fn write_gif_round_trips_through_the_gif_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("walk.gif");
    let frames = motion(7, 0.0);
    let all: Vec<[f64; 3]> = frames.iter().flatten().copied().collect();
    let cam = Camera::fit(&all, 0.5, 0.2);
    write_gif(&path, &frames, &BONES, &COLOURS, 25.0, 72, 60, &cam).unwrap();
    let (w, h, decoded, delays) = decode_gif(&path);
    assert_eq!((w, h), (72, 60));
    assert_eq!(decoded.len(), 7);
    assert!(delays.iter().all(|&d| d == 4), "{delays:?}");
    for f in &decoded {
        assert_eq!(f.len(), 72 * 60 * 4);
        // Several colours: background, grid, limbs, joints.
        let mut colours: Vec<&[u8]> = f.chunks_exact(4).collect();
        colours.sort();
        colours.dedup();
        assert!(colours.len() >= 4, "{}", colours.len());
    }
    // The frames differ (the figure moves).
    assert_ne!(decoded[0], decoded[1]);
    // Only the GIF is in the folder (the temporary file was renamed).
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("walk.gif")]);
    // Overwriting works.
    write_gif(&path, &frames[..2], &BONES, &COLOURS, 10.0, 30, 30, &cam).unwrap();
    let (w, h, decoded, delays) = decode_gif(&path);
    assert_eq!((w, h, decoded.len(), delays[0]), (30, 30, 2, 10));
}

#[test]
fn write_gif_grid_tiles_motions_and_loops_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.gif");
    let motions = vec![motion(2, 0.0), motion(5, 3.0), motion(3, -10.0)];
    write_gif_grid(&path, &motions, 2, &BONES, &COLOURS, 20.0, 40, 50, 0.4, 0.2).unwrap();
    let (w, h, decoded, _) = decode_gif(&path);
    assert_eq!((w, h), (80, 100));
    assert_eq!(decoded.len(), 5);
    // Tile 0 loops with period 2: frames 0 and 2 show the same picture in the top-left tile.
    let tile = |f: &Vec<u8>, tx: usize, ty: usize| -> Vec<u8> {
        let mut out = Vec::new();
        for y in ty * 50 + 1..ty * 50 + 49 {
            let s = (y * 80 + tx * 40 + 1) * 4;
            out.extend_from_slice(&f[s..s + 38 * 4]);
        }
        out
    };
    assert_eq!(tile(&decoded[0], 0, 0), tile(&decoded[2], 0, 0));
    assert_ne!(tile(&decoded[0], 0, 0), tile(&decoded[1], 0, 0));
    // Each tile has its own fitted camera, so the shifted motions are all visible.
    for (tx, ty) in [(0, 0), (1, 0), (0, 1)] {
        let t = tile(&decoded[0], tx, ty);
        let reds = t.chunks_exact(4).filter(|p| p[0] > 150 && p[1] < 120 && p[2] < 120).count();
        assert!(reds > 3, "tile ({tx},{ty}) has {reds} red pixels");
    }
    // The unused cell stays empty (background only, no figure).
    let t = tile(&decoded[0], 1, 1);
    assert!(t.chunks_exact(4).all(|p| p[0] > 230 && p[1] > 230 && p[2] > 230));
}

#[test]
fn keypoint_image_shape_range_and_colours() {
    let size = 32u32;
    let pts = [[4.0, 16.0], [28.0, 16.0], [16.0, 4.0], [16.0, 28.0]];
    let bones = [(0, 1), (2, 3)];
    let colours = [[255, 0, 0], [0, 255, 0]];
    let img = keypoint_image(&pts, &bones, &colours, &[2.0, 2.0], &[0, 1], size).unwrap();
    let plane = (size * size) as usize;
    assert_eq!(img.len(), 3 * plane);
    assert!(img.iter().all(|v| (0.0..=1.0).contains(v)));
    let at = |c: usize, x: usize, y: usize| img[c * plane + y * size as usize + x];
    // Black background far from the bones.
    assert_eq!([at(0, 1, 1), at(1, 1, 1), at(2, 1, 1)], [0.0, 0.0, 0.0]);
    // Red horizontal bone, away from the crossing.
    assert_eq!([at(0, 8, 16), at(1, 8, 16), at(2, 8, 16)], [1.0, 0.0, 0.0]);
    // Green vertical bone drawn last, so it is on top at the crossing.
    assert_eq!([at(0, 16, 16), at(1, 16, 16), at(2, 16, 16)], [0.0, 1.0, 0.0]);
    // Reversed order puts red on top; an empty order draws nothing.
    let img2 = keypoint_image(&pts, &bones, &colours, &[2.0, 2.0], &[1, 0], size).unwrap();
    assert_eq!(img2[16 * size as usize + 16], 1.0);
    let empty = keypoint_image(&pts, &bones, &colours, &[2.0, 2.0], &[], size).unwrap();
    assert!(empty.iter().all(|v| *v == 0.0));
    // Anti-aliased edge: some partial coverage.
    assert!(img.iter().any(|v| *v > 0.05 && *v < 0.95));
}

fn invalid_msg<T: std::fmt::Debug>(r: Result<T, PoseError>) -> String {
    match r {
        Err(PoseError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn invalid_inputs_give_typed_errors() {
    let pts = figure(0.0, 0.0);
    let cam = Camera::fit(&pts, 0.0, 0.0);
    // Zero-size images.
    assert!(invalid_msg(Rgb8Image::new(0, 10, [0; 3])).contains("0x10"));
    assert!(invalid_msg(render_frame(&pts, &BONES, &COLOURS, &cam, 10, 0)).contains("10x0"));
    assert!(invalid_msg(keypoint_image(&[], &[], &[], &[], &[], 0)).contains("0x0"));
    assert!(invalid_msg(Rgb8Image::new(100_000, 10, [0; 3])).contains("100000"));
    // Mismatched colours / bones.
    assert!(invalid_msg(render_frame(&pts, &BONES, &COLOURS[..5], &cam, 10, 10))
        .contains("5 colours given for 6 bones"));
    // Bone index out of range.
    let bad_bones = [(0, 1), (1, 9)];
    let m = invalid_msg(render_frame(&pts, &bad_bones, &COLOURS[..2], &cam, 10, 10));
    assert!(m.contains("bone 1 (1, 9)") && m.contains("7 points"), "{m}");
    let p2: Vec<[f64; 2]> = vec![[0.0, 0.0]; 2];
    let m = invalid_msg(keypoint_image(&p2, &[(0, 2)], &[[1; 3]], &[1.0], &[0], 8));
    assert!(m.contains("bone 0 (0, 2)"), "{m}");
    let m = invalid_msg(keypoint_image(&p2, &[(0, 1)], &[[1; 3]], &[1.0, 2.0], &[0], 8));
    assert!(m.contains("2 radii given for 1 bones"), "{m}");
    let m = invalid_msg(keypoint_image(&p2, &[(0, 1)], &[[1; 3]], &[-1.0], &[0], 8));
    assert!(m.contains("radius of bone 0 is -1"), "{m}");
    let m = invalid_msg(keypoint_image(&p2, &[(0, 1)], &[[1; 3]], &[1.0], &[3], 8));
    assert!(m.contains("order entry 3"), "{m}");

    // GIF writers: empty frame lists, bad fps, bad frames; no file is left behind.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.gif");
    let m = invalid_msg(write_gif(&path, &[], &BONES, &COLOURS, 10.0, 10, 10, &cam));
    assert!(m.contains("no frames") && m.contains("x.gif"), "{m}");
    let frames = vec![pts.clone(), pts[..3].to_vec()];
    let m = invalid_msg(write_gif(&path, &frames, &BONES, &COLOURS, 10.0, 10, 10, &cam));
    assert!(m.starts_with("frame 1: bone 2 (1, 3)"), "{m}");
    let m = invalid_msg(write_gif(&path, &frames[..1], &BONES, &COLOURS, 0.0, 10, 10, &cam));
    assert!(m.contains("fps"), "{m}");
    let m = invalid_msg(write_gif(&path, &frames[..1], &BONES, &COLOURS, 10.0, 0, 10, &cam));
    assert!(m.contains("0x10"), "{m}");
    let m = invalid_msg(write_gif_grid(&path, &[], 2, &BONES, &COLOURS, 10.0, 10, 10, 0.0, 0.0));
    assert!(m.contains("no motions"), "{m}");
    let m = invalid_msg(write_gif_grid(
        &path,
        &[motion(2, 0.0), vec![]],
        2,
        &BONES,
        &COLOURS,
        10.0,
        10,
        10,
        0.0,
        0.0,
    ));
    assert!(m.contains("motion 1 has no frames"), "{m}");
    let m = invalid_msg(write_gif_grid(
        &path,
        &[motion(2, 0.0)],
        0,
        &BONES,
        &COLOURS,
        10.0,
        10,
        10,
        0.0,
        0.0,
    ));
    assert!(m.contains("cols"), "{m}");
    let m = invalid_msg(write_gif_grid(
        &path,
        &vec![motion(2, 0.0); 3],
        3,
        &BONES,
        &COLOURS,
        10.0,
        16_000,
        10,
        0.0,
        0.0,
    ));
    assert!(m.contains("48000x10"), "{m}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
