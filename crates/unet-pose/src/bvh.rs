//! BVH (Biovision hierarchy) import and export for any skeleton, with forward kinematics.
//!
//! Conventions:
//! * Joints are kept in file order (depth first, parents before children); `End Site`
//!   blocks are stored on the joint that contains them.
//! * Each frame row holds one value per channel, joints in order, channels in the order
//!   they are listed in the file.
//! * Rotation channels are in degrees and are composed in the order they are listed,
//!   intrinsically: `R = R_c1 · R_c2 · R_c3`, each a right-handed rotation about its axis.
//! * Position channels replace the matching component of the joint's `OFFSET`.

use crate::error::{write_atomic, PoseError, Result};
use crate::skeleton::{JointKind, Pose, Skeleton};
use std::fmt;
use std::fmt::Write as _;
use std::path::Path;

type Mat3 = [[f64; 3]; 3];

/// A rigid transform: rotation matrix and translation (`p' = R·p + t`).
pub type Transform = ([[f64; 3]; 3], [f64; 3]);

const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// One BVH motion channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Translation along X.
    Xposition,
    /// Translation along Y.
    Yposition,
    /// Translation along Z.
    Zposition,
    /// Rotation about X, in degrees.
    Xrotation,
    /// Rotation about Y, in degrees.
    Yrotation,
    /// Rotation about Z, in degrees.
    Zrotation,
}

impl Channel {
    /// All six channels, positions first.
    pub const ALL: [Channel; 6] = [
        Channel::Xposition,
        Channel::Yposition,
        Channel::Zposition,
        Channel::Xrotation,
        Channel::Yrotation,
        Channel::Zrotation,
    ];

    /// The name used in BVH files, e.g. `"Zrotation"`.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Xposition => "Xposition",
            Channel::Yposition => "Yposition",
            Channel::Zposition => "Zposition",
            Channel::Xrotation => "Xrotation",
            Channel::Yrotation => "Yrotation",
            Channel::Zrotation => "Zrotation",
        }
    }

    /// Parses a channel name (ASCII case-insensitive); `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// Whether this is a translation channel.
    pub fn is_position(self) -> bool {
        matches!(self, Channel::Xposition | Channel::Yposition | Channel::Zposition)
    }

    /// Whether this is a rotation channel.
    pub fn is_rotation(self) -> bool {
        !self.is_position()
    }

    /// The axis index: 0 for X, 1 for Y, 2 for Z.
    pub fn axis(self) -> usize {
        match self {
            Channel::Xposition | Channel::Xrotation => 0,
            Channel::Yposition | Channel::Yrotation => 1,
            Channel::Zposition | Channel::Zrotation => 2,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One joint of a BVH hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct BvhJoint {
    /// Joint name as written after `ROOT`/`JOINT`.
    pub name: String,
    /// Index of the parent joint (`None` for the root). Parents come before children.
    pub parent: Option<usize>,
    /// `OFFSET` from the parent joint, in the parent's frame.
    pub offset: [f64; 3],
    /// Channels in the order listed in the file.
    pub channels: Vec<Channel>,
    /// `OFFSET` of an `End Site` block inside this joint, if any.
    pub end_site: Option<[f64; 3]>,
}

impl BvhJoint {
    /// A joint with the given name, parent, offset and channels, and no end site.
    pub fn new(
        name: impl Into<String>,
        parent: Option<usize>,
        offset: [f64; 3],
        channels: Vec<Channel>,
    ) -> Self {
        BvhJoint { name: name.into(), parent, offset, channels, end_site: None }
    }
}

/// A BVH file: hierarchy and motion.
#[derive(Debug, Clone, PartialEq)]
pub struct Bvh {
    /// Joints in file order (parents before children).
    pub joints: Vec<BvhJoint>,
    /// Seconds per frame (`Frame Time:`).
    pub frame_time: f64,
    /// One row per frame, each with exactly [`Bvh::channel_count`] values in joint order.
    pub frames: Vec<Vec<f64>>,
}

// ---------------------------------------------------------------------------------------
// Small matrix helpers
// ---------------------------------------------------------------------------------------

fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
        }
    }
    out
}

fn mat_vec(a: &Mat3, v: &[f64; 3]) -> [f64; 3] {
    [
        a[0][0] * v[0] + a[0][1] * v[1] + a[0][2] * v[2],
        a[1][0] * v[0] + a[1][1] * v[1] + a[1][2] * v[2],
        a[2][0] * v[0] + a[2][1] * v[1] + a[2][2] * v[2],
    ]
}

fn add3(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// Right-handed rotation about `axis` (0 = X, 1 = Y, 2 = Z) by `deg` degrees.
fn rot_axis(axis: usize, deg: f64) -> Mat3 {
    let (s, c) = deg.to_radians().sin_cos();
    let i = axis % 3;
    let j = (i + 1) % 3;
    let k = (i + 2) % 3;
    let mut m = [[0.0; 3]; 3];
    m[i][i] = 1.0;
    m[j][j] = c;
    m[k][k] = c;
    m[k][j] = s;
    m[j][k] = -s;
    m
}

/// Builds the rotation `R = R_c1 · R_c2 · R_c3` for the channels in `order` with angles
/// `deg` in degrees (intrinsic rotations, applied in the listed order). Position channels
/// in `order` contribute no rotation.
pub fn matrix_from_euler(order: [Channel; 3], deg: [f64; 3]) -> [[f64; 3]; 3] {
    let mut m = IDENTITY;
    for (ch, angle) in order.into_iter().zip(deg) {
        if ch.is_rotation() {
            m = mat_mul(&m, &rot_axis(ch.axis(), angle));
        }
    }
    m
}

/// Decomposes a rotation matrix into angles (degrees) for the channels in `order`, the
/// inverse of [`matrix_from_euler`]: `matrix_from_euler(order, euler_from_matrix(&m, order))`
/// reproduces `m` for any rotation matrix `m`.
///
/// Both Tait–Bryan orders (three different axes, e.g. ZXY) and proper Euler orders (first and
/// last axis equal, e.g. ZXZ) are supported. The middle angle lies in [-90°, 90°] (Tait–Bryan)
/// or [0°, 180°] (proper Euler); at gimbal lock the decomposition stays finite and exact
/// (the first angle is taken from the matrix and the last one absorbs the rest).
///
/// Orders that are not an Euler sequence are handled best effort: position channels get 0,
/// a channel repeating the axis of the previous rotation channel gets 0, and with fewer than
/// three distinct consecutive rotation axes the angles are a projection of `m` onto them.
/// Non-finite input gives non-finite output.
pub fn euler_from_matrix(m: &[[f64; 3]; 3], order: [Channel; 3]) -> [f64; 3] {
    let mut out = [0.0; 3];
    // (slot in `order`, axis) for each rotation channel, with consecutive repeats merged.
    let mut seq: Vec<(usize, usize)> = Vec::with_capacity(3);
    for (slot, ch) in order.into_iter().enumerate() {
        if ch.is_rotation() && seq.last().map(|s| s.1) != Some(ch.axis()) {
            seq.push((slot, ch.axis()));
        }
    }
    match seq.as_slice() {
        [] => {}
        [(s0, i)] => {
            out[*s0] = single_axis_angle(m, *i).to_degrees();
        }
        [(s0, i), (s1, j)] => {
            let k = 3 - i - j;
            let [a, b, _] = tait_bryan(m, *i, *j, k);
            out[*s0] = a.to_degrees();
            out[*s1] = b.to_degrees();
        }
        [(s0, i), (s1, j), (s2, k), ..] => {
            let angles = if i == k { proper_euler(m, *i, *j) } else { tait_bryan(m, *i, *j, *k) };
            out[*s0] = angles[0].to_degrees();
            out[*s1] = angles[1].to_degrees();
            out[*s2] = angles[2].to_degrees();
        }
    }
    out
}

/// Parity sign of the axis pair: +1 when `j` follows `i` cyclically (X→Y, Y→Z, Z→X).
fn parity(i: usize, j: usize) -> f64 {
    if j == (i + 1) % 3 {
        1.0
    } else {
        -1.0
    }
}

/// Best angle (radians) of a rotation about axis `i` matching `m`.
fn single_axis_angle(m: &Mat3, i: usize) -> f64 {
    let j = (i + 1) % 3;
    let k = (i + 2) % 3;
    (m[k][j] - m[j][k]).atan2(m[j][j] + m[k][k])
}

/// `m = R_i(a) R_j(b) R_k(c)` with `i, j, k` distinct; angles in radians.
fn tait_bryan(m: &Mat3, i: usize, j: usize, k: usize) -> [f64; 3] {
    let e = parity(i, j);
    let b = (e * m[i][k]).atan2(m[i][i].hypot(m[i][j]));
    let a = (-e * m[j][k]).atan2(m[k][k]);
    let (sa, ca) = a.sin_cos();
    // Row j of R_i(-a) m equals row j of R_k(c): [.., e sin c at i, cos c at j, ..].
    let mji = ca * m[j][i] + e * sa * m[k][i];
    let mjj = ca * m[j][j] + e * sa * m[k][j];
    let c = (e * mji).atan2(mjj);
    [a, b, c]
}

/// `m = R_i(a) R_j(b) R_i(c)` with `i != j`; angles in radians.
fn proper_euler(m: &Mat3, i: usize, j: usize) -> [f64; 3] {
    let k = 3 - i - j;
    let e = parity(i, j);
    let b = m[i][j].hypot(m[i][k]).atan2(m[i][i]);
    let a = m[j][i].atan2(-e * m[k][i]);
    let (sa, ca) = a.sin_cos();
    // Row j of R_i(-a) m equals row j of R_i(c): [cos c at j, -e sin c at k].
    let mjj = ca * m[j][j] + e * sa * m[k][j];
    let mjk = ca * m[j][k] + e * sa * m[k][k];
    let c = (-e * mjk).atan2(mjj);
    [a, b, c]
}

/// Whether `m` is a proper rotation within `tol` (orthonormal, determinant +1).
fn is_rotation_matrix(m: &Mat3, tol: f64) -> bool {
    if m.iter().flatten().any(|v| !v.is_finite()) {
        return false;
    }
    for a in 0..3 {
        for b in 0..3 {
            let dot: f64 = (0..3).map(|r| m[r][a] * m[r][b]).sum();
            let want = if a == b { 1.0 } else { 0.0 };
            if (dot - want).abs() > tol {
                return false;
            }
        }
    }
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    (det - 1.0).abs() <= tol
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Tok<'a> {
    text: &'a str,
    line: usize,
}

enum Ctx {
    Joint { idx: usize, open_line: usize, has_offset: bool, has_channels: bool },
    EndSite { owner: usize, open_line: usize, offset: Option<[f64; 3]> },
}

struct HierParser<'a> {
    toks: Vec<Tok<'a>>,
    pos: usize,
    path: &'a Path,
    /// Where the hierarchy section ends, for messages ("before MOTION at line N").
    end_desc: String,
    joints: Vec<BvhJoint>,
}

impl<'a> HierParser<'a> {
    fn err(&self, line: usize, reason: impl Into<String>) -> PoseError {
        PoseError::format(self.path, Some(line), reason)
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        let t = self.toks.get(self.pos).copied();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    /// Consumes the remaining tokens on `line`, stopping before a brace token.
    fn take_line(&mut self, line: usize) -> Vec<Tok<'a>> {
        let mut out = Vec::new();
        while let Some(t) = self.toks.get(self.pos) {
            if t.line != line || t.text == "{" || t.text == "}" {
                break;
            }
            out.push(*t);
            self.pos += 1;
        }
        out
    }

    fn number(&self, tok: Tok<'_>, what: &str) -> Result<f64> {
        let v: f64 = tok.text.parse().map_err(|_| {
            self.err(tok.line, format!("non-numeric value '{}' in {what}", tok.text))
        })?;
        if !v.is_finite() {
            return Err(self.err(tok.line, format!("non-finite value '{}' in {what}", tok.text)));
        }
        Ok(v)
    }

    fn offset(&mut self, kw: Tok<'_>) -> Result<[f64; 3]> {
        let vals = self.take_line(kw.line);
        if vals.len() != 3 {
            return Err(self.err(kw.line, format!("OFFSET needs 3 values, found {}", vals.len())));
        }
        let mut out = [0.0; 3];
        for (o, t) in out.iter_mut().zip(vals) {
            *o = self.number(t, "OFFSET")?;
        }
        Ok(out)
    }

    fn channels(&mut self, kw: Tok<'_>) -> Result<Vec<Channel>> {
        let vals = self.take_line(kw.line);
        let Some((count_tok, names)) = vals.split_first() else {
            return Err(self.err(kw.line, "CHANNELS needs a channel count"));
        };
        let count: usize = count_tok.text.parse().map_err(|_| {
            self.err(
                kw.line,
                format!("CHANNELS count '{}' is not a non-negative integer", count_tok.text),
            )
        })?;
        if count != names.len() {
            return Err(self.err(
                kw.line,
                format!("CHANNELS declares {count} channels but lists {}", names.len()),
            ));
        }
        names
            .iter()
            .map(|t| {
                Channel::from_name(t.text)
                    .ok_or_else(|| self.err(t.line, format!("unknown channel name '{}'", t.text)))
            })
            .collect()
    }

    /// Reads a joint name and its opening brace after `ROOT`/`JOINT` and pushes the joint.
    fn open_joint(&mut self, kw: Tok<'_>, parent: Option<usize>) -> Result<Ctx> {
        let name_toks = self.take_line(kw.line);
        if name_toks.is_empty() {
            return Err(self.err(kw.line, format!("missing joint name after {}", kw.text)));
        }
        let name = name_toks.iter().map(|t| t.text).collect::<Vec<_>>().join(" ");
        let open_line = self.expect_open(kw.line, &format!("{} {name}", kw.text))?;
        self.joints.push(BvhJoint::new(name, parent, [0.0; 3], Vec::new()));
        Ok(Ctx::Joint {
            idx: self.joints.len() - 1,
            open_line,
            has_offset: false,
            has_channels: false,
        })
    }

    fn expect_open(&mut self, line: usize, what: &str) -> Result<usize> {
        match self.next() {
            Some(t) if t.text == "{" => Ok(t.line),
            Some(t) => {
                Err(self.err(t.line, format!("expected '{{' after {what}, found '{}'", t.text)))
            }
            None => Err(self.err(
                line,
                format!("unbalanced braces: expected '{{' after {what} {}", self.end_desc),
            )),
        }
    }

    fn parse(mut self) -> Result<Vec<BvhJoint>> {
        let first = match self.next() {
            Some(t) if t.text.eq_ignore_ascii_case("HIERARCHY") => t,
            Some(t) => {
                return Err(self
                    .err(t.line, format!("missing HIERARCHY: the file starts with '{}'", t.text)))
            }
            None => return Err(PoseError::format(self.path, Some(1), "missing HIERARCHY section")),
        };
        let root_kw = match self.next() {
            Some(t) if t.text.eq_ignore_ascii_case("ROOT") => t,
            Some(t) => {
                return Err(self.err(
                    t.line,
                    format!("ROOT missing: expected ROOT after HIERARCHY, found '{}'", t.text),
                ))
            }
            None => {
                return Err(self.err(
                    first.line,
                    format!("ROOT missing: no joint follows HIERARCHY {}", self.end_desc),
                ))
            }
        };
        let root = self.open_joint(root_kw, None)?;
        let mut stack = vec![root];
        while let Some(ctx) = stack.last_mut() {
            let (open_line, what) = match ctx {
                Ctx::Joint { idx, open_line, .. } => (
                    *open_line,
                    format!(
                        "joint '{}'",
                        self.joints.get(*idx).map(|j| j.name.as_str()).unwrap_or("")
                    ),
                ),
                Ctx::EndSite { open_line, .. } => (*open_line, "End Site".to_string()),
            };
            let Some(tok) = self.next() else {
                return Err(self.err(
                    open_line,
                    format!(
                        "unbalanced braces: the '{{' of {what} opened here is never closed {}",
                        self.end_desc
                    ),
                ));
            };
            match ctx {
                Ctx::EndSite { owner, offset, .. } => {
                    let owner = *owner;
                    if tok.text == "}" {
                        let Some(off) = *offset else {
                            return Err(self.err(tok.line, "End Site has no OFFSET"));
                        };
                        if let Some(j) = self.joints.get_mut(owner) {
                            j.end_site = Some(off);
                        }
                        stack.pop();
                    } else if tok.text.eq_ignore_ascii_case("OFFSET") {
                        if offset.is_some() {
                            return Err(self.err(tok.line, "End Site has more than one OFFSET"));
                        }
                        *offset = Some(self.offset(tok)?);
                    } else {
                        return Err(self.err(
                            tok.line,
                            format!(
                                "unknown keyword '{}' in End Site (only OFFSET is allowed)",
                                tok.text
                            ),
                        ));
                    }
                }
                Ctx::Joint { idx, has_offset, has_channels, .. } => {
                    let idx = *idx;
                    let kw = tok.text.to_ascii_uppercase();
                    match kw.as_str() {
                        "}" => {
                            if !*has_offset {
                                return Err(self.err(
                                    tok.line,
                                    format!("{what} has no OFFSET before its closing '}}'"),
                                ));
                            }
                            stack.pop();
                            if stack.is_empty() {
                                break;
                            }
                        }
                        "OFFSET" => {
                            if *has_offset {
                                return Err(
                                    self.err(tok.line, format!("{what} has more than one OFFSET"))
                                );
                            }
                            *has_offset = true;
                            let off = self.offset(tok)?;
                            if let Some(j) = self.joints.get_mut(idx) {
                                j.offset = off;
                            }
                        }
                        "CHANNELS" => {
                            if *has_channels {
                                return Err(self.err(
                                    tok.line,
                                    format!("{what} has more than one CHANNELS line"),
                                ));
                            }
                            *has_channels = true;
                            let chans = self.channels(tok)?;
                            if let Some(j) = self.joints.get_mut(idx) {
                                j.channels = chans;
                            }
                        }
                        "JOINT" => {
                            let child = self.open_joint(tok, Some(idx))?;
                            stack.push(child);
                        }
                        "END" => {
                            let rest = self.take_line(tok.line);
                            if rest.len() != 1 || !rest[0].text.eq_ignore_ascii_case("Site") {
                                return Err(self.err(tok.line, "expected 'End Site'"));
                            }
                            if self.joints.get(idx).is_some_and(|j| j.end_site.is_some()) {
                                return Err(self
                                    .err(tok.line, format!("{what} has more than one End Site")));
                            }
                            let open_line = self.expect_open(tok.line, "End Site")?;
                            stack.push(Ctx::EndSite { owner: idx, open_line, offset: None });
                        }
                        "ROOT" => {
                            return Err(self.err(
                                tok.line,
                                "more than one ROOT: a nested ROOT is not allowed (use JOINT)",
                            ))
                        }
                        _ => {
                            return Err(self.err(
                                tok.line,
                                format!("unknown keyword '{}' in {what}", tok.text),
                            ))
                        }
                    }
                }
            }
        }
        if let Some(tok) = self.next() {
            let reason = if tok.text.eq_ignore_ascii_case("ROOT") {
                "more than one ROOT: only one skeleton per file is supported".to_string()
            } else if tok.text == "}" {
                "unbalanced braces: '}' without a matching '{'".to_string()
            } else {
                format!(
                    "unexpected '{}' after the root joint's closing brace (expected MOTION)",
                    tok.text
                )
            };
            return Err(self.err(tok.line, reason));
        }
        Ok(self.joints)
    }
}

fn words(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// If `line` (whitespace-normalised) starts with `prefix` (ASCII case-insensitive), the rest.
fn strip_prefix_ci<'b>(line: &'b str, prefix: &str) -> Option<&'b str> {
    let head = line.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        line.get(prefix.len()..).map(str::trim)
    } else {
        None
    }
}

/// Formats a number with 9 decimals, trimming trailing zeros (`-0` becomes `0`).
fn fmt_num(x: f64) -> String {
    let mut s = format!("{x:.9}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s
}

impl Bvh {
    /// Reads and parses a BVH file.
    pub fn read(path: &Path) -> Result<Bvh> {
        let bytes = std::fs::read(path).map_err(|e| PoseError::io(path, e))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| PoseError::format(path, None, format!("not valid UTF-8 text: {e}")))?;
        Bvh::parse(&text, path)
    }

    /// Parses BVH text; `path` is used only in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Bvh> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(PoseError::format(path, None, "empty file"));
        }
        let lines: Vec<&str> = text.lines().collect();
        let motion_idx = lines.iter().position(|l| {
            l.split_whitespace().next().is_some_and(|t| t.eq_ignore_ascii_case("MOTION"))
        });
        let hier_end = motion_idx.unwrap_or(lines.len());
        let toks: Vec<Tok<'_>> = lines
            .iter()
            .take(hier_end)
            .enumerate()
            .flat_map(|(i, l)| l.split_whitespace().map(move |t| Tok { text: t, line: i + 1 }))
            .collect();
        let end_desc = match motion_idx {
            Some(m) => format!("before MOTION (line {})", m + 1),
            None => format!("before the end of the file (line {})", lines.len()),
        };
        let joints = HierParser { toks, pos: 0, path, end_desc, joints: Vec::new() }.parse()?;
        let Some(motion_idx) = motion_idx else {
            return Err(PoseError::format(
                path,
                Some(lines.len().max(1)),
                "missing MOTION section (end of file reached)",
            ));
        };
        let total: usize = joints.iter().map(|j| j.channels.len()).sum();
        let (frame_time, frames) = parse_motion(&lines, motion_idx, total, path)?;
        Ok(Bvh { joints, frame_time, frames })
    }

    /// Total number of channels (values per frame row).
    pub fn channel_count(&self) -> usize {
        self.joints.iter().map(|j| j.channels.len()).sum()
    }

    /// Index of the first value of each joint's channels within a frame row.
    pub fn channel_offsets(&self) -> Vec<usize> {
        let mut acc = 0;
        self.joints
            .iter()
            .map(|j| {
                let start = acc;
                acc += j.channels.len();
                start
            })
            .collect()
    }

    /// Index of the joint with this exact name.
    pub fn joint_index(&self, name: &str) -> Option<usize> {
        self.joints.iter().position(|j| j.name == name)
    }

    /// Checks the hierarchy (single root first, parents before children, usable names,
    /// finite offsets) and the frame time, but not the frame rows.
    pub fn validate_hierarchy(&self) -> Result<()> {
        if self.joints.is_empty() {
            return Err(PoseError::invalid("BVH has no joints (ROOT missing)"));
        }
        for (i, j) in self.joints.iter().enumerate() {
            let normalised = words(&j.name);
            if normalised.is_empty() || normalised != j.name || j.name.contains(['{', '}']) {
                return Err(PoseError::invalid(format!(
                    "joint {i} has an unusable name {:?} (it must be non-empty, without braces, \
                     leading/trailing or repeated whitespace)",
                    j.name
                )));
            }
            match (i, j.parent) {
                (0, None) => {}
                (0, Some(p)) => {
                    return Err(PoseError::invalid(format!(
                        "joint 0 '{}' must be the root but has parent {p}",
                        j.name
                    )))
                }
                (_, None) => {
                    return Err(PoseError::invalid(format!(
                        "joint {i} '{}' has no parent: more than one ROOT is not supported",
                        j.name
                    )))
                }
                (_, Some(p)) if p >= i => {
                    return Err(PoseError::invalid(format!(
                        "joint {i} '{}' has parent {p}, which does not come before it",
                        j.name
                    )))
                }
                _ => {}
            }
            if j.offset.iter().any(|v| !v.is_finite())
                || j.end_site.is_some_and(|e| e.iter().any(|v| !v.is_finite()))
            {
                return Err(PoseError::invalid(format!(
                    "joint {i} '{}' has a non-finite offset",
                    j.name
                )));
            }
        }
        if !(self.frame_time.is_finite() && self.frame_time > 0.0) {
            return Err(PoseError::invalid(format!(
                "frame time must be positive and finite, got {}",
                self.frame_time
            )));
        }
        Ok(())
    }

    /// Checks everything [`Bvh::validate_hierarchy`] checks, plus that every frame row has
    /// [`Bvh::channel_count`] finite values.
    pub fn validate(&self) -> Result<()> {
        self.validate_hierarchy()?;
        let total = self.channel_count();
        for (f, row) in self.frames.iter().enumerate() {
            if row.len() != total {
                return Err(PoseError::invalid(format!(
                    "frame {f} has {} values but the hierarchy has {total} channels",
                    row.len()
                )));
            }
            if let Some(k) = row.iter().position(|v| !v.is_finite()) {
                return Err(PoseError::invalid(format!(
                    "frame {f} value {k} is not finite ({})",
                    row[k]
                )));
            }
        }
        Ok(())
    }

    /// Serialises to BVH text (tab-indented, values with 9 decimals).
    ///
    /// Joints are written depth first; if `joints` is not already in depth-first order the
    /// frame values are reordered to match, so reading the text back gives the joints in
    /// depth-first order. This never fails: an inconsistent value (see [`Bvh::validate`])
    /// gives best-effort text; [`Bvh::write`] validates first.
    pub fn to_bvh_string(&self) -> String {
        let n = self.joints.len();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        for (i, j) in self.joints.iter().enumerate() {
            match j.parent {
                Some(p) if p < n && p != i => children[p].push(i),
                _ => roots.push(i),
            }
        }
        enum Step {
            Open(usize, usize),
            Close(usize, usize),
        }
        let mut out = String::from("HIERARCHY\n");
        let mut order = Vec::with_capacity(n);
        let mut visited = vec![false; n];
        let mut stack: Vec<Step> = roots.iter().rev().map(|&r| Step::Open(r, 0)).collect();
        while let Some(step) = stack.pop() {
            match step {
                Step::Open(i, depth) => {
                    if visited[i] {
                        continue;
                    }
                    visited[i] = true;
                    order.push(i);
                    let j = &self.joints[i];
                    let ind = "\t".repeat(depth);
                    let kw = if depth == 0 { "ROOT" } else { "JOINT" };
                    let _ = writeln!(out, "{ind}{kw} {}", j.name);
                    let _ = writeln!(out, "{ind}{{");
                    let _ = writeln!(
                        out,
                        "{ind}\tOFFSET {} {} {}",
                        fmt_num(j.offset[0]),
                        fmt_num(j.offset[1]),
                        fmt_num(j.offset[2])
                    );
                    if !j.channels.is_empty() {
                        let names: Vec<&str> = j.channels.iter().map(|c| c.name()).collect();
                        let _ = writeln!(
                            out,
                            "{ind}\tCHANNELS {} {}",
                            j.channels.len(),
                            names.join(" ")
                        );
                    }
                    stack.push(Step::Close(i, depth));
                    for &c in children[i].iter().rev() {
                        stack.push(Step::Open(c, depth + 1));
                    }
                }
                Step::Close(i, depth) => {
                    let ind = "\t".repeat(depth);
                    if let Some(e) = self.joints[i].end_site {
                        let _ = writeln!(out, "{ind}\tEnd Site");
                        let _ = writeln!(out, "{ind}\t{{");
                        let _ = writeln!(
                            out,
                            "{ind}\t\tOFFSET {} {} {}",
                            fmt_num(e[0]),
                            fmt_num(e[1]),
                            fmt_num(e[2])
                        );
                        let _ = writeln!(out, "{ind}\t}}");
                    }
                    let _ = writeln!(out, "{ind}}}");
                }
            }
        }
        let offsets = self.channel_offsets();
        out.push_str("MOTION\n");
        let _ = writeln!(out, "Frames: {}", self.frames.len());
        let _ = writeln!(out, "Frame Time: {}", self.frame_time);
        for row in &self.frames {
            let mut vals: Vec<String> = Vec::with_capacity(row.len());
            for &i in &order {
                let start = offsets[i];
                for k in 0..self.joints[i].channels.len() {
                    vals.push(fmt_num(row.get(start + k).copied().unwrap_or(0.0)));
                }
            }
            out.push_str(&vals.join(" "));
            out.push('\n');
        }
        out
    }

    /// Validates and writes the BVH file atomically (temporary file in the same folder,
    /// then rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        self.validate()?;
        write_atomic(path, self.to_bvh_string().as_bytes())
    }

    fn frame_row(&self, frame: usize) -> Result<&[f64]> {
        let row = self.frames.get(frame).ok_or_else(|| {
            PoseError::invalid(format!(
                "frame {frame} is out of range: the motion has {} frames",
                self.frames.len()
            ))
        })?;
        let total = self.channel_count();
        if row.len() != total {
            return Err(PoseError::invalid(format!(
                "frame {frame} has {} values but the hierarchy has {total} channels",
                row.len()
            )));
        }
        Ok(row)
    }

    /// Per joint, the local rotation (channels composed in listed order) and translation
    /// (the offset, with components replaced by position channels where present) at `frame`.
    pub fn local_transforms(&self, frame: usize) -> Result<Vec<Transform>> {
        let row = self.frame_row(frame)?;
        let mut out = Vec::with_capacity(self.joints.len());
        let mut k = 0;
        for j in &self.joints {
            let mut r = IDENTITY;
            let mut t = j.offset;
            for ch in &j.channels {
                let v = row.get(k).copied().unwrap_or(0.0);
                k += 1;
                if ch.is_position() {
                    t[ch.axis()] = v;
                } else {
                    r = mat_mul(&r, &rot_axis(ch.axis(), v));
                }
            }
            out.push((r, t));
        }
        Ok(out)
    }

    /// Per joint, the world rotation and position at `frame`.
    pub fn world_transforms(&self, frame: usize) -> Result<Vec<Transform>> {
        let local = self.local_transforms(frame)?;
        let mut world: Vec<(Mat3, [f64; 3])> = Vec::with_capacity(local.len());
        for (i, ((lr, lt), j)) in local.iter().zip(&self.joints).enumerate() {
            let w = match j.parent {
                None => (*lr, *lt),
                Some(p) => {
                    let Some((pr, pp)) = world.get(p).filter(|_| p < i) else {
                        return Err(PoseError::invalid(format!(
                            "joint {i} '{}' has parent {p}, which does not come before it",
                            j.name
                        )));
                    };
                    (mat_mul(pr, lr), add3(mat_vec(pr, lt), *pp))
                }
            };
            world.push(w);
        }
        Ok(world)
    }

    /// World positions of all joints at `frame`.
    pub fn positions(&self, frame: usize) -> Result<Vec<[f64; 3]>> {
        Ok(self.world_transforms(frame)?.into_iter().map(|(_, p)| p).collect())
    }

    /// World positions of the end sites at `frame`, one entry per joint (`None` for joints
    /// without an `End Site`).
    pub fn end_site_positions(&self, frame: usize) -> Result<Vec<Option<[f64; 3]>>> {
        let world = self.world_transforms(frame)?;
        Ok(world
            .iter()
            .zip(&self.joints)
            .map(|((r, p), j)| j.end_site.map(|e| add3(mat_vec(r, &e), *p)))
            .collect())
    }

    /// Builds a BVH from per-frame joint rotations.
    ///
    /// `rotations[f][j]` is the local rotation of joint `j` in frame `f` (ignored for joints
    /// without rotation channels). Each joint's channels must be empty, a position triple
    /// (X, Y and Z in any order), a rotation triple (any Euler order), or one of each.
    /// The root's position channels take `root_positions[f]`; position channels of other
    /// joints take their offset. `root_positions` needs one entry per frame when the root
    /// has position channels, and must otherwise be empty or have one entry per frame
    /// (then ignored).
    pub fn from_rotations(
        joints: Vec<BvhJoint>,
        frame_time: f64,
        root_positions: &[[f64; 3]],
        rotations: &[Vec<[[f64; 3]; 3]>],
    ) -> Result<Bvh> {
        let mut bvh = Bvh { joints, frame_time, frames: Vec::new() };
        bvh.validate_hierarchy()?;
        let n_frames = rotations.len();
        // Per joint: slots of position channels (by axis) and rotation order with slots.
        struct Layout {
            pos: Option<[usize; 3]>,
            rot: Option<([Channel; 3], [usize; 3])>,
        }
        let mut layouts = Vec::with_capacity(bvh.joints.len());
        for (i, j) in bvh.joints.iter().enumerate() {
            let bad = || {
                PoseError::invalid(format!(
                    "joint {i} '{}' has channels [{}]: expected none, a position triple, a \
                     rotation triple, or one of each",
                    j.name,
                    j.channels.iter().map(|c| c.name()).collect::<Vec<_>>().join(" ")
                ))
            };
            let pos: Vec<(usize, Channel)> = j
                .channels
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_position())
                .map(|(s, c)| (s, *c))
                .collect();
            let rot: Vec<(usize, Channel)> = j
                .channels
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_rotation())
                .map(|(s, c)| (s, *c))
                .collect();
            let pos = match pos.as_slice() {
                [] => None,
                [a, b, c] => {
                    let mut slots = [usize::MAX; 3];
                    for (s, ch) in [a, b, c] {
                        slots[ch.axis()] = *s;
                    }
                    if slots.contains(&usize::MAX) {
                        return Err(bad());
                    }
                    Some(slots)
                }
                _ => return Err(bad()),
            };
            let rot = match rot.as_slice() {
                [] => None,
                [(s0, c0), (s1, c1), (s2, c2)] => {
                    if c0.axis() == c1.axis() || c1.axis() == c2.axis() {
                        return Err(bad());
                    }
                    Some(([*c0, *c1, *c2], [*s0, *s1, *s2]))
                }
                _ => return Err(bad()),
            };
            layouts.push(Layout { pos, rot });
        }
        let root_has_pos = layouts.first().is_some_and(|l| l.pos.is_some());
        if root_positions.len() != n_frames && (root_has_pos || !root_positions.is_empty()) {
            return Err(PoseError::invalid(format!(
                "root_positions has {} entries but there are {n_frames} frames of rotations",
                root_positions.len()
            )));
        }
        let offsets = bvh.channel_offsets();
        let total = bvh.channel_count();
        let mut frames = Vec::with_capacity(n_frames);
        for (f, rots) in rotations.iter().enumerate() {
            if rots.len() != bvh.joints.len() {
                return Err(PoseError::invalid(format!(
                    "frame {f} has {} rotations but there are {} joints",
                    rots.len(),
                    bvh.joints.len()
                )));
            }
            let mut row = vec![0.0; total];
            for (i, (layout, j)) in layouts.iter().zip(&bvh.joints).enumerate() {
                let base = offsets[i];
                if let Some(slots) = layout.pos {
                    let p = if i == 0 {
                        root_positions.get(f).copied().unwrap_or(j.offset)
                    } else {
                        j.offset
                    };
                    if p.iter().any(|v| !v.is_finite()) {
                        return Err(PoseError::invalid(format!(
                            "root position in frame {f} is not finite"
                        )));
                    }
                    for axis in 0..3 {
                        row[base + slots[axis]] = p[axis];
                    }
                }
                if let Some((order, slots)) = layout.rot {
                    let m = &rots[i];
                    if !is_rotation_matrix(m, 1e-4) {
                        return Err(PoseError::invalid(format!(
                            "rotation of joint {i} '{}' in frame {f} is not a rotation matrix",
                            j.name
                        )));
                    }
                    let angles = euler_from_matrix(m, order);
                    for (s, a) in slots.iter().zip(angles) {
                        row[base + s] = a;
                    }
                }
            }
            frames.push(row);
        }
        bvh.frames = frames;
        Ok(bvh)
    }
}

/// Parses the MOTION section starting at line index `motion_idx` (0-based).
fn parse_motion(
    lines: &[&str],
    motion_idx: usize,
    total: usize,
    path: &Path,
) -> Result<(f64, Vec<Vec<f64>>)> {
    let err = |line: usize, reason: String| PoseError::format(path, Some(line), reason);
    let motion_line = motion_idx + 1;
    let motion_words = words(lines.get(motion_idx).copied().unwrap_or(""));
    if motion_words.split(' ').count() != 1 {
        return Err(err(motion_line, format!("unexpected text after MOTION: '{motion_words}'")));
    }
    // (1-based line number, normalised text) of the non-blank lines after MOTION.
    let mut rest = lines.iter().enumerate().skip(motion_idx + 1).map(|(i, l)| (i + 1, words(l)));
    fn next_nonblank(rest: &mut impl Iterator<Item = (usize, String)>) -> Option<(usize, String)> {
        rest.find(|(_, w)| !w.is_empty())
    }
    let Some((frames_line, frames_text)) = next_nonblank(&mut rest) else {
        return Err(err(motion_line, "missing 'Frames:' line after MOTION".to_string()));
    };
    let Some(count_text) = strip_prefix_ci(&frames_text, "Frames:") else {
        return Err(err(frames_line, format!("expected 'Frames: <count>', found '{frames_text}'")));
    };
    let count: usize = count_text.parse().map_err(|_| {
        err(frames_line, format!("frame count '{count_text}' is not a non-negative integer"))
    })?;
    let Some((time_line, time_text)) = next_nonblank(&mut rest) else {
        return Err(err(frames_line, "missing 'Frame Time:' line after 'Frames:'".to_string()));
    };
    let Some(dt_text) = strip_prefix_ci(&time_text, "Frame Time:") else {
        return Err(err(
            time_line,
            format!("expected 'Frame Time: <seconds>', found '{time_text}'"),
        ));
    };
    let frame_time: f64 = dt_text
        .parse()
        .map_err(|_| err(time_line, format!("non-numeric Frame Time '{dt_text}'")))?;
    if !(frame_time.is_finite() && frame_time > 0.0) {
        return Err(err(
            time_line,
            format!("Frame Time must be a positive finite number of seconds, found '{dt_text}'"),
        ));
    }
    let mut frames: Vec<Vec<f64>> = Vec::with_capacity(count.min(lines.len()));
    if total == 0 {
        // No channels: rows are empty lines, so there is nothing to count.
        if let Some((line, text)) = next_nonblank(&mut rest) {
            return Err(err(
                line,
                format!(
                    "frame row has {} values but the hierarchy declares 0 channels",
                    text.split(' ').count()
                ),
            ));
        }
        return Ok((frame_time, vec![Vec::new(); count]));
    }
    while let Some((line, text)) = next_nonblank(&mut rest) {
        if frames.len() == count {
            return Err(err(
                line,
                format!("more frame rows than 'Frames: {count}' (line {frames_line}) declares"),
            ));
        }
        let mut row = Vec::with_capacity(total);
        for tok in text.split(' ') {
            let v: f64 = tok
                .parse()
                .map_err(|_| err(line, format!("non-numeric value '{tok}' in frame row")))?;
            if !v.is_finite() {
                return Err(err(line, format!("non-finite value '{tok}' in frame row")));
            }
            row.push(v);
        }
        if row.len() != total {
            return Err(err(
                line,
                format!(
                    "frame row has {} values but the hierarchy declares {total} channels",
                    row.len()
                ),
            ));
        }
        frames.push(row);
    }
    if frames.len() != count {
        return Err(err(
            frames_line,
            format!("'Frames: {count}' declares {count} frames but {} rows follow", frames.len()),
        ));
    }
    Ok((frame_time, frames))
}

/// BVH units per metre when exporting (centimetres, the usual mocap unit).
pub const BVH_UNITS_PER_METRE: f64 = 100.0;

/// Exports poses of `skel` (a tree whose fixed leaves become `End Site`s) as a BVH with
/// `Zrotation Xrotation Yrotation` channels on every moving joint, the root's position in
/// centimetres, and `frame_time` seconds per frame. Forward kinematics of the file equals
/// [`Skeleton::forward`] (scaled to centimetres); `tests/bvh_humanoid.rs` checks it.
pub fn humanoid_bvh(skel: &Skeleton, poses: &[Pose], frame_time: f64) -> Result<Bvh> {
    use Channel::*;
    let s = BVH_UNITS_PER_METRE;
    let is_leaf = |i: usize| !skel.joints.iter().any(|j| j.parent == Some(i));
    let end = |i: usize| matches!(skel.joints[i].kind, JointKind::Fixed) && is_leaf(i);
    // Our joint index → BVH joint index (None for end sites).
    let mut map: Vec<Option<usize>> = vec![None; skel.len()];
    let mut joints: Vec<BvhJoint> = Vec::new();
    for (i, j) in skel.joints.iter().enumerate() {
        let o = [j.offset[0] * s, j.offset[1] * s, j.offset[2] * s];
        if end(i) {
            let p = j.parent.and_then(|p| map[p]).ok_or_else(|| {
                PoseError::invalid(format!("end joint `{}` has no exported parent", j.name))
            })?;
            if joints[p].end_site.is_some() {
                return Err(PoseError::invalid(format!(
                    "joint `{}` would have two end sites; BVH allows one",
                    joints[p].name
                )));
            }
            joints[p].end_site = Some(o);
            continue;
        }
        let channels = match j.kind {
            JointKind::Root => {
                vec![Xposition, Yposition, Zposition, Zrotation, Xrotation, Yrotation]
            }
            _ => vec![Zrotation, Xrotation, Yrotation],
        };
        let parent = j.parent.and_then(|p| map[p]);
        map[i] = Some(joints.len());
        joints.push(BvhJoint::new(j.name, parent, o, channels));
    }
    let mut roots = Vec::with_capacity(poses.len());
    let mut rotations = Vec::with_capacity(poses.len());
    for p in poses {
        if p.rotations.len() != skel.len() {
            return Err(PoseError::invalid(format!(
                "pose has {} rotations for {} joints",
                p.rotations.len(),
                skel.len()
            )));
        }
        roots.push([p.root_pos[0] * s, p.root_pos[1] * s, p.root_pos[2] * s]);
        let mut r = vec![crate::rotation::IDENTITY; joints.len()];
        for (i, m) in map.iter().enumerate() {
            if let Some(b) = m {
                r[*b] = p.rotations[i].to_matrix();
            }
        }
        rotations.push(r);
    }
    Bvh::from_rotations(joints, frame_time, &roots, &rotations)
}
