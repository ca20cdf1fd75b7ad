//! Token files: a tokenised split stored once and memory-mapped, so training reads windows
//! without loading the corpus into memory.
//!
//! Format (little-endian): the 8-byte magic `UNETTOK1`, the vocabulary size (u32), a reserved
//! u32 (0), the token count (u64), then one u32 per token. [`TokenFile::open`] checks the
//! magic, the size against the count and every id against the vocabulary, and names the file
//! in its errors.

use std::path::{Path, PathBuf};

use memmap2::Mmap;
use tch::Tensor;

use crate::error::{TextError, TextResult};

const MAGIC: &[u8; 8] = b"UNETTOK1";
const HEADER: usize = 24;

/// Writes `tokens` (ids below `vocab`) to `path` atomically.
pub fn write_tokens(path: &Path, vocab: u32, tokens: &[u32]) -> TextResult<()> {
    if let Some(&bad) = tokens.iter().find(|&&t| t >= vocab) {
        return Err(TextError::InvalidInput(format!(
            "{}: token id {bad} is outside the vocabulary of {vocab}",
            path.display()
        )));
    }
    let mut bytes = Vec::with_capacity(HEADER + 4 * tokens.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&vocab.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&(tokens.len() as u64).to_le_bytes());
    for t in tokens {
        bytes.extend_from_slice(&t.to_le_bytes());
    }
    unet_core::checkpoint::write_atomic(path, &bytes)?;
    Ok(())
}

/// A memory-mapped token file.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    map: Mmap,
    vocab: u32,
    len: usize,
}

impl TokenFile {
    /// Maps and validates `path`.
    pub fn open(path: impl AsRef<Path>) -> TextResult<Self> {
        let path = path.as_ref();
        let corrupt = |reason: String| TextError::CorruptTokenFile { path: path.into(), reason };
        let file = std::fs::File::open(path)
            .map_err(|source| TextError::Io { path: path.into(), source })?;
        // SAFETY: the file is opened read-only and only read through the map; a file truncated
        // by another process while mapped is outside what this type guards against.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|source| TextError::Io { path: path.into(), source })?;
        if map.len() < HEADER || &map[..8] != MAGIC {
            return Err(corrupt("not a unet-rs token file (magic UNETTOK1 missing)".into()));
        }
        let vocab = u32::from_le_bytes([map[8], map[9], map[10], map[11]]);
        let mut n = [0u8; 8];
        n.copy_from_slice(&map[16..24]);
        let len = u64::from_le_bytes(n) as usize;
        let expected = len.checked_mul(4).and_then(|b| b.checked_add(HEADER));
        if expected != Some(map.len()) {
            return Err(corrupt(format!(
                "header says {len} tokens ({:?} bytes) but the file has {} bytes",
                expected,
                map.len()
            )));
        }
        if vocab == 0 {
            return Err(corrupt("vocabulary size 0".into()));
        }
        let tf = Self { path: path.into(), map, vocab, len };
        if let Some(i) = (0..len).find(|&i| tf.get(i) >= vocab) {
            return Err(corrupt(format!("token {i} is {} ≥ vocabulary {vocab}", tf.get(i))));
        }
        Ok(tf)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> u32 {
        self.vocab
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Token `i` (`i < len`).
    pub fn get(&self, i: usize) -> u32 {
        let o = HEADER + 4 * i;
        u32::from_le_bytes([self.map[o], self.map[o + 1], self.map[o + 2], self.map[o + 3]])
    }

    /// Windows of `len` tokens starting at `starts` as an int64 tensor `[starts.len(), len]`.
    pub fn windows(&self, starts: &[usize], len: usize) -> TextResult<Tensor> {
        let mut out = Vec::with_capacity(starts.len() * len);
        for &s in starts {
            if s + len > self.len {
                return Err(TextError::InvalidInput(format!(
                    "{}: window {s}..{} past the end ({} tokens)",
                    self.path.display(),
                    s + len,
                    self.len
                )));
            }
            out.extend((s..s + len).map(|i| self.get(i) as i64));
        }
        Ok(Tensor::from_slice(&out).view([starts.len() as i64, len as i64]))
    }
}
