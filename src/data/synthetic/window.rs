//! The loss floor of a model that sees a finite window of the synthetic stream.
//!
//! The entropy rate is the floor of a predictor that knows the whole past. A model trained on windows
//! of `seq + 1` tokens drawn afresh from the stream does not: at the first positions of a window it
//! does not know where the words start or which classes came before, and it pays for that. Its floor
//! is the mean over positions t = 1..=seq of H(X_t | X_0..X_(t-1)), the loss of the exact Bayesian
//! predictor of the generating process given only the window. This module runs that predictor (a
//! filter over the hidden state: the current word, how much of it has been emitted, and the class
//! of the word before) on sampled windows and averages its log-loss per position.

use super::SyntheticSource;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// A map with a fixed hasher: the same insertions iterate in the same order in every process, so
/// the floor's sums, and the recorded floor, are bit-identical across the runs of a sweep.
type FixedMap<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;

/// Inside word `w` (the word before it was of class `c_prev`), about to emit its token `k` (the
/// separator when k = the word's length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct InWord {
    c_prev: u16,
    w: u32,
    k: u8,
}

/// A distribution over the hidden state: inside a word, or at the start of a fresh word drawn with
/// class pair `s` (indexed c1 * K + c2).
#[derive(Debug, Clone, Default)]
struct Belief {
    words: FixedMap<InWord, f64>,
    fresh: Vec<f64>,
}

/// Precomputed tables of the filter.
struct Filter<'a> {
    src: &'a SyntheticSource,
    /// Words of class c (with their probability within the class) by first letter: [c][letter].
    by_first: Vec<Vec<Vec<(u32, f64)>>>,
    /// P(first letter of a fresh word = x | pair s): [s][x].
    first_letter: Vec<Vec<f64>>,
}

impl<'a> Filter<'a> {
    fn new(src: &'a SyntheticSource) -> Self {
        let v = src.alphabet;
        let by_first: Vec<Vec<Vec<(u32, f64)>>> = src
            .class_words
            .iter()
            .zip(&src.class_probs)
            .map(|(words, probs)| {
                let mut by_letter = vec![Vec::new(); v];
                for (&w, &p) in words.iter().zip(probs) {
                    by_letter[src.lexicon[w][0] as usize].push((w as u32, p));
                }
                by_letter
            })
            .collect();
        let g: Vec<Vec<f64>> = by_first
            .iter()
            .map(|row| row.iter().map(|ws| ws.iter().map(|p| p.1).sum()).collect())
            .collect();
        let first_letter = src
            .trans
            .iter()
            .map(|t| {
                (0..v)
                    .map(|x| t.iter().zip(&g).map(|(p, gc)| p * gc[x]).sum())
                    .collect()
            })
            .collect();
        Filter {
            src,
            by_first,
            first_letter,
        }
    }

    fn class_of(&self, w: u32) -> usize {
        w as usize % self.src.classes
    }

    /// The token the state emits next.
    fn emits(&self, s: &InWord) -> u32 {
        self.src.lexicon[s.w as usize]
            .get(s.k as usize)
            .copied()
            .unwrap_or(0)
    }

    /// The state after emitting its token: the next letter, or (after the separator) a fresh word.
    fn step(&self, s: &InWord, m: f64, out: &mut Belief) {
        if (s.k as usize) < self.src.lexicon[s.w as usize].len() {
            *out.words.entry(InWord { k: s.k + 1, ..*s }).or_default() += m;
        } else {
            out.fresh[s.c_prev as usize * self.src.classes + self.class_of(s.w)] += m;
        }
    }

    /// Fresh words of pair `s` whose first letter is `x` (any letter when `None`), having emitted it.
    fn start_words(&self, s: usize, m: f64, x: Option<usize>, out: &mut Belief) {
        let k = self.src.classes;
        for (c3, &t) in self.src.trans[s].iter().enumerate() {
            if t == 0.0 {
                continue;
            }
            let letters = match x {
                Some(x) => x..x + 1,
                None => 0..self.src.alphabet,
            };
            for l in letters {
                for &(w, z) in &self.by_first[c3][l] {
                    *out.words
                        .entry(InWord {
                            c_prev: (s % k) as u16,
                            w,
                            k: 1,
                        })
                        .or_default() += m * t * z;
                }
            }
        }
    }

    fn empty(&self) -> Belief {
        Belief {
            words: FixedMap::default(),
            fresh: vec![0.0; self.src.classes * self.src.classes],
        }
    }

    /// One unobserved token.
    fn advance(&self, b: &Belief) -> Belief {
        let mut out = self.empty();
        for (s, &m) in &b.words {
            self.step(s, m, &mut out);
        }
        for (s, &m) in b.fresh.iter().enumerate() {
            if m > 0.0 {
                self.start_words(s, m, None, &mut out);
            }
        }
        out
    }

    /// P(next token = x) under `b`.
    fn predict(&self, b: &Belief, x: u32) -> f64 {
        let inside: f64 = b
            .words
            .iter()
            .filter(|(s, _)| self.emits(s) == x)
            .map(|(_, m)| m)
            .sum();
        let fresh: f64 = b
            .fresh
            .iter()
            .zip(&self.first_letter)
            .map(|(m, f)| m * f[x as usize])
            .sum();
        inside + fresh
    }

    /// The belief after observing token x (with probability `p` under `b`), renormalised.
    fn observe(&self, b: &Belief, x: u32, p: f64) -> Belief {
        let mut out = self.empty();
        for (s, &m) in &b.words {
            if self.emits(s) == x {
                self.step(s, m / p, &mut out);
            }
        }
        if x != 0 {
            for (s, &m) in b.fresh.iter().enumerate() {
                if m > 0.0 {
                    self.start_words(s, m / p, Some(x as usize), &mut out);
                }
            }
        }
        out
    }
}

/// The exact predictor of windows drawn as training draws them: the filter and its belief before a
/// window's first token.
pub struct WindowPredictor<'a> {
    filter: Filter<'a>,
    start: Belief,
}

impl WindowPredictor<'_> {
    /// -ln p(x_t | x_0..x_(t-1)) for t = 1..window.len() - 1: the loss of the exact predictor at every
    /// target position of a window.
    pub fn losses(&self, window: &[u32]) -> Vec<f64> {
        let f = &self.filter;
        let Some((&first, rest)) = window.split_first() else {
            return Vec::new();
        };
        let mut b = f.observe(&self.start, first, f.predict(&self.start, first));
        rest.iter()
            .map(|&x| {
                let p = f.predict(&b, x);
                b = f.observe(&b, x, p);
                -p.ln()
            })
            .collect()
    }
}

impl SyntheticSource {
    /// The exact predictor of a window: a window starts at a fresh word of a stationary class pair
    /// and skips 0..=max_word_len tokens of the stream (as [`SyntheticSource::fill`] draws it).
    pub fn window_predictor(&self) -> WindowPredictor<'_> {
        let f = Filter::new(self);
        let mut at = f.empty();
        at.fresh.copy_from_slice(&self.stationary);
        let mut start = f.empty();
        let skips = self.max_word_len + 1;
        for j in 0..skips {
            if j > 0 {
                at = f.advance(&at);
            }
            for (s, m) in &at.words {
                *start.words.entry(*s).or_default() += m / skips as f64;
            }
            for (t, m) in start.fresh.iter_mut().zip(&at.fresh) {
                *t += m / skips as f64;
            }
        }
        WindowPredictor { filter: f, start }
    }
}

#[cfg(test)]
mod tests {
    use super::super::SyntheticConfig;
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The exact predictor's mean loss per target position over `windows` windows of `seq + 1`
    /// tokens drawn as training draws them.
    fn per_position(src: &SyntheticSource, seq: usize, windows: usize, seed: u64) -> Vec<f64> {
        let predictor = src.window_predictor();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut row = Vec::with_capacity(seq + 1);
        let mut sums = vec![0.0; seq];
        for _ in 0..windows {
            src.fill(&mut rng, &mut row, seq + 1);
            for (sum, l) in sums.iter_mut().zip(predictor.losses(&row)) {
                *sum += l;
            }
        }
        sums.iter().map(|s| s / windows as f64).collect()
    }

    #[test]
    fn the_window_floor_starts_high_and_settles_at_the_entropy_rate() {
        let src = SyntheticSource::new(&SyntheticConfig::default(), 0);
        let floor = per_position(&src, 64, 3000, 7);
        let h = src.entropy_rate;
        // The first targets cannot know where words start or which classes came before.
        assert!(floor[0] > h + 1.0, "{:?}", &floor[..4]);
        let early: f64 = floor[..4].iter().sum::<f64>() / 4.0;
        let late: f64 = floor[32..].iter().sum::<f64>() / 32.0;
        assert!(early > late + 0.5, "early {early} late {late}");
        // Once the context holds a few words, the exact predictor is the entropy rate's.
        assert!((late / h - 1.0).abs() < 0.02, "late {late} vs rate {h}");
        // So the window's floor lies above the rate.
        let mean = floor.iter().sum::<f64>() / floor.len() as f64;
        assert!(mean > h, "{mean} vs {h}");
    }

    #[test]
    fn the_floor_is_bit_identical_however_often_it_is_computed() {
        // Runs of one sweep must record the same floor (a sweep's fit needs one common floor).
        let src = SyntheticSource::new(&SyntheticConfig::default(), 3);
        let mut row = Vec::new();
        src.fill(&mut ChaCha8Rng::seed_from_u64(1), &mut row, 65);
        let a = src.window_predictor().losses(&row);
        let b = src.window_predictor().losses(&row);
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
    }
}
