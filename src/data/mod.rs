//! Training data: the built-in synthetic corpus or a tokenized text corpus, served as deterministic
//! batches (batch k depends only on the seed and k, so a resumed run sees exactly the same data).

pub mod synthetic;
pub mod text;

use crate::error::LabResult;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
pub use synthetic::{SkillLadder, SyntheticConfig, SyntheticSource};
pub use text::{TextConfig, TokenShard};

/// Which corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The built-in synthetic corpus (known entropy rate and window floor).
    #[default]
    Synthetic,
    /// A text corpus.
    Text,
}

/// The `data` section of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Which corpus.
    #[serde(default)]
    pub source: SourceKind,
    /// Seed of the synthetic language (its lexicon and grammar); the sampling order comes from train.seed.
    #[serde(default)]
    pub seed: u64,
    /// Synthetic corpus parameters.
    #[serde(default)]
    pub synthetic: SyntheticConfig,
    /// Text corpus settings (required when source is text).
    #[serde(default)]
    pub text: Option<TextConfig>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: SourceKind::Synthetic,
            seed: 0,
            synthetic: SyntheticConfig::default(),
            text: None,
        }
    }
}

impl DataConfig {
    /// Largest token id + 1, when known without opening the corpus.
    pub fn vocab(&self) -> Option<usize> {
        match self.source {
            SourceKind::Synthetic => Some(self.synthetic.vocab),
            SourceKind::Text => self.text.as_ref().and_then(TextConfig::vocab),
        }
    }

    /// Checks the settings; the error names the key under `data`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self.source {
            SourceKind::Synthetic => self
                .synthetic
                .validate()
                .map_err(|(k, m)| (format!("synthetic.{k}"), m)),
            SourceKind::Text => match &self.text {
                None => Err((
                    "text".into(),
                    "source is text but no data.text section (path, tokenizer) is given".into(),
                )),
                Some(t) => t.validate().map_err(|(k, m)| (format!("text.{k}"), m)),
            },
        }
    }
}

/// An opened corpus.
pub enum Corpus {
    /// Synthetic stream.
    Synthetic(Box<SyntheticSource>),
    /// Tokenized text.
    Text(TokenShard),
}

/// Stream ids that keep training and validation draws apart.
const VAL_STREAM: u64 = 1 << 62;

impl Corpus {
    /// Opens the corpus of a data config (`config_file` names the file in errors).
    pub fn open(cfg: &DataConfig, seq_len: usize, config_file: &Path) -> LabResult<Corpus> {
        Ok(match cfg.source {
            SourceKind::Synthetic => {
                Corpus::Synthetic(Box::new(SyntheticSource::new(&cfg.synthetic, cfg.seed)))
            }
            SourceKind::Text => {
                let t = cfg.text.as_ref().expect("validated: text section present");
                Corpus::Text(TokenShard::open(t, seq_len, config_file)?)
            }
        })
    }

    /// Distinct training tokens: a text corpus's training split (windows are drawn from it with
    /// replacement, so a run of D tokens sees it D / split times); `None` for the synthetic
    /// stream, which never repeats.
    pub fn unique_train_tokens(&self) -> Option<u64> {
        match self {
            Corpus::Synthetic(_) => None,
            Corpus::Text(t) => Some(t.split as u64),
        }
    }

    /// Largest token id + 1.
    pub fn vocab(&self) -> usize {
        match self {
            Corpus::Synthetic(s) => s.vocab(),
            Corpus::Text(t) => t.vocab,
        }
    }

    /// The loss of the exact predictor of the corpus's generating process on `windows` (each
    /// `seq + 1` tokens with its prefix length: targets t = 1..=seq count when t >= prefix), in nats
    /// per loss-bearing token. On the synthetic corpus this is the floor of a model that sees only
    /// its window, which lies above the entropy rate (unlimited context); `None` for text, whose
    /// process is unknown.
    pub fn ideal_loss<'a>(
        &self,
        windows: impl IntoIterator<Item = (&'a [i64], usize)>,
    ) -> Option<f64> {
        let Corpus::Synthetic(s) = self else {
            return None;
        };
        let predictor = s.window_predictor();
        let (mut nats, mut count) = (0.0, 0usize);
        for (w, prefix) in windows {
            let tokens: Vec<u32> = w.iter().map(|&t| t as u32).collect();
            for (i, l) in predictor.losses(&tokens).into_iter().enumerate() {
                if i + 1 >= prefix {
                    nats += l;
                    count += 1;
                }
            }
        }
        (count > 0).then(|| nats / count as f64)
    }

    /// `rows` windows of `seq + 1` tokens: the training batch of step `step`.
    pub fn train_rows(&self, seed: u64, step: u64, rows: usize, seq: usize) -> Vec<i64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(step & (VAL_STREAM - 1));
        self.rows(&mut rng, rows, seq, None)
    }

    /// `rows` validation windows for validation batch `index` (the same for every evaluation).
    pub fn val_rows(&self, seed: u64, index: usize, rows: usize, seq: usize) -> Vec<i64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(VAL_STREAM + index as u64);
        self.rows(&mut rng, rows, seq, Some(index))
    }

    fn rows(
        &self,
        rng: &mut ChaCha8Rng,
        rows: usize,
        seq: usize,
        val_index: Option<usize>,
    ) -> Vec<i64> {
        let mut out = Vec::with_capacity(rows * (seq + 1));
        match self {
            Corpus::Synthetic(s) => {
                let mut buf = Vec::with_capacity(seq + 1);
                for _ in 0..rows {
                    s.fill(rng, &mut buf, seq + 1);
                    out.extend(buf.iter().map(|&t| t as i64));
                }
            }
            Corpus::Text(t) => {
                let (lo, hi) = match val_index {
                    None => (0, t.split),
                    Some(_) => (t.split, t.len()),
                };
                let span = hi - lo - seq;
                for _ in 0..rows {
                    let start = lo + rng.random_range(0..span);
                    out.extend((start..start + seq + 1).map(|i| t.get(i) as i64));
                }
            }
        }
        out
    }
}
