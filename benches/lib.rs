//! Shared helpers of the criterion benches (see `benches/bench_main.rs`).
