//! Text corpora: the King James Bible (Debian `bible-kjv`, printed by `bible -f
//! gen1:1-rev22:21`) and fortunes (Debian `fortunes`), cleaned into documents and split
//! deterministically into train / validation / test.
//!
//! * KJV: one document per chapter (31,102 verses, 1,189 chapters); the verse references
//!   (`Ge1:1`) are removed, verses are joined by newlines.
//! * fortunes: the `%`-separated entries of the files in the recipe, whitespace-trimmed, tabs
//!   to spaces, empty entries dropped.
//! * Split: document `i` goes to validation when `i % 10 == 9`, to test when `i % 10 == 4`,
//!   otherwise to training (80 / 10 / 10, contiguous chapters stay whole).
//!
//! `cargo xtask datasets fetch text` fills `<cache>/datasets/text/`; without it the embedded
//! sample (`datasets/text/sample/`: Genesis 1-10 and 40 fortunes) is used.

use std::path::{Path, PathBuf};

use crate::error::{TextError, TextResult};

/// The embedded sample: (name, bytes).
pub const SAMPLE: [(&str, &[u8]); 2] = [
    ("kjv.txt", include_bytes!("../../../datasets/text/sample/kjv.txt")),
    ("fortunes", include_bytes!("../../../datasets/text/sample/fortunes")),
];

/// Fortune files of the recipe (Debian `fortunes` 1:1.99.1-7.3).
pub const FORTUNE_FILES: [&str; 4] = ["fortunes", "literature", "riddles", "wisdom"];

/// One document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// `Ge1` (book and chapter) or `fortunes#12`.
    pub id: String,
    /// Cleaned text.
    pub text: String,
}

/// Which corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorpusKind {
    /// The King James Bible.
    Kjv,
    /// Fortune cookies.
    Fortunes,
}

/// A split corpus.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// `kjv` or `fortunes`.
    pub name: String,
    /// Where it came from.
    pub source: String,
    /// Training documents.
    pub train: Vec<Document>,
    /// Validation documents.
    pub valid: Vec<Document>,
    /// Test documents.
    pub test: Vec<Document>,
}

/// Reads `path` as UTF-8: [`TextError::InvalidUtf8`] (with the offset) or
/// [`TextError::Io`] name the file.
pub fn read_utf8(path: &Path) -> TextResult<String> {
    let bytes =
        std::fs::read(path).map_err(|source| TextError::Io { path: path.into(), source })?;
    utf8(bytes, path)
}

fn utf8(bytes: Vec<u8>, path: &Path) -> TextResult<String> {
    String::from_utf8(bytes).map_err(|e| TextError::InvalidUtf8 {
        path: path.into(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// KJV chapters from `bible -f` output (`Ge1:1 In the beginning …` per line).
pub fn kjv_documents(text: &str) -> Vec<Document> {
    let mut docs: Vec<Document> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some((reference, verse)) = line.split_once(' ') else { continue };
        let Some((chapter, _)) = reference.split_once(':') else { continue };
        let verse = verse.split_whitespace().collect::<Vec<_>>().join(" ");
        match docs.last_mut() {
            Some(d) if d.id == chapter => {
                d.text.push('\n');
                d.text.push_str(&verse);
            }
            _ => docs.push(Document { id: chapter.to_string(), text: verse }),
        }
    }
    docs
}

/// Removes terminal overstriking: a backspace deletes the character before it (`_\u{8}a` is an
/// underlined `a` on a teletype).
fn strip_overstrike(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out
}

/// Fortunes from a `%`-separated file (overstriking removed, tabs to spaces).
pub fn fortune_documents(name: &str, text: &str) -> Vec<Document> {
    text.split("\n%\n")
        .map(|e| {
            strip_overstrike(e.trim_matches(|c: char| c == '%' || c.is_whitespace()))
                .replace('\t', " ")
        })
        .filter(|e| !e.is_empty())
        .enumerate()
        .map(|(i, text)| Document { id: format!("{name}#{i}"), text })
        .collect()
}

/// The deterministic 80/10/10 split of the module docs.
pub fn split(docs: Vec<Document>) -> (Vec<Document>, Vec<Document>, Vec<Document>) {
    let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for (i, d) in docs.into_iter().enumerate() {
        match i % 10 {
            9 => valid.push(d),
            4 => test.push(d),
            _ => train.push(d),
        }
    }
    (train, valid, test)
}

/// `<cache>/datasets/text`, the folder `cargo xtask datasets fetch text` fills.
pub fn default_cache_dir() -> Option<PathBuf> {
    unet_core::checkpoint::dataset_dir("text")
}

impl Corpus {
    /// Builds a corpus from documents; [`TextError::EmptyCorpus`] when a split is empty.
    pub fn from_documents(name: &str, source: &str, docs: Vec<Document>) -> TextResult<Self> {
        let empty = |reason: String| TextError::EmptyCorpus { path: source.into(), reason };
        if docs.is_empty() {
            return Err(empty(format!("no {name} documents")));
        }
        let n = docs.len();
        let (train, valid, test) = split(docs);
        if train.is_empty() || valid.is_empty() || test.is_empty() {
            return Err(empty(format!(
                "{n} {name} documents are too few for train/validation/test (need at least 10)"
            )));
        }
        Ok(Self { name: name.into(), source: source.into(), train, valid, test })
    }

    /// Loads `kind` from `dir` (the fetched cache) when it holds the files, else from the
    /// embedded sample.
    pub fn load(dir: Option<&Path>, kind: CorpusKind) -> TextResult<Self> {
        let files: Vec<&str> = match kind {
            CorpusKind::Kjv => vec!["kjv.txt"],
            CorpusKind::Fortunes => FORTUNE_FILES.to_vec(),
        };
        let from_cache = dir.filter(|d| files.iter().all(|f| d.join(f).exists()));
        let mut docs = Vec::new();
        let source = match from_cache {
            Some(d) => {
                for f in &files {
                    let text = read_utf8(&d.join(f))?;
                    docs.extend(match kind {
                        CorpusKind::Kjv => kjv_documents(&text),
                        CorpusKind::Fortunes => fortune_documents(f, &text),
                    });
                }
                d.display().to_string()
            }
            None => {
                let (name, bytes) = match kind {
                    CorpusKind::Kjv => SAMPLE[0],
                    CorpusKind::Fortunes => SAMPLE[1],
                };
                let path = PathBuf::from(format!("datasets/text/sample/{name} (embedded)"));
                let text = utf8(bytes.to_vec(), &path)?;
                docs = match kind {
                    CorpusKind::Kjv => kjv_documents(&text),
                    CorpusKind::Fortunes => fortune_documents(name, &text),
                };
                "embedded sample (datasets/text/sample)".to_string()
            }
        };
        let name = match kind {
            CorpusKind::Kjv => "kjv",
            CorpusKind::Fortunes => "fortunes",
        };
        Self::from_documents(name, &source, docs)
    }

    /// The documents of a split joined by blank lines.
    pub fn joined(docs: &[Document]) -> String {
        docs.iter().map(|d| d.text.as_str()).collect::<Vec<_>>().join("\n\n")
    }
}
