//! A built-in synthetic corpus with an exactly known entropy rate.
//!
//! The source is a hierarchical Markov process over words:
//! - a lexicon of `words` distinct words, each 1..=`max_word_len` letters drawn from tokens 1..vocab;
//!   token 0 separates words;
//! - every word belongs to one of `classes` classes, and within a class words follow a Zipf law of
//!   exponent `zipf` (so that learning the lexicon is a long tail: it rewards width);
//! - the class of the next word depends on the classes of the previous two words through a transition
//!   table drawn from a Dirichlet(`concentration`) (predicting the first letter of a word means recognising
//!   the two previous words and composing their classes: it rewards depth).
//!
//! Because the token stream is an invertible function of the word stream, the entropy rate per token is
//! h_word / mean tokens per word, with h_word = sum over class pairs of pi(c1, c2) [H(T(c1, c2)) +
//! sum_c3 T(c1, c2)(c3) H(Zipf_c3)] and pi the stationary distribution of the class-pair chain (computed by
//! power iteration to 1e-14). This is the irreducible loss E of a model with unlimited context; a model
//! with a finite window pays slightly more at the first positions of each window.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

mod window;
pub use window::WindowPredictor;

/// Parameters of the synthetic source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Tokens in the alphabet, separator included (token 0).
    #[serde(default = "d_vocab")]
    pub vocab: usize,
    /// Words in the lexicon.
    #[serde(default = "d_words")]
    pub words: usize,
    /// Word classes.
    #[serde(default = "d_classes")]
    pub classes: usize,
    /// Longest word, in letters.
    #[serde(default = "d_max_word_len")]
    pub max_word_len: usize,
    /// Zipf exponent of word frequencies within a class.
    #[serde(default = "d_zipf")]
    pub zipf: f64,
    /// Dirichlet concentration of the class transitions (smaller is more predictable).
    #[serde(default = "d_concentration")]
    pub concentration: f64,
    /// When set, the transitions are hierarchical: a first-order table (the next class from the
    /// previous word's class, Dirichlet(`concentration`)) and, for each class pair, a row drawn from
    /// a Dirichlet centred on the first-order row with this total concentration (larger: the word
    /// before the previous adds less). Context then pays off in steps a model can learn one after
    /// the other (the previous word first). Unset: each class pair's row is drawn on its own, and
    /// the previous word's class alone predicts almost nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_concentration: Option<f64>,
}

fn d_vocab() -> usize {
    64
}
fn d_words() -> usize {
    1024
}
fn d_classes() -> usize {
    16
}
fn d_max_word_len() -> usize {
    5
}
fn d_zipf() -> f64 {
    1.1
}
fn d_concentration() -> f64 {
    0.2
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            vocab: d_vocab(),
            words: d_words(),
            classes: d_classes(),
            max_word_len: d_max_word_len(),
            zipf: d_zipf(),
            concentration: d_concentration(),
            pair_concentration: None,
        }
    }
}

impl SyntheticConfig {
    /// Checks the parameters; the error names the key (under `data.synthetic`).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.vocab < 3 {
            return Err((
                "vocab",
                format!("needs at least 3 tokens, got {}", self.vocab),
            ));
        }
        if self.classes < 1 || self.words < self.classes {
            return Err((
                "words",
                format!(
                    "needs at least one word per class ({} classes)",
                    self.classes
                ),
            ));
        }
        if self.max_word_len < 1 {
            return Err(("max_word_len", "must be at least 1".into()));
        }
        let letters = (self.vocab - 1) as f64;
        let possible: f64 = (1..=self.max_word_len)
            .map(|l| letters.powi(l as i32))
            .sum();
        if (self.words as f64) > possible / 2.0 {
            return Err((
                "words",
                format!(
                    "{} words do not fit in {possible} possible strings (at most half)",
                    self.words
                ),
            ));
        }
        if !(self.zipf.is_finite() && self.zipf >= 0.0) {
            return Err(("zipf", format!("must be >= 0, got {}", self.zipf)));
        }
        if !(self.concentration.is_finite() && self.concentration > 0.0) {
            return Err((
                "concentration",
                format!("must be > 0, got {}", self.concentration),
            ));
        }
        if let Some(c) = self.pair_concentration {
            if !(c.is_finite() && c > 0.0) {
                return Err(("pair_concentration", format!("must be > 0, got {c}")));
            }
        }
        Ok(())
    }
}

/// A probability vector drawn from Dirichlet(`shape`) (entries floored at 1e-12 before normalising).
fn dirichlet(shape: impl Iterator<Item = f64>, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let raw: Vec<f64> = shape
        .map(|a| {
            Gamma::new(a.max(1e-12), 1.0)
                .expect("validated concentration")
                .sample(rng)
                .max(1e-12)
        })
        .collect();
    let s: f64 = raw.iter().sum();
    raw.iter().map(|v| v / s).collect()
}

/// Cumulative distribution for sampling by binary search.
#[derive(Debug, Clone)]
struct Cdf(Vec<f64>);

impl Cdf {
    fn new(p: &[f64]) -> Self {
        let mut acc = 0.0;
        Cdf(p
            .iter()
            .map(|v| {
                acc += v;
                acc
            })
            .collect())
    }
    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let u = rng.random::<f64>() * self.0[self.0.len() - 1];
        self.0.partition_point(|&c| c <= u).min(self.0.len() - 1)
    }
}

fn entropy(p: &[f64]) -> f64 {
    p.iter().filter(|&&v| v > 0.0).map(|&v| -v * v.ln()).sum()
}

/// Entropy rates (nats per token) of three predictors that know the lexicon and its word
/// frequencies and differ in how much context they use. A model that has learned only part of the
/// source's structure cannot go below the rung of what it has learned, so a loss plateau at a rung
/// names the skill that is missing. Each rung is at least the one before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkillLadder {
    /// The next word's class from the classes of the previous two words: the whole process, the
    /// entropy rate.
    pub two_words: f64,
    /// The next word's class from the previous word's class only.
    pub one_word: f64,
    /// No context: every word at its overall frequency.
    pub unigram: f64,
}

/// One word of a walk through the process.
struct WordDraw {
    /// The class pair (c1 * K + c2) of the two words before.
    pair: usize,
    /// The word's class.
    class: usize,
    /// Its Zipf rank within the class.
    rank: usize,
    /// Tokens it emits, separator included.
    tokens: usize,
}

/// The built source: lexicon, classes, transition table and the exact entropy rate.
#[derive(Debug, Clone)]
pub struct SyntheticSource {
    lexicon: Vec<Vec<u32>>,
    /// Words of each class, by Zipf rank.
    class_words: Vec<Vec<usize>>,
    /// Zipf probabilities within each class.
    class_probs: Vec<Vec<f64>>,
    /// Entropy of the word within each class.
    class_entropy: Vec<f64>,
    class_cdf: Vec<Cdf>,
    /// Transition probabilities of the next class, indexed by c1 * K + c2.
    trans: Vec<Vec<f64>>,
    trans_cdf: Vec<Cdf>,
    /// Stationary distribution of the class-pair chain, indexed c1 * K + c2.
    stationary: Vec<f64>,
    stationary_cdf: Cdf,
    classes: usize,
    max_word_len: usize,
    alphabet: usize,
    /// Entropy rate in nats per token.
    pub entropy_rate: f64,
    /// Mean tokens per word (separator included).
    pub mean_word_tokens: f64,
}

impl SyntheticSource {
    /// Builds the source deterministically from its parameters and `seed`.
    pub fn new(cfg: &SyntheticConfig, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut seen = HashSet::new();
        let mut lexicon = Vec::with_capacity(cfg.words);
        while lexicon.len() < cfg.words {
            let len = rng.random_range(1..=cfg.max_word_len);
            let w: Vec<u32> = (0..len)
                .map(|_| rng.random_range(1..cfg.vocab as u32))
                .collect();
            if seen.insert(w.clone()) {
                lexicon.push(w);
            }
        }
        let k = cfg.classes;
        let class_words: Vec<Vec<usize>> = (0..k)
            .map(|c| (c..cfg.words).step_by(k).collect())
            .collect();
        let class_probs: Vec<Vec<f64>> = class_words
            .iter()
            .map(|ws| {
                let raw: Vec<f64> = (0..ws.len())
                    .map(|r| 1.0 / ((r + 1) as f64).powf(cfg.zipf))
                    .collect();
                let s: f64 = raw.iter().sum();
                raw.iter().map(|v| v / s).collect()
            })
            .collect();
        let trans: Vec<Vec<f64>> = match cfg.pair_concentration {
            None => (0..k * k)
                .map(|_| dirichlet((0..k).map(|_| cfg.concentration), &mut rng))
                .collect(),
            Some(pair) => {
                let first: Vec<Vec<f64>> = (0..k)
                    .map(|_| dirichlet((0..k).map(|_| cfg.concentration), &mut rng))
                    .collect();
                (0..k * k)
                    .map(|s| dirichlet(first[s % k].iter().map(|p| pair * p), &mut rng))
                    .collect()
            }
        };
        // Stationary distribution of the class-pair chain (c1, c2) -> (c2, c3).
        let mut pi = vec![1.0 / (k * k) as f64; k * k];
        for _ in 0..100_000 {
            let mut next = vec![0.0; k * k];
            for (s, &p) in pi.iter().enumerate() {
                let c2 = s % k;
                for (c3, &t) in trans[s].iter().enumerate() {
                    next[c2 * k + c3] += p * t;
                }
            }
            let diff: f64 = next.iter().zip(&pi).map(|(a, b)| (a - b).abs()).sum();
            pi = next;
            if diff < 1e-14 {
                break;
            }
        }
        let class_entropy: Vec<f64> = class_probs.iter().map(|p| entropy(p)).collect();
        let class_len: Vec<f64> = (0..k)
            .map(|c| {
                class_words[c]
                    .iter()
                    .zip(&class_probs[c])
                    .map(|(&w, p)| p * (lexicon[w].len() + 1) as f64)
                    .sum()
            })
            .collect();
        let mut h_word = 0.0;
        let mut mean_len = 0.0;
        for (s, &p) in pi.iter().enumerate() {
            h_word += p
                * (entropy(&trans[s])
                    + trans[s]
                        .iter()
                        .zip(&class_entropy)
                        .map(|(t, h)| t * h)
                        .sum::<f64>());
            mean_len += p * trans[s]
                .iter()
                .zip(&class_len)
                .map(|(t, l)| t * l)
                .sum::<f64>();
        }
        SyntheticSource {
            class_cdf: class_probs.iter().map(|p| Cdf::new(p)).collect(),
            trans_cdf: trans.iter().map(|p| Cdf::new(p)).collect(),
            stationary_cdf: Cdf::new(&pi),
            stationary: pi,
            lexicon,
            class_words,
            class_probs,
            class_entropy,
            trans,
            classes: k,
            max_word_len: cfg.max_word_len,
            alphabet: cfg.vocab,
            entropy_rate: h_word / mean_len,
            mean_word_tokens: mean_len,
        }
    }

    /// Alphabet size (separator included).
    pub fn vocab(&self) -> usize {
        self.alphabet
    }

    /// Fills `out` with a stationary stretch of the stream drawn with `rng`.
    pub fn fill(&self, rng: &mut ChaCha8Rng, out: &mut Vec<u32>, len: usize) {
        out.clear();
        let k = self.classes;
        let mut state = self.stationary_cdf.sample(rng);
        // Start inside a word so that position 0 is not always a word start.
        let mut skip = rng.random_range(0..=self.max_word_len);
        while out.len() < len {
            let c3 = self.trans_cdf[state].sample(rng);
            let w = self.class_words[c3][self.class_cdf[c3].sample(rng)];
            for &tok in self.lexicon[w].iter().chain(std::iter::once(&0)) {
                if skip > 0 {
                    skip -= 1;
                } else if out.len() < len {
                    out.push(tok);
                }
            }
            state = (state % k) * k + c3;
        }
    }

    /// Entropy rates of predictors that know less of the source's structure: the losses at which a
    /// model that has learned only part of it plateaus (see [`SkillLadder`]).
    pub fn skill_ladder(&self) -> SkillLadder {
        let k = self.classes;
        let mut next_class = vec![0.0; k];
        // P(c2, c3): the next class jointly with the previous word's class.
        let mut pair = vec![0.0; k * k];
        for (s, &p) in self.stationary.iter().enumerate() {
            for (c3, &t) in self.trans[s].iter().enumerate() {
                next_class[c3] += p * t;
                pair[(s % k) * k + c3] += p * t;
            }
        }
        // Mean word entropy within the next word's class: the same for every rung (each knows the
        // lexicon and its frequencies).
        let within: f64 = next_class
            .iter()
            .zip(&self.class_entropy)
            .map(|(q, h)| q * h)
            .sum();
        let mut two = 0.0;
        for (s, &p) in self.stationary.iter().enumerate() {
            two += p * entropy(&self.trans[s]);
        }
        // H(C3 | C2) = H(C2, C3) - H(C2); the previous word's class is distributed as the next's.
        let one = entropy(&pair) - entropy(&next_class);
        let per_token = |h_class: f64| (h_class + within) / self.mean_word_tokens;
        SkillLadder {
            two_words: per_token(two),
            one_word: per_token(one),
            unigram: per_token(entropy(&next_class)),
        }
    }

    /// Empirical log-loss (nats per token) of the ideal predictor on `words` sampled words: the sum of
    /// -ln P(word | two previous classes) over the tokens emitted. Converges to `entropy_rate`.
    pub fn empirical_entropy(&self, rng: &mut ChaCha8Rng, words: usize) -> f64 {
        let (mut nats, mut tokens) = (0.0, 0usize);
        for w in self.walk(rng, words) {
            nats -= (self.trans[w.pair][w.class] * self.class_probs[w.class][w.rank]).ln();
            tokens += w.tokens;
        }
        nats / tokens as f64
    }

    /// `words` words of the stationary process, drawn with `rng`, with the state each was drawn in.
    fn walk<'a>(
        &'a self,
        rng: &'a mut ChaCha8Rng,
        words: usize,
    ) -> impl Iterator<Item = WordDraw> + 'a {
        let k = self.classes;
        let mut pair = self.stationary_cdf.sample(rng);
        (0..words).map(move |_| {
            let class = self.trans_cdf[pair].sample(rng);
            let rank = self.class_cdf[class].sample(rng);
            let w = WordDraw {
                pair,
                class,
                rank,
                tokens: self.lexicon[self.class_words[class][rank]].len() + 1,
            };
            pair = (pair % k) * k + class;
            w
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_floor_matches_empirical_estimate() {
        let src = SyntheticSource::new(&SyntheticConfig::default(), 1);
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let emp = src.empirical_entropy(&mut rng, 400_000);
        // 400k words (about 1.4M tokens): the estimate's standard error is well under 0.5%.
        let rel = (emp / src.entropy_rate - 1.0).abs();
        assert!(
            rel < 0.005,
            "entropy rate {} vs empirical {emp}",
            src.entropy_rate
        );
        assert!(
            src.entropy_rate > 0.5 && src.entropy_rate < (64f64).ln(),
            "{}",
            src.entropy_rate
        );
    }

    #[test]
    fn the_skill_ladder_rises_and_matches_its_predictors_empirically() {
        let src = SyntheticSource::new(&SyntheticConfig::default(), 1);
        let ladder = src.skill_ladder();
        assert!((ladder.two_words - src.entropy_rate).abs() < 1e-12);
        assert!(ladder.two_words < ladder.one_word && ladder.one_word < ladder.unigram);
        // The one-word rung by sampling: -ln P(c3 | c2) from counted pair frequencies of the
        // process, plus the word's -ln P within its class, per token.
        let k = src.classes;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let seq: Vec<WordDraw> = src.walk(&mut rng, 400_000).collect();
        let mut counts = vec![0.0; k * k];
        for w in &seq {
            counts[(w.pair % k) * k + w.class] += 1.0;
        }
        let (mut nats, mut tokens) = (0.0, 0usize);
        for w in &seq {
            let c2 = w.pair % k;
            let row: f64 = counts[c2 * k..(c2 + 1) * k].iter().sum();
            nats -= (counts[c2 * k + w.class] / row * src.class_probs[w.class][w.rank]).ln();
            tokens += w.tokens;
        }
        let emp = nats / tokens as f64;
        assert!(
            (emp / ladder.one_word - 1.0).abs() < 0.005,
            "one-word rung {} vs empirical {emp}",
            ladder.one_word
        );
        // The default corpus (seed 0) is the one the docs describe: 1.142 nats/token, 1.387 from the
        // previous word alone, 1.415 from no context.
        let documented = SyntheticSource::new(&SyntheticConfig::default(), 0).skill_ladder();
        for (got, want) in [
            (documented.two_words, 1.1419),
            (documented.one_word, 1.3865),
            (documented.unigram, 1.4147),
        ] {
            assert!((got - want).abs() < 1e-4, "{documented:?}");
        }
        // One class: context is worthless and the three rungs coincide.
        let flat = SyntheticSource::new(
            &SyntheticConfig {
                classes: 1,
                ..SyntheticConfig::default()
            },
            1,
        )
        .skill_ladder();
        assert!((flat.unigram - flat.two_words).abs() < 1e-12, "{flat:?}");
        assert!((flat.one_word - flat.two_words).abs() < 1e-12, "{flat:?}");
    }

    #[test]
    fn pair_concentration_sets_how_much_the_second_word_adds() {
        let ladder = |pair| {
            SyntheticSource::new(
                &SyntheticConfig {
                    pair_concentration: Some(pair),
                    ..SyntheticConfig::default()
                },
                1,
            )
            .skill_ladder()
        };
        // Rows pinned to the first-order table: the word before the previous adds nothing.
        let pinned = ladder(1e9);
        assert!(
            (pinned.one_word - pinned.two_words).abs() < 1e-4,
            "{pinned:?}"
        );
        assert!(pinned.unigram - pinned.one_word > 0.1, "{pinned:?}");
        // Looser rows: the second word adds more, and the first still pays.
        let loose = ladder(2.0);
        assert!(loose.one_word - loose.two_words > 0.05, "{loose:?}");
        assert!(loose.unigram - loose.one_word > 0.05, "{loose:?}");
        let bad = SyntheticConfig {
            pair_concentration: Some(0.0),
            ..SyntheticConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "pair_concentration");
    }

    #[test]
    fn deterministic_and_in_range() {
        let cfg = SyntheticConfig::default();
        let (a, b) = (SyntheticSource::new(&cfg, 5), SyntheticSource::new(&cfg, 5));
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.fill(&mut ChaCha8Rng::seed_from_u64(1), &mut x, 1000);
        b.fill(&mut ChaCha8Rng::seed_from_u64(1), &mut y, 1000);
        assert_eq!(x, y);
        assert_eq!(x.len(), 1000);
        assert!(x.iter().all(|&t| (t as usize) < cfg.vocab));
        assert!(x.contains(&0));
        assert_eq!(a.entropy_rate, b.entropy_rate);
    }

    #[test]
    fn bad_parameters_name_the_key() {
        let cfg = SyntheticConfig {
            vocab: 3,
            max_word_len: 2,
            words: 100,
            ..SyntheticConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().0, "words");
    }
}
