//! Parity of the MiniLM text encoder with independent Python references on the real
//! all-MiniLM-L6-v2 weights: token ids equal those of the Python `tokenizers` package exactly,
//! sentence embeddings and token states equal sentence-transformers' to 1e-4 (fixture made by
//! `tests/fixtures/make_minilm.py`).
//!
//! Needs the model in the unet-rs cache: `cargo xtask datasets fetch minilm` (CI does it).
//! Run with `cargo test -p unet-text --test minilm`.

use std::path::Path;

use tch::{Device, Kind, Tensor};
use unet_text::{minilm, TextEncoder};

struct Reference {
    max_len: usize,
    sentences: Vec<String>,
    ids: Vec<Vec<i64>>,
    embeddings: Tensor,
    states0: Tensor,
}

fn matrix(v: &serde_json::Value) -> Tensor {
    let rows: Vec<Vec<f32>> = serde_json::from_value(v.clone()).expect("fixture matrix");
    let (r, c) = (rows.len() as i64, rows[0].len() as i64);
    Tensor::from_slice(&rows.concat()).view([r, c])
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json");
    let text = std::fs::read_to_string(&path).expect("checked-in fixture");
    let v: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
    Reference {
        max_len: v["max_len"].as_u64().expect("max_len") as usize,
        sentences: serde_json::from_value(v["sentences"].clone()).expect("sentences"),
        ids: serde_json::from_value(v["ids"].clone()).expect("ids"),
        embeddings: matrix(&v["embeddings"]),
        states0: matrix(&v["states0"]),
    }
}

/// The cached model; a missing cache is a failure that says how to fill it.
fn encoder() -> TextEncoder {
    let dir = minilm::default_dir().expect("cache dir");
    TextEncoder::load(&dir, Device::Cpu).unwrap_or_else(|e| {
        panic!("cannot load MiniLM from {}: {e}", dir.display());
    })
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn token_ids_match_python_tokenizers_exactly() {
    let r = reference();
    let enc = encoder();
    let tok = enc.tokenizer();
    assert_eq!(tok.vocab_size(), 30522);
    assert_eq!(enc.max_len(), r.max_len);
    for (s, want) in r.sentences.iter().zip(&r.ids) {
        assert_eq!(&tok.encode(s, r.max_len).unwrap(), want, "ids of {s:?}");
    }

    // Batched: padded to the longest (the truncated long sentence), mask = lengths.
    let texts: Vec<&str> = r.sentences.iter().map(String::as_str).collect();
    let (ids, mask) = tok.encode_batch(&texts, r.max_len).unwrap();
    assert_eq!(ids.size(), [4, r.max_len as i64]);
    assert_eq!((ids.kind(), mask.kind()), (Kind::Int64, Kind::Int64));
    for (b, want) in r.ids.iter().enumerate() {
        let n = want.len() as i64;
        let row = Vec::<i64>::try_from(ids.get(b as i64)).unwrap();
        assert_eq!(&row[..want.len()], want.as_slice());
        assert!(row[want.len()..].iter().all(|&x| x == tok.pad_id()));
        assert_eq!(mask.get(b as i64).sum(Kind::Int64).int64_value(&[]), n);
    }

    // Truncation to a shorter max_len keeps [CLS] ... [SEP].
    let short = tok.encode(&r.sentences[2], 16).unwrap();
    assert_eq!(short.len(), 16);
    assert_eq!((short[0], short[15]), (101, 102));
    assert_eq!(&short[1..15], &r.ids[2][1..15]);
}

#[test]
fn embeddings_match_sentence_transformers() {
    tch::set_num_threads(2);
    let r = reference();
    let enc = encoder();
    let texts: Vec<&str> = r.sentences.iter().map(String::as_str).collect();

    let c = enc.encode(&texts).unwrap();
    assert_eq!(c.states.size(), [4, r.max_len as i64, 384]);
    assert_eq!(c.pooled.size(), [4, 384]);
    let d_emb = max_abs_diff(&c.pooled, &r.embeddings);
    let cos = (&c.pooled * &r.embeddings).sum_dim_intlist(1, false, Kind::Float);
    let min_cos = cos.min().double_value(&[]);
    eprintln!("pooled embeddings: max |rust - sentence-transformers| = {d_emb:.3e}, min cos = {min_cos:.8}");
    assert!(d_emb < 1e-4, "embeddings differ by {d_emb}");

    // Token states of sentence 0 alone (no padding) against BertModel.last_hidden_state.
    let ids0 = Tensor::from_slice(&r.ids[0]).unsqueeze(0);
    let states0 = enc.model().forward(&ids0, &ids0.ones_like()).unwrap().squeeze_dim(0);
    let d_states = max_abs_diff(&states0, &r.states0);
    eprintln!("token states (sentence 0): max |rust - transformers| = {d_states:.3e}");
    assert!(d_states < 1e-4, "token states differ by {d_states}");

    // Padding does not leak: sentence 0 alone equals its row of the padded batch.
    let alone = enc.embed(&texts[..1]).unwrap();
    let d_pad = max_abs_diff(&alone, &c.pooled.narrow(0, 0, 1));
    eprintln!("padding invariance: max diff = {d_pad:.3e}");
    assert!(d_pad < 1e-5, "padding changes the embedding by {d_pad}");

    // Fixed-length context for cross-attention: L = max_len, same pooled output.
    let fixed = enc.encode_fixed(&texts[..2]).unwrap();
    assert_eq!(fixed.states.size(), [2, r.max_len as i64, 384]);
    assert_eq!(
        fixed.mask.sum(Kind::Int64).int64_value(&[]),
        (r.ids[0].len() + r.ids[1].len()) as i64
    );
    assert!(max_abs_diff(&fixed.pooled, &c.pooled.narrow(0, 0, 2)) < 1e-5);
}

#[test]
fn weights_load_strictly_and_frozen() {
    let enc = encoder();
    let vars = enc.var_store().variables();
    // 104 keys in the file minus the constant `embeddings.position_ids` buffer.
    assert_eq!(vars.len(), 103);
    assert!(vars.contains_key("encoder.layer.5.attention.self.query.weight"));
    assert!(vars.contains_key("pooler.dense.weight"));
    assert!(vars.values().all(|t| !t.requires_grad()), "encoder must be frozen");
    let n: i64 = vars.values().map(|t| t.numel() as i64).sum();
    assert_eq!(n, 22_713_216);
    assert_eq!(enc.hidden_size(), 384);
}
