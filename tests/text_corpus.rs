//! Text corpora: byte-level and BPE tokenization into a cached shard, and clear errors for a missing
//! or empty corpus.

mod common;

use common::{lab, status, text, write};

fn text_run(corpus: &str, tokenizer: &str, vocab: usize, cache: &str) -> String {
    format!(
        "name: t\nmodel:\n  n_layer: 1\n  d_model: 32\n  n_head: 2\n  vocab: {vocab}\n  seq_len: 16\n\
         data:\n  source: text\n  text:\n    path: {corpus}\n    tokenizer: {tokenizer}\n    bpe_vocab: 300\n    \
         val_fraction: 0.1\n    cache_dir: {cache}\ntrain:\n  tokens: 4096\n  batch_size: 4\n  eval_batches: 2\n"
    )
}

fn corpus(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("corpus/sub")).unwrap();
    let line =
        "the quick brown fox jumps over the lazy dog while scaling laws relate loss to compute\n";
    std::fs::write(dir.join("corpus/a.txt"), line.repeat(150)).unwrap();
    std::fs::write(
        dir.join("corpus/sub/b.txt"),
        line.to_uppercase().repeat(100),
    )
    .unwrap();
}

#[test]
fn byte_level_and_bpe_corpora_train_and_cache_their_shards() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    for (tok, vocab) in [("bytes", 256), ("bpe", 300)] {
        let cfg = write(
            dir.path(),
            &format!("{tok}.yaml"),
            &text_run("corpus", tok, vocab, "cache"),
        );
        let out = lab(dir.path(), &["train", cfg.to_str().unwrap(), "--out", tok]);
        assert!(out.status.success(), "{tok}: {}", text(&out));
        assert_eq!(status(&dir.path().join(tok))["status"], "done");
    }
    let shards: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        shards
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "u32"))
            .count(),
        2,
        "{shards:?}"
    );
    assert!(
        shards
            .iter()
            .any(|p| p.to_string_lossy().ends_with("tokenizer.json")),
        "{shards:?}"
    );
    // BPE compresses: its shard is well below the byte-level one (44 merges: about 1.6x here).
    let mut sizes: Vec<u64> = shards
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "u32"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    sizes.sort();
    assert!(sizes[0] * 10 < sizes[1] * 7, "{sizes:?}");
    // The run records the corpus's distinct training tokens (the byte shard's training split) for
    // the data-constrained law: 4,096 tokens drawn from it.
    let n = sizes[1] / 4;
    let unique = status(&dir.path().join("bytes"))["unique_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(
        unique,
        ((n as f64) * (1.0 - 0.1)) as u64,
        "{n} tokens in the shard"
    );
    // A second run reuses the cached shard (no new file).
    let cfg = write(
        dir.path(),
        "again.yaml",
        &text_run("corpus", "bytes", 256, "cache"),
    );
    let out = lab(
        dir.path(),
        &[
            "train",
            cfg.to_str().unwrap(),
            "--out",
            "again",
            "--set",
            "train.seed=1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_dir(dir.path().join("cache")).unwrap().count(),
        shards.len()
    );
}

#[test]
fn empty_corpus_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    std::fs::write(dir.path().join("empty/a.txt"), "").unwrap();
    let cfg = write(
        dir.path(),
        "e.yaml",
        &text_run("empty", "bytes", 256, "cache"),
    );
    let out = lab(
        dir.path(),
        &["train", cfg.to_str().unwrap(), "--out", "never"],
    );
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("data.text.path") && msg.contains("empty"),
        "{msg}"
    );
    assert!(!dir.path().join("never").exists());
}
