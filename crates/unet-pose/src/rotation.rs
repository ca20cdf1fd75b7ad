//! Rotation representations: unit quaternions (`w, x, y, z`, the DeepMimic order), 3×3
//! matrices, axis–angle, and the continuous 6D representation of Zhou et al. 2019 (the first
//! two columns of the matrix, mapped back by Gram–Schmidt).

/// A 3×3 rotation matrix, row-major.
pub type Mat3 = [[f64; 3]; 3];
/// A 3-vector.
pub type Vec3 = [f64; 3];

/// The identity matrix.
pub const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// A unit quaternion `w + xi + yj + zk`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quat {
    /// Real part.
    pub w: f64,
    /// i.
    pub x: f64,
    /// j.
    pub y: f64,
    /// k.
    pub z: f64,
}

impl Default for Quat {
    fn default() -> Self {
        Quat::IDENTITY
    }
}

impl Quat {
    /// No rotation.
    pub const IDENTITY: Quat = Quat { w: 1.0, x: 0.0, y: 0.0, z: 0.0 };

    /// From components, normalised (a zero quaternion becomes the identity).
    pub fn new(w: f64, x: f64, y: f64, z: f64) -> Quat {
        Quat { w, x, y, z }.normalized()
    }

    /// Rotation by `angle` radians about the unit `axis`.
    pub fn from_axis_angle(axis: Vec3, angle: f64) -> Quat {
        let n = norm(axis);
        if n == 0.0 {
            return Quat::IDENTITY;
        }
        let (s, c) = (0.5 * angle).sin_cos();
        Quat { w: c, x: axis[0] / n * s, y: axis[1] / n * s, z: axis[2] / n * s }
    }

    /// Unit length (the identity for a zero or non-finite quaternion).
    pub fn normalized(self) -> Quat {
        let n = (self.w * self.w + self.x * self.x + self.y * self.y + self.z * self.z).sqrt();
        if n == 0.0 || !n.is_finite() {
            return Quat::IDENTITY;
        }
        Quat { w: self.w / n, x: self.x / n, y: self.y / n, z: self.z / n }
    }

    /// Hamilton product `self · o` (apply `o` first, then `self`).
    pub fn compose(self, o: Quat) -> Quat {
        Quat {
            w: self.w * o.w - self.x * o.x - self.y * o.y - self.z * o.z,
            x: self.w * o.x + self.x * o.w + self.y * o.z - self.z * o.y,
            y: self.w * o.y - self.x * o.z + self.y * o.w + self.z * o.x,
            z: self.w * o.z + self.x * o.y - self.y * o.x + self.z * o.w,
        }
    }

    /// The inverse rotation.
    pub fn conj(self) -> Quat {
        Quat { w: self.w, x: -self.x, y: -self.y, z: -self.z }
    }

    /// Rotates `v`.
    pub fn rotate(self, v: Vec3) -> Vec3 {
        mat_vec(&self.to_matrix(), v)
    }

    /// The rotation matrix.
    pub fn to_matrix(self) -> Mat3 {
        let Quat { w, x, y, z } = self;
        [
            [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y)],
            [2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x)],
            [2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)],
        ]
    }

    /// From a rotation matrix (Shepperd's method, `w ≥ 0`).
    pub fn from_matrix(m: &Mat3) -> Quat {
        let tr = m[0][0] + m[1][1] + m[2][2];
        let q = if tr > 0.0 {
            let s = (tr + 1.0).sqrt() * 2.0;
            Quat {
                w: 0.25 * s,
                x: (m[2][1] - m[1][2]) / s,
                y: (m[0][2] - m[2][0]) / s,
                z: (m[1][0] - m[0][1]) / s,
            }
        } else if m[0][0] > m[1][1] && m[0][0] > m[2][2] {
            let s = (1.0 + m[0][0] - m[1][1] - m[2][2]).sqrt() * 2.0;
            Quat {
                w: (m[2][1] - m[1][2]) / s,
                x: 0.25 * s,
                y: (m[0][1] + m[1][0]) / s,
                z: (m[0][2] + m[2][0]) / s,
            }
        } else if m[1][1] > m[2][2] {
            let s = (1.0 + m[1][1] - m[0][0] - m[2][2]).sqrt() * 2.0;
            Quat {
                w: (m[0][2] - m[2][0]) / s,
                x: (m[0][1] + m[1][0]) / s,
                y: 0.25 * s,
                z: (m[1][2] + m[2][1]) / s,
            }
        } else {
            let s = (1.0 + m[2][2] - m[0][0] - m[1][1]).sqrt() * 2.0;
            Quat {
                w: (m[1][0] - m[0][1]) / s,
                x: (m[0][2] + m[2][0]) / s,
                y: (m[1][2] + m[2][1]) / s,
                z: 0.25 * s,
            }
        };
        let q = q.normalized();
        if q.w < 0.0 {
            Quat { w: -q.w, x: -q.x, y: -q.y, z: -q.z }
        } else {
            q
        }
    }

    /// Spherical linear interpolation along the shorter arc.
    pub fn slerp(self, o: Quat, t: f64) -> Quat {
        let mut d = self.w * o.w + self.x * o.x + self.y * o.y + self.z * o.z;
        let o = if d < 0.0 {
            d = -d;
            Quat { w: -o.w, x: -o.x, y: -o.y, z: -o.z }
        } else {
            o
        };
        let (a, b) = if d > 0.9995 {
            (1.0 - t, t)
        } else {
            let th = d.clamp(-1.0, 1.0).acos();
            let s = th.sin();
            (((1.0 - t) * th).sin() / s, (t * th).sin() / s)
        };
        Quat {
            w: a * self.w + b * o.w,
            x: a * self.x + b * o.x,
            y: a * self.y + b * o.y,
            z: a * self.z + b * o.z,
        }
        .normalized()
    }

    /// Angle of the rotation in radians, in `[0, π]`.
    pub fn angle(self) -> f64 {
        2.0 * self.w.abs().clamp(0.0, 1.0).acos()
    }
}

/// The 6D representation: the first two columns of `m`, `[m00, m10, m20, m01, m11, m21]`.
pub fn matrix_to_6d(m: &Mat3) -> [f64; 6] {
    [m[0][0], m[1][0], m[2][0], m[0][1], m[1][1], m[2][1]]
}

/// The rotation nearest a 6D vector by Gram–Schmidt (any non-degenerate input is valid).
pub fn matrix_from_6d(r: &[f64; 6]) -> Mat3 {
    let a1 = [r[0], r[1], r[2]];
    let a2 = [r[3], r[4], r[5]];
    let b1 = normalize(a1).unwrap_or([1.0, 0.0, 0.0]);
    let d = dot(b1, a2);
    let b2 = normalize([a2[0] - d * b1[0], a2[1] - d * b1[1], a2[2] - d * b1[2]])
        .unwrap_or_else(|| any_perpendicular(b1));
    let b3 = cross(b1, b2);
    [[b1[0], b2[0], b3[0]], [b1[1], b2[1], b3[1]], [b1[2], b2[2], b3[2]]]
}

fn any_perpendicular(v: Vec3) -> Vec3 {
    let t = if v[0].abs() < 0.9 { [1.0, 0.0, 0.0] } else { [0.0, 1.0, 0.0] };
    normalize(cross(v, t)).unwrap_or([0.0, 1.0, 0.0])
}

/// `a · b` of matrices.
pub fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut c = [[0.0; 3]; 3];
    for (i, row) in c.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

/// The transpose (inverse of a rotation).
pub fn transpose(a: &Mat3) -> Mat3 {
    let mut t = [[0.0; 3]; 3];
    for (i, row) in a.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            t[j][i] = *v;
        }
    }
    t
}

/// `m · v`.
pub fn mat_vec(m: &Mat3, v: Vec3) -> Vec3 {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

/// Rotation about +y (up) by `yaw` radians.
pub fn yaw_matrix(yaw: f64) -> Mat3 {
    let (s, c) = yaw.sin_cos();
    [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
}

/// The heading of a rotation with Y up: the yaw of its local +x axis projected on the ground.
pub fn heading(m: &Mat3) -> f64 {
    // Local x axis in world = first column; yaw measured so that yaw_matrix(h)·x̂ is that axis.
    (-m[2][0]).atan2(m[0][0])
}

/// Dot product.
pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Cross product.
pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// Euclidean norm.
pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// Unit vector, `None` for (near) zero.
pub fn normalize(a: Vec3) -> Option<Vec3> {
    let n = norm(a);
    (n > 1e-12).then(|| [a[0] / n, a[1] / n, a[2] / n])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &Mat3, b: &Mat3, tol: f64) -> bool {
        a.iter().flatten().zip(b.iter().flatten()).all(|(x, y)| (x - y).abs() < tol)
    }

    #[test]
    fn quaternion_matrix_and_6d_round_trips() {
        let mut s = 7u64;
        let mut r = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        for _ in 0..200 {
            let q = Quat::new(r(), r(), r(), r());
            let m = q.to_matrix();
            let back = Quat::from_matrix(&m).to_matrix();
            assert!(close(&m, &back, 1e-9));
            assert!(close(&m, &matrix_from_6d(&matrix_to_6d(&m)), 1e-9));
            let i = mat_mul(&m, &transpose(&m));
            assert!(close(&i, &IDENTITY, 1e-9));
            // The Hamilton product composes rotations like their matrices.
            let p = Quat::new(r(), r(), r(), r());
            assert!(close(&q.compose(p).to_matrix(), &mat_mul(&m, &p.to_matrix()), 1e-9));
            assert!(q.compose(q.conj()).angle() < 1e-6);
        }
    }

    #[test]
    fn axis_angle_slerp_and_heading() {
        let q = Quat::from_axis_angle([0.0, 1.0, 0.0], 0.7);
        assert!(close(&q.to_matrix(), &yaw_matrix(0.7), 1e-12));
        assert!((heading(&yaw_matrix(0.7)) - 0.7).abs() < 1e-12);
        let half = Quat::IDENTITY.slerp(q, 0.5);
        assert!((half.angle() - 0.35).abs() < 1e-9);
        // 90° about z maps x to y.
        let v = Quat::from_axis_angle([0.0, 0.0, 1.0], std::f64::consts::FRAC_PI_2)
            .rotate([1.0, 0.0, 0.0]);
        assert!((v[0]).abs() < 1e-12 && (v[1] - 1.0).abs() < 1e-12);
    }
}
