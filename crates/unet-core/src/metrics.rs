//! Modality-agnostic metrics: the Fréchet distance between Gaussians fitted to two feature sets
//! (Heusel et al. 2017's FID formula, on whatever feature extractor a crate provides; name
//! the result after the extractor, e.g. FD-FMNIST, never "FID" without Inception-v3).

use tch::{Kind, Tensor};

use crate::{Error, Result};

/// Mean `[D]` and covariance `[D, D]` (unbiased, as numpy's `np.cov`) of features `[N, D]`,
/// in float64.
pub fn mean_cov(features: &Tensor) -> Result<(Tensor, Tensor)> {
    let s = features.size();
    if s.len() != 2 || s[0] < 2 {
        return Err(Error::InputShape { shape: s, expected: "[N >= 2, D] features".into() });
    }
    let f = features.to_kind(Kind::Double);
    let mu = f.mean_dim(0, false, Kind::Double);
    let c = &f - &mu;
    let cov = c.transpose(0, 1).matmul(&c) / (s[0] - 1) as f64;
    Ok((mu, cov))
}

/// Symmetric positive semi-definite square root by eigen-decomposition (negative round-off
/// eigenvalues clamped to zero).
fn sqrtm_psd(a: &Tensor) -> Result<Tensor> {
    let (vals, vecs) = a.f_linalg_eigh("L")?;
    let root = vals.clamp_min(0.0).sqrt();
    Ok((&vecs * root.unsqueeze(0)).matmul(&vecs.transpose(0, 1)))
}

/// `‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^{1/2})` for two fitted Gaussians. The trace of the
/// matrix square root is computed as `Tr((Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})`, which equals the
/// `scipy.linalg.sqrtm` form of pytorch-fid and is stable for singular covariances.
pub fn frechet_distance_stats(
    mu1: &Tensor,
    cov1: &Tensor,
    mu2: &Tensor,
    cov2: &Tensor,
) -> Result<f64> {
    if mu1.size() != mu2.size() || cov1.size() != cov2.size() {
        return Err(Error::InputShape {
            shape: mu2.size(),
            expected: format!("the same feature width as {:?}", mu1.size()),
        });
    }
    let diff = (mu1 - mu2).square().sum(Kind::Double).double_value(&[]);
    let s1 = sqrtm_psd(cov1)?;
    let m = s1.matmul(cov2).matmul(&s1);
    let m = (&m + m.transpose(0, 1)) * 0.5;
    let tr_covmean =
        m.f_linalg_eigvalsh("L")?.clamp_min(0.0).sqrt().sum(Kind::Double).double_value(&[]);
    let tr = cov1.trace().double_value(&[]) + cov2.trace().double_value(&[]);
    Ok(diff + tr - 2.0 * tr_covmean)
}

/// Fréchet distance between feature sets `[N, D]` and `[M, D]`.
pub fn frechet_distance(a: &Tensor, b: &Tensor) -> Result<f64> {
    let (m1, c1) = mean_cov(a)?;
    let (m2, c2) = mean_cov(b)?;
    frechet_distance_stats(&m1, &c1, &m2, &c2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn identical_sets_are_at_distance_zero_and_shifts_add_their_square() {
        tch::manual_seed(0);
        let a = Tensor::randn([500, 6], (Kind::Double, Device::Cpu));
        assert!(frechet_distance(&a, &a).unwrap().abs() < 1e-8);
        let shifted = &a + 2.0;
        let d = frechet_distance(&a, &shifted).unwrap();
        assert!((d - 6.0 * 4.0).abs() < 1e-6, "{d}");
        // Gaussians N(0, I) and N(0, 4I) in D dims: Tr(I + 4I - 2·2I) = D.
        let (m, i) = (
            Tensor::zeros([3], (Kind::Double, Device::Cpu)),
            Tensor::eye(3, (Kind::Double, Device::Cpu)),
        );
        let d = frechet_distance_stats(&m, &i, &m, &(&i * 4.0)).unwrap();
        assert!((d - 3.0).abs() < 1e-9, "{d}");
        assert!(frechet_distance(&a.narrow(0, 0, 1), &a).is_err());
    }
}
