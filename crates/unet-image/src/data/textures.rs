//! Grey texture photographs (scikit-image's CC0 `brick`, `grass`, `gravel`) used as cluttered
//! backgrounds. Full data: `cargo xtask datasets fetch textures` (512×512 originals);
//! embedded sample: the central 256×256 crop of each.

use std::path::Path;

use ndarray::Array2;

use crate::io::{decode_gray, read_gray};
use crate::Result;

/// Texture names, in a fixed order.
pub const NAMES: [&str; 3] = ["brick", "grass", "gravel"];

const SAMPLE: [&[u8]; 3] = [
    include_bytes!("../../../../datasets/textures/sample/brick.png"),
    include_bytes!("../../../../datasets/textures/sample/grass.png"),
    include_bytes!("../../../../datasets/textures/sample/gravel.png"),
];

/// Loaded textures, grey `u8`, plus where they came from.
#[derive(Debug, Clone)]
pub struct Textures {
    /// One image per name of [`NAMES`].
    pub images: Vec<Array2<u8>>,
    /// Source description for reports.
    pub source: String,
}

impl Textures {
    /// The cached originals when `cache` holds them, else the embedded crops.
    pub fn load(cache: Option<&Path>) -> Result<Self> {
        if let Some(dir) = cache {
            if NAMES.iter().all(|n| dir.join(format!("{n}.png")).exists()) {
                let images = NAMES
                    .iter()
                    .map(|n| read_gray(dir.join(format!("{n}.png"))))
                    .collect::<Result<Vec<_>>>()?;
                return Ok(Self { images, source: dir.display().to_string() });
            }
        }
        let images = NAMES
            .iter()
            .zip(SAMPLE)
            .map(|(n, b)| decode_gray(b, Path::new(&format!("<embedded>/textures/{n}.png"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { images, source: "embedded sample (datasets/textures/sample)".into() })
    }
}
