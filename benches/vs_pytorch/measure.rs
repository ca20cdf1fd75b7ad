//! Clocks, medians, peak RSS and the matrix-product peak.

use std::time::Instant;

use anyhow::Result;
use tch::{Device, Kind, Tensor};

/// Waits for the device's queued work (a no-op on the CPU, whose ops are synchronous).
pub fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Seconds taken by `f`, the device synchronised before and after.
pub fn seconds<T>(device: Device, f: impl FnOnce() -> Result<T>) -> Result<f64> {
    sync(device);
    let t0 = Instant::now();
    let out = f()?;
    sync(device);
    let s = t0.elapsed().as_secs_f64();
    drop(out);
    Ok(s)
}

/// Median of `v` (the mean of the middle two for an even length); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

fn vm_status(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Peak resident set size of this process (`VmHWM`, bytes); 0 when unreadable.
pub fn peak_rss() -> u64 {
    vm_status("VmHWM")
}

/// Current resident set size of this process (`VmRSS`, bytes); 0 when unreadable.
pub fn rss() -> u64 {
    vm_status("VmRSS")
}

/// Resets the peak RSS to the current RSS (Linux `clear_refs` 5), so the peak measured later
/// covers the benchmark and not the set-up (weights serialised, FLOPs counted). Returns
/// whether the kernel accepted it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// GFLOP/s of a `n×n` float32 matrix product on `device`: the best of `reps` runs after one
/// warm-up (2·n³ FLOPs each).
pub fn matmul_gflops(device: Device, n: i64, reps: usize) -> Result<f64> {
    let a = Tensor::randn([n, n], (Kind::Float, device));
    let b = Tensor::randn([n, n], (Kind::Float, device));
    let _ = a.f_matmul(&b)?;
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        best = best.min(seconds(device, || Ok(a.f_matmul(&b)?))?);
    }
    Ok(2.0 * (n as f64).powi(3) / best / 1e9)
}
