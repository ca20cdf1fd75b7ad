//! Stick-figure rendering: animated GIFs of motions for reports, and float keypoint images
//! as network input.
//!
//! Conventions: world Y is up. Pixel coordinates have their origin at the top-left corner
//! of the image, x to the right, y down; pixel `(i, j)` covers `[i, i+1) × [j, j+1)`, so
//! its centre is at `(i + 0.5, j + 0.5)`.

use crate::error::{write_atomic, PoseError, Result};
use std::borrow::Cow;
use std::path::Path;

/// Largest accepted image side, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Background colour of [`render_frame`].
pub const BACKGROUND: [u8; 3] = [245, 245, 240];

const GRID_COLOUR: [u8; 3] = [208, 208, 204];
const JOINT_COLOUR: [u8; 3] = [55, 55, 60];
const SEPARATOR_COLOUR: [u8; 3] = [160, 160, 160];

fn sub3(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn dot3(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn finite3(p: [f64; 3]) -> bool {
    p.iter().all(|v| v.is_finite())
}

/// A pinhole camera orbiting a target point, world Y up.
///
/// With `yaw = pitch = 0` the camera sits on the +Z side of the target looking towards −Z,
/// with world +X to the right of the image and +Y up. Positive `yaw` (radians) turns the
/// camera position about the world Y axis (from +Z towards +X); positive `pitch` (radians)
/// raises it so that it looks down at the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// Rotation of the camera position about the world Y axis, radians.
    pub yaw: f64,
    /// Elevation of the camera position above the target's horizontal plane, radians.
    pub pitch: f64,
    /// Distance from the camera to the target, world units.
    pub distance: f64,
    /// Focal length in units of the image height (1.0 ⇒ 53° vertical field of view).
    pub focal: f64,
    /// The point the camera looks at; it projects to the image centre.
    pub target: [f64; 3],
}

impl Camera {
    /// Focal length used by [`Camera::fit`] (about 37° vertical field of view).
    pub const DEFAULT_FOCAL: f64 = 1.5;

    /// Camera axes in world coordinates: (right, up, forward), forward pointing from the
    /// camera towards the target.
    pub fn axes(&self) -> ([f64; 3], [f64; 3], [f64; 3]) {
        let (sy, cy) = self.yaw.sin_cos();
        let (sp, cp) = self.pitch.sin_cos();
        let forward = [-sy * cp, -sp, -cy * cp];
        let right = [cy, 0.0, -sy];
        // up = right × forward
        let up = [
            right[1] * forward[2] - right[2] * forward[1],
            right[2] * forward[0] - right[0] * forward[2],
            right[0] * forward[1] - right[1] * forward[0],
        ];
        (right, up, forward)
    }

    /// Camera centre in world coordinates.
    pub fn position(&self) -> [f64; 3] {
        let (_, _, f) = self.axes();
        [
            self.target[0] - self.distance * f[0],
            self.target[1] - self.distance * f[1],
            self.target[2] - self.distance * f[2],
        ]
    }

    /// Camera-space coordinates of `p`: x right, y up, z depth along the viewing direction.
    fn camera_space(&self, p: [f64; 3]) -> [f64; 3] {
        let (r, u, f) = self.axes();
        let d = sub3(p, self.position());
        [dot3(d, r), dot3(d, u), dot3(d, f)]
    }

    fn project_camera_space(&self, c: [f64; 3]) -> [f64; 2] {
        let z = if c[2].abs() < 1e-12 { 1e-12 } else { c[2] };
        [self.focal * c[0] / z, -self.focal * c[1] / z]
    }

    /// Projects `p` to normalised image coordinates and depth.
    ///
    /// Coordinates are in units of the image height with `(0, 0)` at the image centre and
    /// +y pointing down, so the visible range is `y ∈ [-0.5, 0.5]` and
    /// `x ∈ [-0.5·w/h, 0.5·w/h]`. The depth is the distance along the viewing direction;
    /// points with depth ≤ 0 are behind the camera and their coordinates are meaningless.
    pub fn project(&self, p: [f64; 3]) -> ([f64; 2], f64) {
        let c = self.camera_space(p);
        (self.project_camera_space(c), c[2])
    }

    /// Like [`Camera::project`], in pixel coordinates of a `width × height` image.
    pub fn project_pixels(&self, p: [f64; 3], width: u32, height: u32) -> ([f64; 2], f64) {
        let (uv, depth) = self.project(p);
        (to_pixels(uv, width, height), depth)
    }

    /// A camera with the given `yaw` and `pitch` (radians) that frames all finite `points`
    /// (for a motion: the joints of every frame) with a margin, assuming an image at least
    /// as wide as it is tall. The target is the centre of the points' bounding box and the
    /// distance is the smallest one that keeps every point within 85% of the half-height.
    pub fn fit(points: &[[f64; 3]], yaw: f64, pitch: f64) -> Camera {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for p in points.iter().filter(|p| finite3(**p)) {
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        let yaw = if yaw.is_finite() { yaw } else { 0.0 };
        let pitch = if pitch.is_finite() { pitch } else { 0.0 };
        let mut cam =
            Camera { yaw, pitch, distance: 3.0, focal: Self::DEFAULT_FOCAL, target: [0.0; 3] };
        if lo[0] > hi[0] {
            return cam;
        }
        cam.target = [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), 0.5 * (lo[2] + hi[2])];
        let extent = (0..3).map(|a| hi[a] - lo[a]).fold(0.0, f64::max);
        let (r, u, f) = cam.axes();
        let margin = 0.5 * 0.85;
        // Depth of a point = distance + (p - target)·f; it needs |x|, |y| · focal / depth ≤ margin.
        let mut need = 1e-9_f64.max(0.05 * extent);
        for p in points.iter().filter(|p| finite3(**p)) {
            let d = sub3(*p, cam.target);
            let (x, y, z) = (dot3(d, r), dot3(d, u), dot3(d, f));
            let lateral = x.abs().max(y.abs());
            need = need.max(cam.focal * lateral / margin - z);
            // Keep every point well in front of the camera.
            need = need.max(0.05 * extent - z);
        }
        if extent <= 0.0 {
            need = need.max(1.0);
        }
        cam.distance = need;
        cam
    }

    /// The part of segment `a`–`b` in front of the near plane, projected to pixels.
    fn clip_project(
        &self,
        a: [f64; 3],
        b: [f64; 3],
        width: u32,
        height: u32,
    ) -> Option<([f64; 2], [f64; 2])> {
        let near = 1e-6_f64.max(1e-3 * self.distance.abs());
        let mut ca = self.camera_space(a);
        let mut cb = self.camera_space(b);
        if !(finite3(ca) && finite3(cb)) || (ca[2] < near && cb[2] < near) {
            return None;
        }
        if ca[2] < near || cb[2] < near {
            let t = (near - ca[2]) / (cb[2] - ca[2]);
            let cut = [ca[0] + t * (cb[0] - ca[0]), ca[1] + t * (cb[1] - ca[1]), near];
            if ca[2] < near {
                ca = cut;
            } else {
                cb = cut;
            }
        }
        Some((
            to_pixels(self.project_camera_space(ca), width, height),
            to_pixels(self.project_camera_space(cb), width, height),
        ))
    }
}

/// Normalised image coordinates (see [`Camera::project`]) to pixel coordinates.
pub fn to_pixels(uv: [f64; 2], width: u32, height: u32) -> [f64; 2] {
    let h = f64::from(height);
    [0.5 * f64::from(width) + uv[0] * h, 0.5 * h + uv[1] * h]
}

/// Calls `plot(pixel_index, coverage)` for every pixel of a `width × height` image touched
/// by the capsule of `radius` around segment `a`–`b` (pixel coordinates). Coverage is 1
/// within `radius - 0.5` of the segment and falls linearly to 0 at `radius + 0.5`.
/// Non-finite input or a negative radius draws nothing.
fn raster_capsule(
    width: u32,
    height: u32,
    a: [f64; 2],
    b: [f64; 2],
    radius: f64,
    mut plot: impl FnMut(usize, f64),
) {
    if !(a.iter().chain(&b).all(|v| v.is_finite()) && radius.is_finite() && radius >= 0.0) {
        return;
    }
    let reach = radius + 0.5;
    let (w, h) = (f64::from(width), f64::from(height));
    // Clip to the image grown by the capsule's reach, so far-away endpoints cost nothing
    // and do not lose precision in the distance computation.
    let pad = reach + 1.0;
    let Some((a, b)) = clip_to_rect(a, b, [-pad, w + pad], [-pad, h + pad]) else {
        return;
    };
    let x0 = (a[0].min(b[0]) - reach).floor().clamp(0.0, w) as usize;
    let x1 = (a[0].max(b[0]) + reach).ceil().clamp(0.0, w) as usize;
    let y0 = (a[1].min(b[1]) - reach).floor().clamp(0.0, h) as usize;
    let y1 = (a[1].max(b[1]) + reach).ceil().clamp(0.0, h) as usize;
    let d = [b[0] - a[0], b[1] - a[1]];
    let len2 = d[0] * d[0] + d[1] * d[1];
    let stride = width as usize;
    for y in y0..y1 {
        let py = y as f64 + 0.5;
        for x in x0..x1 {
            let px = x as f64 + 0.5;
            let q = [px - a[0], py - a[1]];
            let t =
                if len2 > 0.0 { ((q[0] * d[0] + q[1] * d[1]) / len2).clamp(0.0, 1.0) } else { 0.0 };
            let ex = q[0] - t * d[0];
            let ey = q[1] - t * d[1];
            let dist = (ex * ex + ey * ey).sqrt();
            let coverage = (reach - dist).clamp(0.0, 1.0);
            if coverage > 0.0 {
                plot(y * stride + x, coverage);
            }
        }
    }
}

/// Liang–Barsky clipping of segment `a`–`b` to `x ∈ xr`, `y ∈ yr`; `None` when it misses
/// the rectangle (or its direction is not finite).
fn clip_to_rect(
    a: [f64; 2],
    b: [f64; 2],
    xr: [f64; 2],
    yr: [f64; 2],
) -> Option<([f64; 2], [f64; 2])> {
    let d = [b[0] - a[0], b[1] - a[1]];
    if !(d[0].is_finite() && d[1].is_finite()) {
        return None;
    }
    // Parameter of each clipped end and the boundary (axis, value) that set it.
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    type Hit = Option<(usize, f64)>;
    let (mut hit0, mut hit1): (Hit, Hit) = (None, None);
    for (axis, p, q, bound) in [
        (0, -d[0], a[0] - xr[0], xr[0]),
        (0, d[0], xr[1] - a[0], xr[1]),
        (1, -d[1], a[1] - yr[0], yr[0]),
        (1, d[1], yr[1] - a[1], yr[1]),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                if r > t1 {
                    return None;
                }
                if r > t0 {
                    t0 = r;
                    hit0 = Some((axis, bound));
                }
            } else {
                if r < t0 {
                    return None;
                }
                if r < t1 {
                    t1 = r;
                    hit1 = Some((axis, bound));
                }
            }
        }
    }
    // Put a clipped end exactly on its boundary and solve the line equation for the other
    // coordinate from there (precise even for very distant endpoints).
    let end = |hit: Hit, original: [f64; 2]| -> [f64; 2] {
        match hit {
            None => original,
            Some((axis, bound)) => {
                let other = 1 - axis;
                let mut p = [0.0; 2];
                p[axis] = bound;
                p[other] = a[other] + (bound - a[axis]) * (d[other] / d[axis]);
                [p[0].clamp(xr[0], xr[1]), p[1].clamp(yr[0], yr[1])]
            }
        }
    };
    let (ca, cb) = (end(hit0, a), end(hit1, b));
    if ca.iter().chain(&cb).all(|v| v.is_finite()) {
        Some((ca, cb))
    } else {
        None
    }
}

fn check_size(width: u32, height: u32) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(PoseError::invalid(format!("image size {width}x{height} is empty")));
    }
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(PoseError::invalid(format!(
            "image size {width}x{height} exceeds the limit of {MAX_IMAGE_SIDE} pixels per side"
        )));
    }
    Ok(())
}

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes, rows top to bottom, RGB per pixel.
    pub data: Vec<u8>,
}

impl Rgb8Image {
    /// An image filled with `background`. Sizes of 0 or above [`MAX_IMAGE_SIDE`] are
    /// rejected with [`PoseError::Invalid`].
    pub fn new(width: u32, height: u32, background: [u8; 3]) -> Result<Self> {
        check_size(width, height)?;
        let n = width as usize * height as usize;
        let mut data = Vec::with_capacity(n * 3);
        for _ in 0..n {
            data.extend_from_slice(&background);
        }
        Ok(Rgb8Image { width, height, data })
    }

    /// The colour at pixel `(x, y)`, or `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        let px = self.data.get(i..i + 3)?;
        Some([px[0], px[1], px[2]])
    }

    fn blend(&mut self, index: usize, coverage: f64, colour: [u8; 3]) {
        let i = index * 3;
        if let Some(px) = self.data.get_mut(i..i + 3) {
            for (dst, src) in px.iter_mut().zip(colour) {
                let v = f64::from(*dst) * (1.0 - coverage) + f64::from(src) * coverage;
                *dst = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }

    /// Draws an anti-aliased capsule of `radius` pixels around segment `a`–`b` (pixel
    /// coordinates), with a 1-pixel coverage falloff at the edge.
    pub fn draw_segment(&mut self, a: [f64; 2], b: [f64; 2], radius: f64, colour: [u8; 3]) {
        let (w, h) = (self.width, self.height);
        raster_capsule(w, h, a, b, radius, |i, c| self.blend(i, c, colour));
    }

    /// Draws an anti-aliased disc of `radius` pixels centred at `centre` (pixel coordinates).
    pub fn draw_disc(&mut self, centre: [f64; 2], radius: f64, colour: [u8; 3]) {
        self.draw_segment(centre, centre, radius, colour);
    }

    /// Copies `tile` into this image with its top-left corner at `(x, y)`, clipped.
    fn blit(&mut self, tile: &Rgb8Image, x: u32, y: u32) {
        let (tw, th) = (tile.width as usize, tile.height as usize);
        let (w, h) = (self.width as usize, self.height as usize);
        let (x, y) = (x as usize, y as usize);
        for row in 0..th {
            let dy = y + row;
            if dy >= h || x >= w {
                break;
            }
            let n = tw.min(w - x) * 3;
            let src = row * tw * 3;
            let dst = (dy * w + x) * 3;
            if let (Some(s), Some(d)) =
                (tile.data.get(src..src + n), self.data.get_mut(dst..dst + n))
            {
                d.copy_from_slice(s);
            }
        }
    }
}

fn check_bones(n_points: usize, bones: &[(usize, usize)], colours: usize) -> Result<()> {
    if colours != bones.len() {
        return Err(PoseError::invalid(format!(
            "{colours} colours given for {} bones",
            bones.len()
        )));
    }
    for (k, &(a, b)) in bones.iter().enumerate() {
        if a >= n_points || b >= n_points {
            return Err(PoseError::invalid(format!(
                "bone {k} ({a}, {b}) refers to a joint out of range (there are {n_points} points)"
            )));
        }
    }
    Ok(())
}

/// A "nice" grid spacing (1, 2 or 5 × 10^k) close to `x`.
fn nice_step(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    let m = x / p;
    let f = if m < 1.5 {
        1.0
    } else if m < 3.5 {
        2.0
    } else if m < 7.5 {
        5.0
    } else {
        10.0
    };
    f * p
}

fn draw_ground_grid(img: &mut Rgb8Image, camera: &Camera) {
    let step = nice_step(camera.distance.abs() / 6.0);
    let n = 8i32;
    let cx = (camera.target[0] / step).round() * step;
    let cz = (camera.target[2] / step).round() * step;
    if !(cx.is_finite() && cz.is_finite()) {
        return;
    }
    let half = f64::from(n) * step;
    let radius = 0.5;
    for k in -n..=n {
        let o = f64::from(k) * step;
        let lines = [
            ([cx + o, 0.0, cz - half], [cx + o, 0.0, cz + half]),
            ([cx - half, 0.0, cz + o], [cx + half, 0.0, cz + o]),
        ];
        for (a, b) in lines {
            if let Some((pa, pb)) = camera.clip_project(a, b, img.width, img.height) {
                img.draw_segment(pa, pb, radius, GRID_COLOUR);
            }
        }
    }
}

/// Renders one pose: a light background, a ground grid at y = 0, the bones as
/// anti-aliased capsules in `colours[k]` (one colour per bone) and dark joint dots, all
/// drawn far to near by mean depth.
///
/// Errors ([`PoseError::Invalid`]): an empty or oversized image, `colours.len() !=
/// bones.len()`, or a bone index out of range of `points`. Non-finite points and parts
/// behind the camera are skipped.
pub fn render_frame(
    points: &[[f64; 3]],
    bones: &[(usize, usize)],
    colours: &[[u8; 3]],
    camera: &Camera,
    width: u32,
    height: u32,
) -> Result<Rgb8Image> {
    check_bones(points.len(), bones, colours.len())?;
    let mut img = Rgb8Image::new(width, height, BACKGROUND)?;
    draw_ground_grid(&mut img, camera);
    let bone_radius = (0.011 * f64::from(height)).max(1.0);
    let dot_radius = 1.3 * bone_radius;

    enum Prim {
        Bone([f64; 2], [f64; 2], [u8; 3]),
        Dot([f64; 2]),
    }
    let mut prims: Vec<(f64, Prim)> = Vec::with_capacity(bones.len() + points.len());
    for (&(a, b), &colour) in bones.iter().zip(colours) {
        let (pa, pb) = (points[a], points[b]);
        if let Some((ia, ib)) = camera.clip_project(pa, pb, width, height) {
            let depth = 0.5 * (camera.project(pa).1 + camera.project(pb).1);
            prims.push((depth, Prim::Bone(ia, ib, colour)));
        }
    }
    let near = 1e-6_f64.max(1e-3 * camera.distance.abs());
    for &p in points {
        if !finite3(p) {
            continue;
        }
        let (uv, depth) = camera.project(p);
        if depth >= near {
            // Slightly nearer than the bones meeting here, so the dot stays on top of them.
            prims.push((depth - 1e-9, Prim::Dot(to_pixels(uv, width, height))));
        }
    }
    prims.sort_by(|x, y| y.0.total_cmp(&x.0));
    for (_, prim) in prims {
        match prim {
            Prim::Bone(a, b, colour) => img.draw_segment(a, b, bone_radius, colour),
            Prim::Dot(c) => img.draw_disc(c, dot_radius, JOINT_COLOUR),
        }
    }
    Ok(img)
}

/// Fixed GIF palette: a 6×6×6 colour cube (indices 0..216) and 40 extra greys.
fn gif_palette() -> Vec<u8> {
    let mut pal = Vec::with_capacity(256 * 3);
    for r in 0..6u8 {
        for g in 0..6u8 {
            for b in 0..6u8 {
                pal.extend_from_slice(&[r * 51, g * 51, b * 51]);
            }
        }
    }
    for k in 1..=40u32 {
        let v = grey_level(k);
        pal.extend_from_slice(&[v, v, v]);
    }
    pal
}

fn grey_level(k: u32) -> u8 {
    ((k * 255 + 20) / 41) as u8
}

/// Nearest entry of [`gif_palette`] among the cube cell and the nearest grey.
fn quantise(px: [u8; 3]) -> u8 {
    let q = |v: u8| (u32::from(v) + 25) / 51;
    let (qr, qg, qb) = (q(px[0]), q(px[1]), q(px[2]));
    let err = |c: [u32; 3]| -> u32 {
        px.iter()
            .zip(c)
            .map(|(&p, c)| {
                let d = i64::from(p) - i64::from(c);
                (d * d) as u32
            })
            .sum()
    };
    let cube_err = err([qr * 51, qg * 51, qb * 51]);
    let sum: u32 = px.iter().map(|&v| u32::from(v)).sum();
    let k = ((sum * 41 + 3 * 255 / 2) / (3 * 255)).clamp(1, 40);
    let g = u32::from(grey_level(k));
    let grey_err = err([g, g, g]);
    if grey_err < cube_err {
        (216 + k - 1) as u8
    } else {
        (qr * 36 + qg * 6 + qb) as u8
    }
}

fn gif_dims(width: u32, height: u32) -> Result<(u16, u16)> {
    check_size(width, height)?;
    match (u16::try_from(width), u16::try_from(height)) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(PoseError::invalid(format!(
            "GIF size {width}x{height} exceeds 65535 pixels per side"
        ))),
    }
}

fn gif_delay(fps: f64) -> Result<u16> {
    if !(fps.is_finite() && fps > 0.0) {
        return Err(PoseError::invalid(format!("fps must be positive and finite, got {fps}")));
    }
    // GIF delays are in hundredths of a second; viewers treat 0–1 as "fast", so use ≥ 2.
    Ok((100.0 / fps).round().clamp(2.0, 65_535.0) as u16)
}

/// Encodes RGB frames (all `width × height`) as a looping GIF with the fixed palette.
fn encode_gif(path: &Path, images: &[Rgb8Image], delay: u16, w: u16, h: u16) -> Result<Vec<u8>> {
    let enc_err = |e: gif::EncodingError| {
        PoseError::invalid(format!("{}: GIF encoding failed: {e}", path.display()))
    };
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, w, h, &gif_palette()).map_err(enc_err)?;
        encoder.set_repeat(gif::Repeat::Infinite).map_err(enc_err)?;
        for img in images {
            let indices: Vec<u8> =
                img.data.chunks_exact(3).map(|c| quantise([c[0], c[1], c[2]])).collect();
            let frame = gif::Frame {
                width: w,
                height: h,
                delay,
                buffer: Cow::Owned(indices),
                ..gif::Frame::default()
            };
            encoder.write_frame(&frame).map_err(enc_err)?;
        }
        encoder.into_inner().map_err(enc_err)?;
    }
    Ok(out)
}

/// Writes a looping animated GIF of `frames` (joint positions per frame) seen through
/// `camera`, at `fps` frames per second, atomically (temporary file, then rename).
///
/// Colours use a fixed 256-entry palette (6×6×6 cube plus greys). The delay is rounded to
/// hundredths of a second, at least 0.02 s. Errors ([`PoseError::Invalid`]): no frames, a
/// non-positive fps, a size of 0 or above 65535 (or [`MAX_IMAGE_SIDE`]), and anything
/// [`render_frame`] rejects (the message names the frame); [`PoseError::Io`] when writing.
#[allow(clippy::too_many_arguments)]
pub fn write_gif(
    path: &Path,
    frames: &[Vec<[f64; 3]>],
    bones: &[(usize, usize)],
    colours: &[[u8; 3]],
    fps: f64,
    width: u32,
    height: u32,
    camera: &Camera,
) -> Result<()> {
    if frames.is_empty() {
        return Err(PoseError::invalid(format!("{}: no frames to write", path.display())));
    }
    let (w, h) = gif_dims(width, height)?;
    let delay = gif_delay(fps)?;
    let images = frames
        .iter()
        .enumerate()
        .map(|(i, pts)| {
            render_frame(pts, bones, colours, camera, width, height)
                .map_err(|e| PoseError::invalid(format!("frame {i}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = encode_gif(path, &images, delay, w, h)?;
    write_atomic(path, &bytes)
}

/// Writes one looping GIF that tiles several motions in a grid of `cols` columns (row by
/// row), each tile `tile_width × tile_height` with its own camera fitted to all frames of
/// its motion ([`Camera::fit`] with `yaw`, `pitch` in radians).
///
/// The GIF has as many frames as the longest motion; shorter motions loop on their own
/// (tile `m` shows frame `t % len_m`). Empty cells of the last row stay background.
/// Errors ([`PoseError::Invalid`]): no motions, an empty motion, `cols == 0`, a total size
/// that is empty or too large, a non-positive fps, and anything [`render_frame`] rejects
/// (the message names the motion and frame); [`PoseError::Io`] when writing.
#[allow(clippy::too_many_arguments)]
pub fn write_gif_grid(
    path: &Path,
    motions: &[Vec<Vec<[f64; 3]>>],
    cols: usize,
    bones: &[(usize, usize)],
    colours: &[[u8; 3]],
    fps: f64,
    tile_width: u32,
    tile_height: u32,
    yaw: f64,
    pitch: f64,
) -> Result<()> {
    if motions.is_empty() {
        return Err(PoseError::invalid(format!("{}: no motions to write", path.display())));
    }
    if let Some(m) = motions.iter().position(|m| m.is_empty()) {
        return Err(PoseError::invalid(format!("motion {m} has no frames")));
    }
    if cols == 0 {
        return Err(PoseError::invalid("cols must be at least 1, got 0"));
    }
    check_size(tile_width, tile_height)?;
    let cols = cols.min(motions.len());
    let rows = motions.len().div_ceil(cols);
    let total = |tile: u32, n: usize| {
        u32::try_from(n).ok().and_then(|n| tile.checked_mul(n)).ok_or_else(|| {
            PoseError::invalid(format!("grid of {n} tiles of {tile} pixels is too large"))
        })
    };
    let (width, height) = (total(tile_width, cols)?, total(tile_height, rows)?);
    let (w, h) = gif_dims(width, height)?;
    let delay = gif_delay(fps)?;
    let cameras: Vec<Camera> = motions
        .iter()
        .map(|m| {
            let all: Vec<[f64; 3]> = m.iter().flatten().copied().collect();
            Camera::fit(&all, yaw, pitch)
        })
        .collect();
    let n_frames = motions.iter().map(Vec::len).max().unwrap_or(0);
    let mut images = Vec::with_capacity(n_frames);
    for t in 0..n_frames {
        let mut canvas = Rgb8Image::new(width, height, BACKGROUND)?;
        for (m, (motion, camera)) in motions.iter().zip(&cameras).enumerate() {
            let f = t % motion.len();
            let tile = render_frame(&motion[f], bones, colours, camera, tile_width, tile_height)
                .map_err(|e| PoseError::invalid(format!("motion {m} frame {f}: {e}")))?;
            let (c, r) = ((m % cols) as u32, (m / cols) as u32);
            canvas.blit(&tile, c * tile_width, r * tile_height);
        }
        let (wf, hf) = (f64::from(width), f64::from(height));
        for c in 1..cols as u32 {
            let x = f64::from(c * tile_width);
            canvas.draw_segment([x, 0.0], [x, hf], 0.5, SEPARATOR_COLOUR);
        }
        for r in 1..rows as u32 {
            let y = f64::from(r * tile_height);
            canvas.draw_segment([0.0, y], [wf, y], 0.5, SEPARATOR_COLOUR);
        }
        images.push(canvas);
    }
    let bytes = encode_gif(path, &images, delay, w, h)?;
    write_atomic(path, &bytes)
}

/// Renders a keypoint skeleton as a network input image: `3 × size × size` floats,
/// channel-major (all R, then all G, then all B), values in `[0, 1]`, black background.
///
/// `points2d` are pixel coordinates in the output image (see the module docs). Bones are
/// drawn in the sequence given by `order` (indices into `bones`; later ones are drawn on
/// top, so sort far to near; bones not listed are not drawn), bone `k` as an anti-aliased
/// capsule of radius `radii[k]` pixels in `colours[k]` (scaled to `[0, 1]`). Points that
/// are not finite draw nothing.
///
/// Errors ([`PoseError::Invalid`]): `size` of 0 or above [`MAX_IMAGE_SIDE`], `colours` or
/// `radii` not one per bone, a bone index out of range of `points2d`, an `order` entry out
/// of range of `bones`, a negative or non-finite radius.
pub fn keypoint_image(
    points2d: &[[f64; 2]],
    bones: &[(usize, usize)],
    colours: &[[u8; 3]],
    radii: &[f64],
    order: &[usize],
    size: u32,
) -> Result<Vec<f32>> {
    check_size(size, size)?;
    check_bones(points2d.len(), bones, colours.len())?;
    if radii.len() != bones.len() {
        return Err(PoseError::invalid(format!(
            "{} radii given for {} bones",
            radii.len(),
            bones.len()
        )));
    }
    if let Some(k) = radii.iter().position(|r| !(r.is_finite() && *r >= 0.0)) {
        return Err(PoseError::invalid(format!(
            "radius of bone {k} is {}, expected a finite value >= 0",
            radii[k]
        )));
    }
    if let Some(&k) = order.iter().find(|&&k| k >= bones.len()) {
        return Err(PoseError::invalid(format!(
            "order entry {k} is out of range (there are {} bones)",
            bones.len()
        )));
    }
    let plane = size as usize * size as usize;
    let mut img = vec![0f32; 3 * plane];
    for &k in order {
        let (a, b) = bones[k];
        let colour = colours[k].map(|c| f32::from(c) / 255.0);
        raster_capsule(size, size, points2d[a], points2d[b], radii[k], |i, cov| {
            let cov = cov as f32;
            for (ch, &c) in colour.iter().enumerate() {
                if let Some(v) = img.get_mut(ch * plane + i) {
                    *v = (*v * (1.0 - cov) + c * cov).clamp(0.0, 1.0);
                }
            }
        });
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_has_256_entries_and_quantise_is_exact_on_palette() {
        let pal = gif_palette();
        assert_eq!(pal.len(), 256 * 3);
        for (i, c) in pal.chunks_exact(3).enumerate() {
            let q = usize::from(quantise([c[0], c[1], c[2]]));
            assert_eq!(&pal[q * 3..q * 3 + 3], c, "palette entry {i}");
        }
        // The background maps to a grey close to it.
        let q = usize::from(quantise(BACKGROUND));
        let got = &pal[q * 3..q * 3 + 3];
        for (g, b) in got.iter().zip(BACKGROUND) {
            assert!((i32::from(*g) - i32::from(b)).abs() <= 6, "{got:?}");
        }
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.9), 1.0);
        assert_eq!(nice_step(2.4), 2.0);
        assert_eq!(nice_step(40.0), 50.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }

    #[test]
    fn clip_keeps_front_part() {
        let cam = Camera { yaw: 0.0, pitch: 0.0, distance: 2.0, focal: 1.0, target: [0.0; 3] };
        // From in front of the camera (z = 0) to behind it (z = 5): the camera is at z = 2.
        assert!(cam.clip_project([0.0, 0.0, 0.0], [0.0, 0.0, 5.0], 10, 10).is_some());
        assert!(cam.clip_project([0.0, 0.0, 3.0], [0.0, 0.0, 5.0], 10, 10).is_none());
    }
}
