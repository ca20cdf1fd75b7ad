//! [`ShardedSampler`]: each rank's share of a data set, epoch by epoch.

use crate::rng::Rng;
use crate::{Error, Result};

/// Splits `0..len` among `world_size` ranks the way PyTorch's `DistributedSampler` does: every
/// epoch is a permutation seeded by `(seed, epoch)` (the same on every rank), padded by
/// wrapping around to a multiple of the world size, and rank `r` takes every `world_size`-th
/// index starting at `r`. The shards of one epoch are disjoint apart from the padding, and
/// their union is the whole set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedSampler {
    len: usize,
    rank: usize,
    world_size: usize,
    seed: u64,
    shuffle: bool,
}

impl ShardedSampler {
    /// The sampler of `rank` among `world_size` over `len` items.
    pub fn new(
        len: usize,
        rank: usize,
        world_size: usize,
        seed: u64,
        shuffle: bool,
    ) -> Result<Self> {
        if len == 0 {
            return Err(Error::config("len", len, "the data set is empty"));
        }
        if world_size == 0 || rank >= world_size {
            return Err(Error::config("rank", (rank, world_size), "need rank < world_size"));
        }
        Ok(Self { len, rank, world_size, seed, shuffle })
    }

    /// For this process: rank and world size of the current group, or 0 of 1.
    pub fn for_current(len: usize, seed: u64, shuffle: bool) -> Result<Self> {
        let (r, w) = super::current().map_or((0, 1), |g| (g.rank(), g.world_size()));
        Self::new(len, r, w, seed, shuffle)
    }

    /// Indices per rank and epoch: `ceil(len / world_size)`.
    pub fn shard_len(&self) -> usize {
        self.len.div_ceil(self.world_size)
    }

    /// This rank's indices of `epoch`.
    pub fn indices(&self, epoch: u64) -> Vec<i64> {
        let mut order: Vec<i64> = (0..self.len as i64).collect();
        if self.shuffle {
            // Fisher-Yates with the crate's own generator: the same on every rank and machine,
            // and it leaves libtorch's global generator alone.
            let mut rng = Rng::new(self.seed).fork(epoch);
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        let total = self.shard_len() * self.world_size;
        (self.rank..total).step_by(self.world_size).map(|i| order[i % self.len]).collect()
    }

    /// The indices of step `step` with `batch` items per rank: consecutive slices of this
    /// rank's epochs, moving to the next epoch (and permutation) when one is used up.
    pub fn batch(&self, step: usize, batch: usize) -> Vec<i64> {
        let per = self.shard_len();
        let start = step * batch;
        let mut out = Vec::with_capacity(batch);
        let mut epoch = u64::MAX;
        let mut cur = Vec::new();
        for k in start..start + batch {
            let e = (k / per) as u64;
            if e != epoch {
                epoch = e;
                cur = self.indices(e);
            }
            out.push(cur[k % per]);
        }
        out
    }
}
