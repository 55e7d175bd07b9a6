//! Text corpora: a file or a folder of files, tokenized once (byte-level, a BPE trained on the corpus,
//! or a given tokenizer.json) into a cached, memory-mapped shard of u32 token ids.

use crate::error::{LabError, LabResult};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, Tokenizer,
    TokenizerBuilder,
};

/// Settings of a text corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    /// A text file, or a folder whose files (recursively, sorted by path) are concatenated.
    pub path: PathBuf,
    /// `bytes` (vocab 256), `bpe` (trained on the corpus with `bpe_vocab` ids) or a tokenizer.json path.
    #[serde(default = "d_tokenizer")]
    pub tokenizer: String,
    /// Vocabulary of a BPE trained on the corpus.
    #[serde(default = "d_bpe_vocab")]
    pub bpe_vocab: usize,
    /// Fraction of tokens (at the end of the corpus) held out for validation.
    #[serde(default = "d_val_fraction")]
    pub val_fraction: f64,
    /// Where token shards are cached (default: $LAB_CACHE, else ~/.cache/lab/tokens).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

fn d_tokenizer() -> String {
    "bytes".into()
}
fn d_bpe_vocab() -> usize {
    4096
}
fn d_val_fraction() -> f64 {
    0.05
}

impl TextConfig {
    /// Upper bound of the token ids, when known without loading the tokenizer.
    pub fn vocab(&self) -> Option<usize> {
        match self.tokenizer.as_str() {
            "bytes" => Some(256),
            "bpe" => Some(self.bpe_vocab),
            _ => None,
        }
    }

    /// Checks the settings (not the files); the error names the key under `data.text`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(self.val_fraction > 0.0 && self.val_fraction < 0.5) {
            return Err((
                "val_fraction",
                format!("must be in (0, 0.5), got {}", self.val_fraction),
            ));
        }
        if self.tokenizer == "bpe" && self.bpe_vocab < 257 {
            return Err((
                "bpe_vocab",
                format!("must exceed the 256 byte tokens, got {}", self.bpe_vocab),
            ));
        }
        Ok(())
    }
}

/// Every regular file under `path` (or `path` itself), sorted.
fn corpus_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let p = entry?.path();
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Cache folder for token shards.
fn cache_dir(cfg: &TextConfig) -> PathBuf {
    cfg.cache_dir
        .clone()
        .or_else(|| std::env::var_os("LAB_CACHE").map(PathBuf::from))
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".cache/lab/tokens")
        })
}

/// A tokenized corpus, memory-mapped, with its train/validation split.
pub struct TokenShard {
    map: Mmap,
    /// Tokens before `split` train; the rest validate.
    pub split: usize,
    /// Largest token id + 1.
    pub vocab: usize,
    /// The shard file.
    pub path: PathBuf,
}

impl TokenShard {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.map.len() / 4
    }

    /// Whether the shard is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Token at position i.
    pub fn get(&self, i: usize) -> u32 {
        u32::from_le_bytes(self.map[4 * i..4 * i + 4].try_into().expect("4 bytes"))
    }

    /// Opens (tokenizing and caching on first use) the corpus of `cfg`; windows need `seq_len + 1`
    /// tokens in both splits.
    pub fn open(cfg: &TextConfig, seq_len: usize, config_file: &Path) -> LabResult<TokenShard> {
        let bad = |m: String| LabError::input(config_file, None, m);
        if !cfg.path.exists() {
            return Err(bad(format!(
                "data.text.path: corpus {} does not exist",
                cfg.path.display()
            )));
        }
        let files = corpus_files(&cfg.path).map_err(|e| bad(format!("data.text.path: {e}")))?;
        let mut hasher = Sha256::new();
        hasher.update(cfg.tokenizer.as_bytes());
        hasher.update(cfg.bpe_vocab.to_le_bytes());
        let mut total = 0u64;
        for f in &files {
            let meta = fs::metadata(f)?;
            total += meta.len();
            hasher.update(f.to_string_lossy().as_bytes());
            hasher.update(meta.len().to_le_bytes());
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            hasher.update(mtime.map(|d| d.as_nanos()).unwrap_or(0).to_le_bytes());
        }
        if total == 0 {
            return Err(bad(format!(
                "data.text.path: corpus {} is empty",
                cfg.path.display()
            )));
        }
        let key: String = hasher
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = cache_dir(cfg);
        fs::create_dir_all(&dir)?;
        let shard_path = dir.join(format!("{key}.u32"));
        if !shard_path.exists() {
            let tokens = tokenize(
                cfg,
                &files,
                &dir.join(format!("{key}.tokenizer.json")),
                config_file,
            )?;
            let tmp = shard_path.with_extension(format!("tmp{}", std::process::id()));
            let mut w = std::io::BufWriter::new(fs::File::create(&tmp)?);
            for t in &tokens {
                w.write_all(&t.to_le_bytes())?;
            }
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            fs::rename(&tmp, &shard_path)?;
        }
        let file = fs::File::open(&shard_path)?;
        // SAFETY: the shard is written once, atomically, and never modified afterwards.
        let map = unsafe { Mmap::map(&file)? };
        let n = map.len() / 4;
        let split = ((n as f64) * (1.0 - cfg.val_fraction)) as usize;
        if split < seq_len + 1 || n - split < seq_len + 1 {
            return Err(bad(format!(
                "data.text.path: corpus has {n} tokens; with val_fraction {} each split needs at least seq_len + 1 = {}",
                cfg.val_fraction,
                seq_len + 1
            )));
        }
        let mut shard = TokenShard {
            map,
            split,
            vocab: 0,
            path: shard_path,
        };
        shard.vocab = (0..n).map(|i| shard.get(i)).max().unwrap_or(0) as usize + 1;
        if cfg.tokenizer == "bytes" {
            shard.vocab = 256;
        }
        Ok(shard)
    }
}

/// Tokenizes the corpus files with the configured tokenizer.
fn tokenize(
    cfg: &TextConfig,
    files: &[PathBuf],
    bpe_path: &Path,
    config_file: &Path,
) -> LabResult<Vec<u32>> {
    if cfg.tokenizer == "bytes" {
        let mut out = Vec::new();
        for f in files {
            out.extend(fs::read(f)?.into_iter().map(u32::from));
        }
        return Ok(out);
    }
    let tokenizer = if cfg.tokenizer == "bpe" {
        train_bpe(files, cfg.bpe_vocab, bpe_path)?
    } else {
        Tokenizer::from_file(&cfg.tokenizer).map_err(|e| {
            LabError::input(
                config_file,
                None,
                format!("data.text.tokenizer: {}: {e}", cfg.tokenizer),
            )
        })?
    };
    let mut out = Vec::new();
    for f in files {
        let text = String::from_utf8_lossy(&fs::read(f)?).into_owned();
        let chunks: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
        for enc in tokenizer
            .encode_batch(chunks, false)
            .map_err(|e| anyhow::anyhow!("tokenizing {}: {e}", f.display()))?
        {
            out.extend_from_slice(enc.get_ids());
        }
    }
    Ok(out)
}

/// Trains a byte-level BPE on the corpus and saves it next to the shard.
fn train_bpe(files: &[PathBuf], vocab: usize, save_to: &Path) -> LabResult<Tokenizer> {
    let mut trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(vocab)
        .min_frequency(2)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tokenizer = TokenizerBuilder::<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >::new()
    .with_model(BPE::default())
    .with_pre_tokenizer(Some(ByteLevel::default().into()))
    .with_decoder(Some(ByteLevel::default().into()))
    .build()
    .map_err(|e| anyhow::anyhow!("building BPE tokenizer: {e}"))?;
    let names: Vec<String> = files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    tokenizer
        .train_from_files(&mut trainer, names)
        .map_err(|e| anyhow::anyhow!("training BPE: {e}"))?;
    let tokenizer: Tokenizer = tokenizer.into();
    tokenizer
        .save(save_to, false)
        .map_err(|e| anyhow::anyhow!("saving tokenizer: {e}"))?;
    Ok(tokenizer)
}
