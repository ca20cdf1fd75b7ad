//! Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 grey 28×28 clothing items, 10 classes.
//!
//! Full data: Debian's `dataset-fashion-mnist`, copied into the cache by
//! `cargo xtask datasets fetch fashion-mnist`. Embedded sample: the first 1,000 training and
//! 200 test items, compiled into this crate (`datasets/fashion-mnist/sample/`).

use std::path::Path;

use ndarray::{Array1, Array3, Ix1, Ix3};

use super::idx;
use crate::{ImageError, Result};

/// Class names, index = label.
pub const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

const SAMPLE_TRAIN_IMAGES: &[u8] =
    include_bytes!("../../../../datasets/fashion-mnist/sample/train-images-idx3-ubyte.gz");
const SAMPLE_TRAIN_LABELS: &[u8] =
    include_bytes!("../../../../datasets/fashion-mnist/sample/train-labels-idx1-ubyte.gz");
const SAMPLE_TEST_IMAGES: &[u8] =
    include_bytes!("../../../../datasets/fashion-mnist/sample/t10k-images-idx3-ubyte.gz");
const SAMPLE_TEST_LABELS: &[u8] =
    include_bytes!("../../../../datasets/fashion-mnist/sample/t10k-labels-idx1-ubyte.gz");

/// Training or test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 60,000 items (1,000 in the sample).
    Train,
    /// 10,000 items (200 in the sample).
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// One split: `images` `[n, 28, 28]` u8, `labels` `[n]` u8.
#[derive(Debug, Clone)]
pub struct FashionMnist {
    /// Grey images, 0 = background.
    pub images: Array3<u8>,
    /// Class labels 0..10.
    pub labels: Array1<u8>,
    /// Where the data came from (for reports).
    pub source: String,
}

fn assemble(
    images: ndarray::ArrayD<u8>,
    labels: ndarray::ArrayD<u8>,
    source: String,
) -> Result<FashionMnist> {
    let images = images
        .into_dimensionality::<Ix3>()
        .map_err(|_| ImageError::format(&source, "image file is not 3-dimensional"))?;
    let labels = labels
        .into_dimensionality::<Ix1>()
        .map_err(|_| ImageError::format(&source, "label file is not 1-dimensional"))?;
    if images.shape()[0] != labels.len() {
        return Err(ImageError::format(
            &source,
            format!("{} images but {} labels", images.shape()[0], labels.len()),
        ));
    }
    if let Some(&l) = labels.iter().find(|&&l| l >= 10) {
        return Err(ImageError::format(&source, format!("label {l} outside 0..10")));
    }
    Ok(FashionMnist { images, labels, source })
}

impl FashionMnist {
    /// Reads a split from a directory holding the four `*-ubyte.gz` files.
    pub fn from_dir(dir: impl AsRef<Path>, split: Split) -> Result<Self> {
        let dir = dir.as_ref();
        let p = split.prefix();
        let images = idx::read(dir.join(format!("{p}-images-idx3-ubyte.gz")))?;
        let labels = idx::read(dir.join(format!("{p}-labels-idx1-ubyte.gz")))?;
        assemble(images, labels, dir.display().to_string())
    }

    /// The embedded sample of a split.
    pub fn sample(split: Split) -> Result<Self> {
        let (i, l) = match split {
            Split::Train => (SAMPLE_TRAIN_IMAGES, SAMPLE_TRAIN_LABELS),
            Split::Test => (SAMPLE_TEST_IMAGES, SAMPLE_TEST_LABELS),
        };
        let images = idx::decode(i, &idx::embedded("fashion-mnist images"))?;
        let labels = idx::decode(l, &idx::embedded("fashion-mnist labels"))?;
        assemble(images, labels, "embedded sample (datasets/fashion-mnist/sample)".into())
    }

    /// The cached full data set if `cache` holds it, else the embedded sample.
    pub fn load(cache: Option<&Path>, split: Split) -> Result<Self> {
        if let Some(dir) = cache {
            let p = split.prefix();
            if dir.join(format!("{p}-images-idx3-ubyte.gz")).exists() {
                return Self::from_dir(dir, split);
            }
        }
        Self::sample(split)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}
