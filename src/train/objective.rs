//! Pretraining objectives: how a window of seq + 1 corpus tokens becomes an input (the prefix,
//! which carries no loss) and targets. Language modelling keeps the window and the model's prefix
//! (none for a causal decoder); T5's span corruption replaces spans of the window by sentinel
//! tokens in the input and predicts the spans, each after its sentinel; a mixture of denoisers
//! (UL2) draws one objective per sequence.

use crate::train::batch::prefix_lengths;
use models::{account, Accounting, Arch, ModelConfig, PrefixLen};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Span corruption (Raffel et al. 2020): `rate` of a window's tokens are corrupted, in spans of
/// `mean_span` tokens on average.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanCorruption {
    /// Fraction of the tokens corrupted, in [0, 0.5] (0: the window is not corrupted, plain
    /// language modelling).
    pub rate: f64,
    /// Mean span length in tokens, at least 1.
    pub mean_span: f64,
}

/// One denoiser of a mixture: span corruption, or without it language modelling (prefix
/// language modelling with the model's prefix: UL2's S-denoiser).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Denoiser {
    /// Relative weight (the probability a sequence gets this denoiser is weight / sum).
    pub weight: f64,
    /// Span corruption settings (absent: language modelling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_corruption: Option<SpanCorruption>,
}

/// The run's objective (the `objective` section; absent: language modelling).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveConfig {
    /// Span corruption of every sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_corruption: Option<SpanCorruption>,
    /// A mixture of denoisers, one drawn per sequence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mixture: Vec<Denoiser>,
}

/// How span corruption lays out a window of `window` tokens: `spans` corrupted spans holding
/// `noise` of the first `raw` tokens; the input is the raw tokens with each span replaced by a
/// sentinel (raw - noise + spans tokens), the targets each sentinel followed by its span
/// (noise + spans), filling the window exactly: raw + 2 spans = window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLayout {
    /// Corpus tokens read.
    pub raw: usize,
    /// Corrupted tokens.
    pub noise: usize,
    /// Corrupted spans (and sentinels).
    pub spans: usize,
}

impl SpanLayout {
    /// The layout for a window of `window` tokens (deterministic, as in T5, so every sequence
    /// has the same input and target lengths); no spans at rate 0.
    pub fn new(s: &SpanCorruption, window: usize) -> SpanLayout {
        let spans = (s.rate * window as f64 / (s.mean_span + 2.0 * s.rate)).round() as usize;
        // At most a quarter of the window: then raw >= 2 spans, room for a kept and a corrupted
        // token per span (none for windows under 4 tokens).
        let spans = if s.rate > 0.0 { spans.max(1) } else { 0 }.min(window / 4);
        let raw = window - 2 * spans;
        let noise = ((raw as f64 * s.rate).round() as usize).clamp(spans, raw - spans);
        SpanLayout { raw, noise, spans }
    }

    /// Input tokens (the prefix).
    pub fn input(&self) -> usize {
        self.raw - self.noise + self.spans
    }
}

/// The id of sentinel `i` of a model with `vocab` ids: counted down from the top (T5).
pub fn sentinel(vocab: usize, i: usize) -> i64 {
    (vocab - 1 - i) as i64
}

/// `n` items split into `parts` non-empty runs, uniformly over the compositions.
fn composition(rng: &mut ChaCha8Rng, n: usize, parts: usize) -> Vec<usize> {
    let mut cuts = rand::seq::index::sample(rng, n - 1, parts - 1).into_vec();
    cuts.iter_mut().for_each(|c| *c += 1);
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(parts);
    let mut last = 0;
    for c in cuts.into_iter().chain([n]) {
        out.push(c - last);
        last = c;
    }
    out
}

/// Corrupts one window in place (T5's random spans: the kept and the corrupted tokens each split
/// into `spans` non-empty runs, alternating from a kept run) and returns its input length.
fn corrupt(row: &mut [i64], layout: SpanLayout, vocab: usize, rng: &mut ChaCha8Rng) -> usize {
    let SpanLayout { raw, noise, spans } = layout;
    let kept = composition(rng, raw - noise, spans);
    let corrupted = composition(rng, noise, spans);
    let (mut input, mut target) = (Vec::with_capacity(row.len()), Vec::new());
    let mut at = 0;
    for (i, (&k, &c)) in kept.iter().zip(&corrupted).enumerate() {
        input.extend_from_slice(&row[at..at + k]);
        input.push(sentinel(vocab, i));
        target.push(sentinel(vocab, i));
        target.extend_from_slice(&row[at + k..at + k + c]);
        at += k + c;
    }
    let p = input.len();
    input.extend(target);
    row.copy_from_slice(&input);
    p
}

impl ObjectiveConfig {
    /// The denoisers with their probabilities (one language-modelling denoiser when the section
    /// is absent or empty).
    fn denoisers(&self) -> Vec<(f64, Option<SpanCorruption>)> {
        if !self.mixture.is_empty() {
            let total: f64 = self.mixture.iter().map(|d| d.weight).sum();
            return self
                .mixture
                .iter()
                .map(|d| (d.weight / total, d.span_corruption))
                .collect();
        }
        vec![(1.0, self.span_corruption)]
    }

    /// The objective's name in `runs.parquet`: lm, span_corruption or mixture.
    pub fn name(&self) -> &'static str {
        if !self.mixture.is_empty() {
            "mixture"
        } else if self.is_language_modelling() {
            "lm"
        } else {
            "span_corruption"
        }
    }

    /// Most sentinels a sequence of `window` tokens can need.
    pub fn sentinels(&self, window: usize) -> usize {
        self.denoisers()
            .iter()
            .filter_map(|(_, s)| s.map(|s| SpanLayout::new(&s, window).spans))
            .max()
            .unwrap_or(0)
    }

    /// The model's accounting under this objective. An encoder-decoder's FLOPs per token depend on
    /// its input length, which a mixture of denoisers draws per sequence: its FLOPs per token are
    /// the weighted mean over the denoisers of each one's (span corruption: its fixed input
    /// length; language modelling: `model.prefix`). Every other case is `account(model)`.
    pub fn accounting(&self, model: &ModelConfig) -> Accounting {
        let base = account(model);
        if model.arch != Arch::EncoderDecoder || self.mixture.is_empty() {
            return base;
        }
        let window = model.seq_len + 1;
        let flops: f64 = self
            .denoisers()
            .iter()
            .map(|(w, s)| {
                let mut m = model.clone();
                if let Some(s) = s.filter(|s| s.rate > 0.0) {
                    m.prefix = Some(PrefixLen::Fixed(SpanLayout::new(&s, window).input()));
                }
                w * account(&m).flops_per_token as f64
            })
            .sum();
        Accounting {
            flops_per_token: flops.round() as u64,
            ..base
        }
    }

    /// Whether every sequence is language modelling (no span corruption at a positive rate).
    pub fn is_language_modelling(&self) -> bool {
        self.denoisers()
            .iter()
            .all(|(_, s)| s.is_none_or(|s| s.rate == 0.0))
    }

    /// Checks the settings against the model (`model`) and the corpus's ids (`data_vocab`); errors
    /// name the key under `objective` (or `model.*`, given in full).
    pub fn validate(
        &self,
        model: &ModelConfig,
        data_vocab: Option<usize>,
    ) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((k.to_string(), m));
        if self.span_corruption.is_some() && !self.mixture.is_empty() {
            return err(
                "objective",
                "give either span_corruption or a mixture of denoisers, not both".into(),
            );
        }
        for (i, d) in self.mixture.iter().enumerate() {
            if !(d.weight.is_finite() && d.weight > 0.0) {
                return err(
                    &format!("objective.mixture.{i}.weight"),
                    format!("must be positive, got {}", d.weight),
                );
            }
        }
        let window = model.seq_len + 1;
        for (i, (_, s)) in self.denoisers().iter().enumerate() {
            let Some(s) = s else { continue };
            let key = if self.mixture.is_empty() {
                "objective.span_corruption".to_string()
            } else {
                format!("objective.mixture.{i}.span_corruption")
            };
            if !(0.0..=0.5).contains(&s.rate) {
                return err(&key, format!("rate must be in [0, 0.5], got {}", s.rate));
            }
            if !(s.mean_span.is_finite() && s.mean_span >= 1.0) {
                return err(
                    &key,
                    format!("mean_span must be at least 1, got {}", s.mean_span),
                );
            }
            if s.rate > 0.0 && SpanLayout::new(s, window).spans == 0 {
                return err(
                    &key,
                    format!(
                        "seq_len {} is too short for this rate and span",
                        model.seq_len
                    ),
                );
            }
        }
        if self.is_language_modelling() {
            return Ok(());
        }
        if !model.arch.has_prefix() {
            return err(
                "objective",
                "span corruption needs an input side: `model.arch: prefix` or `encoder_decoder`"
                    .into(),
            );
        }
        if let Some(s) = self.span_corruption {
            let p = SpanLayout::new(&s, window).input();
            if model.prefix != Some(PrefixLen::Fixed(p)) {
                return err(
                    "model.prefix",
                    format!(
                        "span corruption at rate {} with mean span {} on seq_len {} gives inputs of \
                         {p} tokens: set `prefix: {p}` (the accounting and evaluation read it)",
                        s.rate, s.mean_span, model.seq_len
                    ),
                );
            }
        }
        let sentinels = self.sentinels(window);
        if let Some(v) = data_vocab {
            if v + sentinels > model.vocab {
                return err(
                    "model.vocab",
                    format!(
                        "span corruption needs {sentinels} sentinel ids above the data's {v}: \
                         model.vocab must be at least {}",
                        v + sentinels
                    ),
                );
            }
        }
        Ok(())
    }

    /// Applies the objective to `rows` (windows of seq + 1 tokens) of one step or validation
    /// batch and returns each row's prefix length: the model's prefix for language modelling,
    /// the input length for a corrupted row. Fixed by `seed` and `index`, so a step's rows do not
    /// depend on micro-batching or resumption; at rate 0 the rows and prefixes are language
    /// modelling's, bit for bit.
    pub fn apply(
        &self,
        model: &ModelConfig,
        seed: u64,
        index: u64,
        rows: &mut [i64],
        seq: usize,
    ) -> Vec<usize> {
        let n = rows.len() / (seq + 1);
        let mut prefix = prefix_lengths(model, seed, index, n);
        if self.is_language_modelling() {
            return prefix;
        }
        let denoisers = self.denoisers();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5370_616E_5F63_6F72);
        rng.set_stream(index);
        for (row, p) in rows.chunks_exact_mut(seq + 1).zip(prefix.iter_mut()) {
            let mut u: f64 = rng.random();
            let chosen = denoisers
                .iter()
                .find(|(w, _)| {
                    u -= w;
                    u < 0.0
                })
                .unwrap_or(&denoisers[denoisers.len() - 1]);
            if let Some(s) = chosen.1.filter(|s| s.rate > 0.0) {
                *p = corrupt(row, SpanLayout::new(&s, seq + 1), model.vocab, &mut rng);
            }
        }
        prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(arch: Arch, prefix: usize) -> ModelConfig {
        let mut m = ModelConfig::new(1, 16, 2, 80, 64);
        m.arch = arch;
        m.prefix = Some(PrefixLen::Fixed(prefix));
        m
    }

    #[test]
    fn layouts_fill_the_window() {
        // T5's default (15%, mean 3) on 65 tokens: 3 spans need 6 extra tokens, so 59 raw tokens,
        // 9 of them corrupted; input 59 - 9 + 3 = 53, targets 9 + 3 = 12.
        let l = SpanLayout::new(
            &SpanCorruption {
                rate: 0.15,
                mean_span: 3.0,
            },
            65,
        );
        assert_eq!(
            l,
            SpanLayout {
                raw: 59,
                noise: 9,
                spans: 3
            }
        );
        assert_eq!(l.input(), 53);
        for (rate, mean_span) in [(0.5, 32.0), (0.5, 3.0), (0.01, 1.0), (0.3, 8.0)] {
            let l = SpanLayout::new(&SpanCorruption { rate, mean_span }, 65);
            assert_eq!(l.raw + 2 * l.spans, 65, "{rate} {mean_span}");
            assert!(l.noise >= l.spans && l.raw - l.noise >= l.spans, "{l:?}");
        }
        // Short windows: never more spans than a quarter of the window, none under 4 tokens.
        for window in 1..12 {
            let l = SpanLayout::new(
                &SpanCorruption {
                    rate: 0.5,
                    mean_span: 1.0,
                },
                window,
            );
            assert!(
                l.spans <= window / 4 && l.raw + 2 * l.spans == window,
                "{window}: {l:?}"
            );
        }
        let zero = SpanLayout::new(
            &SpanCorruption {
                rate: 0.0,
                mean_span: 3.0,
            },
            65,
        );
        assert_eq!(
            zero,
            SpanLayout {
                raw: 65,
                noise: 0,
                spans: 0
            }
        );
    }

    #[test]
    fn corruption_keeps_every_token_once_in_order() {
        let obj = ObjectiveConfig {
            span_corruption: Some(SpanCorruption {
                rate: 0.15,
                mean_span: 3.0,
            }),
            mixture: Vec::new(),
        };
        let m = model(Arch::EncoderDecoder, 53);
        obj.validate(&m, Some(64)).unwrap();
        let original: Vec<i64> = (0..2 * 65).map(|i| i % 64).collect();
        let mut rows = original.clone();
        let prefix = obj.apply(&m, 3, 7, &mut rows, 64);
        assert_eq!(prefix, vec![53, 53]);
        for (row, orig) in rows.chunks(65).zip(original.chunks(65)) {
            let (input, target) = row.split_at(53);
            let sentinels: Vec<i64> = (0..3).map(|i| sentinel(80, i)).collect();
            // Sentinels in order, once in each half; the target starts with the first.
            assert_eq!(
                input
                    .iter()
                    .filter(|t| **t >= 77)
                    .copied()
                    .collect::<Vec<_>>(),
                sentinels
            );
            assert_eq!(
                target
                    .iter()
                    .filter(|t| **t >= 77)
                    .copied()
                    .collect::<Vec<_>>(),
                sentinels
            );
            assert_eq!(target[0], sentinel(80, 0));
            // Filling each input sentinel with its span gives back the first 59 tokens.
            let mut spans = target.split(|t| *t >= 77).skip(1);
            let mut rebuilt = Vec::new();
            for &t in input {
                if t >= 77 {
                    rebuilt.extend_from_slice(spans.next().unwrap());
                } else {
                    rebuilt.push(t);
                }
            }
            assert_eq!(rebuilt, orig[..59]);
        }
        // Fixed by seed and index; another index corrupts elsewhere.
        let mut again = original.clone();
        obj.apply(&m, 3, 7, &mut again, 64);
        assert_eq!(again, rows);
        let mut other = original.clone();
        obj.apply(&m, 3, 8, &mut other, 64);
        assert_ne!(other, rows);
    }

    #[test]
    fn rate_zero_is_language_modelling() {
        let m = model(Arch::Prefix, 10);
        let lm = ObjectiveConfig::default();
        let zero = ObjectiveConfig {
            span_corruption: None,
            mixture: vec![
                Denoiser {
                    weight: 1.0,
                    span_corruption: Some(SpanCorruption {
                        rate: 0.0,
                        mean_span: 3.0,
                    }),
                },
                Denoiser {
                    weight: 2.0,
                    span_corruption: None,
                },
            ],
        };
        let original: Vec<i64> = (0..4 * 65).map(|i| (i * 7) % 64).collect();
        let (mut a, mut b) = (original.clone(), original.clone());
        assert_eq!(
            lm.apply(&m, 1, 2, &mut a, 64),
            zero.apply(&m, 1, 2, &mut b, 64)
        );
        assert_eq!(a, original);
        assert_eq!(b, original);
    }

    #[test]
    fn a_mixture_draws_each_denoiser_by_weight() {
        let mut m = model(Arch::Prefix, 10);
        m.prefix = Some(PrefixLen::Fixed(10));
        let obj = ObjectiveConfig {
            span_corruption: None,
            mixture: vec![
                Denoiser {
                    weight: 1.0,
                    span_corruption: Some(SpanCorruption {
                        rate: 0.15,
                        mean_span: 3.0,
                    }),
                },
                Denoiser {
                    weight: 1.0,
                    span_corruption: Some(SpanCorruption {
                        rate: 0.5,
                        mean_span: 32.0,
                    }),
                },
                Denoiser {
                    weight: 2.0,
                    span_corruption: None,
                },
            ],
        };
        obj.validate(&m, Some(64)).unwrap();
        let mut rows: Vec<i64> = (0..400 * 65).map(|i| i % 64).collect();
        let prefix = obj.apply(&m, 0, 0, &mut rows, 64);
        let extreme = SpanLayout::new(
            &SpanCorruption {
                rate: 0.5,
                mean_span: 32.0,
            },
            65,
        )
        .input();
        let count = |p: usize| prefix.iter().filter(|&&q| q == p).count() as f64 / 400.0;
        for (p, want) in [(53, 0.25), (extreme, 0.25), (10, 0.5)] {
            assert!(
                (count(p) - want).abs() < 0.08,
                "prefix {p}: {} vs {want}",
                count(p)
            );
        }
    }

    #[test]
    fn an_encoder_decoders_mixture_counts_the_weighted_flops_of_its_denoisers() {
        let mut m = model(Arch::EncoderDecoder, 10);
        m.encoder = Some(Default::default());
        let span = SpanCorruption {
            rate: 0.15,
            mean_span: 3.0,
        };
        let obj = ObjectiveConfig {
            span_corruption: None,
            mixture: vec![
                Denoiser {
                    weight: 1.0,
                    span_corruption: Some(span),
                },
                Denoiser {
                    weight: 2.0,
                    span_corruption: None,
                },
            ],
        };
        obj.validate(&m, Some(64)).unwrap();
        // One sequence in three is span-corrupted (inputs of 53 tokens of the 65-token window),
        // two in three are prefix LM with the model's 10-token prefix.
        assert_eq!(SpanLayout::new(&span, 65).input(), 53);
        let with_input = |p: usize| {
            let mut v = m.clone();
            v.prefix = Some(PrefixLen::Fixed(p));
            account(&v)
        };
        let (long, short) = (with_input(53), with_input(10));
        // Input tokens go through the encoder (no cross-attention, no output head), so the
        // FLOPs per position change with the input length.
        assert_ne!(long.flops_per_token, short.flops_per_token);
        let acc = obj.accounting(&m);
        let mean = (long.flops_per_token as f64 + 2.0 * short.flops_per_token as f64) / 3.0;
        assert_eq!(acc.flops_per_token, mean.round() as u64);
        // Parameters do not depend on the input length.
        assert_eq!(acc.params_total, account(&m).params_total);
        assert_eq!(acc.flops_6n, account(&m).flops_6n);
        // A decoder's FLOPs do not depend on where its prefix ends: its accounting is the model's.
        let prefix = model(Arch::Prefix, 10);
        assert_eq!(obj.accounting(&prefix), account(&prefix));
    }

    #[test]
    fn bad_settings_name_the_key() {
        let m = model(Arch::EncoderDecoder, 20);
        let sc = |rate, mean_span| ObjectiveConfig {
            span_corruption: Some(SpanCorruption { rate, mean_span }),
            mixture: Vec::new(),
        };
        assert_eq!(
            sc(0.15, 3.0).validate(&m, Some(64)).unwrap_err().0,
            "model.prefix"
        );
        assert_eq!(
            sc(0.7, 3.0).validate(&m, Some(64)).unwrap_err().0,
            "objective.span_corruption"
        );
        assert_eq!(
            sc(0.15, 0.5).validate(&m, Some(64)).unwrap_err().0,
            "objective.span_corruption"
        );
        let ok = model(Arch::EncoderDecoder, 53);
        assert_eq!(
            sc(0.15, 3.0).validate(&ok, Some(78)).unwrap_err().0,
            "model.vocab"
        );
        assert!(sc(0.15, 3.0).validate(&ok, Some(77)).is_ok());
        let causal = ModelConfig::new(1, 16, 2, 80, 64);
        assert_eq!(
            sc(0.15, 3.0).validate(&causal, Some(64)).unwrap_err().0,
            "objective"
        );
        assert!(sc(0.0, 3.0).validate(&causal, Some(64)).is_ok());
    }
}
