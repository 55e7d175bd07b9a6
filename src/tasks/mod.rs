//! Algorithmic tasks for emergence studies, generated deterministically (no downloads): multi-digit
//! addition and multiplication, modular arithmetic, copying, reversal, a compositional task
//! (add, then reverse the sum) whose success needs both sub-steps, and closed-book recall of a fixed
//! random table (memorisation, whose capacity grows smoothly with model size).
//!
//! Every task draws example `i` from a stream fixed by the task's seed and `i`. An example belongs
//! to the held-out split when a hash of its operands falls in the test tenth, so the splits never
//! overlap: training draws skip test examples, evaluation enumerates test examples only. Recall is
//! the exception by design: what it measures is whether the trained table was memorised, so it is
//! evaluated on entries of that table.
//! Examples are token sequences over a 20-symbol alphabet (ids 0..20 of the model's vocabulary):
//! `prompt = answer EOS`, mixed into training rows at a configured fraction.

pub mod eval;
pub mod metrics;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Token ids of the task alphabet: digits are 0..=9.
pub mod sym {
    /// '+'.
    pub const PLUS: u32 = 10;
    /// '*'.
    pub const TIMES: u32 = 11;
    /// 'mod'.
    pub const MOD: u32 = 12;
    /// '='.
    pub const EQ: u32 = 13;
    /// 'copy:'.
    pub const COPY: u32 = 14;
    /// 'reverse:'.
    pub const REV: u32 = 15;
    /// End of answer.
    pub const EOS: u32 = 16;
    /// 'add then reverse:'.
    pub const ADDREV: u32 = 17;
    /// Separator between examples.
    pub const SEP: u32 = 18;
    /// Letters of copy/reversal sequences are digits; this id is unused padding.
    pub const PAD: u32 = 19;
    /// Alphabet size: the model's vocabulary must hold at least this many ids.
    pub const SIZE: usize = 20;
}

/// One task of a suite.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskSpec {
    /// a + b with `digits`-digit operands.
    Add {
        /// Digits per operand.
        digits: usize,
    },
    /// a * b with `digits`-digit operands.
    Mul {
        /// Digits per operand.
        digits: usize,
    },
    /// a mod m with a `digits`-digit a and 2 <= m <= 10 (a single-digit answer from a choice set).
    Mod {
        /// Digits of a.
        digits: usize,
        /// The modulus.
        modulus: u32,
    },
    /// Copy a sequence of `length` digits.
    Copy {
        /// Sequence length.
        length: usize,
    },
    /// Reverse a sequence of `length` digits.
    Reverse {
        /// Sequence length.
        length: usize,
    },
    /// Compositional: the digits of a + b, reversed (needs the addition and the reversal).
    AddReverse {
        /// Digits per operand.
        digits: usize,
    },
    /// Composite: the running sums of `terms` numbers of `digits` digits, each written with the
    /// width of the largest possible total and followed by '=' (the last by EOS): `a + b + c =`
    /// -> `s1 = s2 EOS`. Step i (writing s_i) is a sub-task, evaluated on its own with the
    /// earlier steps given; the whole answer is right only when every step is.
    Chain {
        /// Digits per number.
        digits: usize,
        /// Numbers added (2 to 9): terms - 1 steps.
        terms: usize,
    },
    /// Closed-book recall: `k k k =` -> the `length` random digits stored under the 3-digit key
    /// k < `keys` in a fixed table. Trained and evaluated on the table (memorisation).
    Recall {
        /// Entries of the table (1..=1000).
        keys: usize,
        /// Digits per value.
        length: usize,
    },
}

/// Digit `j` of the value stored under key `k` in the recall table (a fixed hash).
fn table_digit(k: u64, j: usize) -> u32 {
    let mut z = (k << 8 | j as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) % 10) as u32
}

/// One example: the prompt and the answer (which ends with EOS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Prompt tokens, ending with '='.
    pub prompt: Vec<u32>,
    /// Answer tokens, ending with EOS.
    pub answer: Vec<u32>,
}

impl Example {
    /// Prompt followed by answer.
    pub fn tokens(&self) -> Vec<u32> {
        let mut t = self.prompt.clone();
        t.extend(&self.answer);
        t
    }
}

fn digits_of(mut x: u64, width: usize) -> Vec<u32> {
    let mut d = vec![0u32; width];
    for slot in d.iter_mut().rev() {
        *slot = (x % 10) as u32;
        x /= 10;
    }
    d
}

/// Width of a chain's running sums: the digits of its largest possible total.
fn chain_width(digits: usize, terms: usize) -> usize {
    number_digits(terms as u64 * (10u64.pow(digits as u32) - 1)).len()
}

fn number_digits(x: u64) -> Vec<u32> {
    x.to_string().bytes().map(|b| (b - b'0') as u32).collect()
}

impl TaskSpec {
    /// A short stable name: add3, mul2, mod7_3, copy6, reverse6, addrev3.
    pub fn name(&self) -> String {
        match self {
            TaskSpec::Add { digits } => format!("add{digits}"),
            TaskSpec::Mul { digits } => format!("mul{digits}"),
            TaskSpec::Mod { digits, modulus } => format!("mod{modulus}_{digits}"),
            TaskSpec::Copy { length } => format!("copy{length}"),
            TaskSpec::Reverse { length } => format!("reverse{length}"),
            TaskSpec::AddReverse { digits } => format!("addrev{digits}"),
            TaskSpec::Recall { keys, length } => format!("recall{keys}_{length}"),
            TaskSpec::Chain { digits, terms } => format!("chain{terms}x{digits}"),
        }
    }

    /// The sub-tasks of a composite task, as (start, length) of each step's span in the answer
    /// (the step's digits and the token after them); empty for the other tasks.
    pub fn steps(&self) -> Vec<(usize, usize)> {
        match self {
            TaskSpec::Chain { digits, terms } => {
                let w = chain_width(*digits, *terms);
                (0..terms - 1).map(|i| (i * (w + 1), w + 1)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Whether the task is evaluated on what it trains on (recall of a memorised table).
    pub fn memorised(&self) -> bool {
        matches!(self, TaskSpec::Recall { .. })
    }

    /// Checks the knobs; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let width = match self {
            TaskSpec::Add { digits }
            | TaskSpec::Mul { digits }
            | TaskSpec::AddReverse { digits }
            | TaskSpec::Mod { digits, .. }
            | TaskSpec::Chain { digits, .. } => *digits,
            TaskSpec::Copy { length }
            | TaskSpec::Reverse { length }
            | TaskSpec::Recall { length, .. } => *length,
        };
        if let TaskSpec::Recall { keys, .. } = self {
            if !(1..=1000).contains(keys) {
                return Err(format!("{}: keys must be 1..=1000", self.name()));
            }
        }
        if !(1..=9).contains(&width) {
            return Err(format!("{}: digits/length must be 1..=9", self.name()));
        }
        if let TaskSpec::Mod { modulus, .. } = self {
            if !(2..=10).contains(modulus) {
                return Err(format!("{}: modulus must be 2..=10", self.name()));
            }
        }
        if let TaskSpec::Chain { terms, .. } = self {
            if !(2..=9).contains(terms) {
                return Err(format!("{}: terms must be 2..=9", self.name()));
            }
        }
        Ok(())
    }

    /// Tokens of the longest prompt + answer.
    pub fn longest_example(&self) -> usize {
        match self {
            TaskSpec::Add { digits } | TaskSpec::AddReverse { digits } => {
                2 * digits + 2 + digits + 2
            }
            TaskSpec::Mul { digits } => 2 * digits + 2 + 2 * digits + 1,
            TaskSpec::Mod { digits, .. } => digits + 3 + 2,
            TaskSpec::Copy { length } | TaskSpec::Reverse { length } => 2 * length + 3,
            TaskSpec::Recall { length, .. } => 3 + 1 + length + 1,
            TaskSpec::Chain { digits, terms } => {
                terms * (digits + 1) + (terms - 1) * (chain_width(*digits, *terms) + 1)
            }
        }
    }

    /// The answer's choice set when it is a single token from a small set (modular arithmetic).
    pub fn choices(&self) -> Option<Vec<u32>> {
        match self {
            TaskSpec::Mod { modulus, .. } => Some((0..*modulus).collect()),
            _ => None,
        }
    }

    /// The example for operands drawn from `rng`.
    fn draw(&self, rng: &mut ChaCha8Rng) -> (Vec<u64>, Example) {
        let operand =
            |rng: &mut ChaCha8Rng, digits: usize| rng.random_range(0..10u64.pow(digits as u32));
        let with_eos = |mut v: Vec<u32>| {
            v.push(sym::EOS);
            v
        };
        match self {
            TaskSpec::Add { digits }
            | TaskSpec::Mul { digits }
            | TaskSpec::AddReverse { digits } => {
                let (a, b) = (operand(rng, *digits), operand(rng, *digits));
                let (op, result) = match self {
                    TaskSpec::Add { .. } => (sym::PLUS, number_digits(a + b)),
                    TaskSpec::Mul { .. } => (sym::TIMES, number_digits(a * b)),
                    _ => {
                        let mut r = number_digits(a + b);
                        r.reverse();
                        (sym::ADDREV, r)
                    }
                };
                let mut prompt = digits_of(a, *digits);
                prompt.push(op);
                prompt.extend(digits_of(b, *digits));
                prompt.push(sym::EQ);
                (
                    vec![a, b],
                    Example {
                        prompt,
                        answer: with_eos(result),
                    },
                )
            }
            TaskSpec::Mod { digits, modulus } => {
                let a = operand(rng, *digits);
                let mut prompt = digits_of(a, *digits);
                prompt.extend([sym::MOD, *modulus % 10, sym::EQ]);
                let answer = with_eos(vec![(a % *modulus as u64) as u32]);
                (vec![a], Example { prompt, answer })
            }
            TaskSpec::Copy { length } | TaskSpec::Reverse { length } => {
                let seq: Vec<u32> = (0..*length).map(|_| rng.random_range(0..10)).collect();
                let reverse = matches!(self, TaskSpec::Reverse { .. });
                let mut prompt = vec![if reverse { sym::REV } else { sym::COPY }];
                prompt.extend(&seq);
                prompt.push(sym::EQ);
                let mut answer = seq.clone();
                if reverse {
                    answer.reverse();
                }
                let key = seq.iter().fold(0u64, |k, &d| k * 10 + d as u64);
                (
                    vec![key],
                    Example {
                        prompt,
                        answer: with_eos(answer),
                    },
                )
            }
            TaskSpec::Chain { digits, terms } => {
                let numbers: Vec<u64> = (0..*terms).map(|_| operand(rng, *digits)).collect();
                let w = chain_width(*digits, *terms);
                let mut prompt = Vec::new();
                for (i, &a) in numbers.iter().enumerate() {
                    if i > 0 {
                        prompt.push(sym::PLUS);
                    }
                    prompt.extend(digits_of(a, *digits));
                }
                prompt.push(sym::EQ);
                let mut answer = Vec::new();
                let mut sum = numbers[0];
                for (i, &a) in numbers.iter().enumerate().skip(1) {
                    sum += a;
                    answer.extend(digits_of(sum, w));
                    answer.push(if i + 1 < numbers.len() {
                        sym::EQ
                    } else {
                        sym::EOS
                    });
                }
                (numbers, Example { prompt, answer })
            }
            TaskSpec::Recall { keys, length } => {
                let k = rng.random_range(0..*keys as u64);
                let mut prompt = digits_of(k, 3);
                prompt.push(sym::EQ);
                let answer = (0..*length).map(|j| table_digit(k, j)).collect();
                (
                    vec![k],
                    Example {
                        prompt,
                        answer: with_eos(answer),
                    },
                )
            }
        }
    }

    /// Whether operands belong to the held-out tenth (a hash of the task and operands); never for
    /// a memorised table, which trains on every entry.
    fn is_test(&self, operands: &[u64]) -> bool {
        if self.memorised() {
            return false;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self
            .name()
            .bytes()
            .map(u64::from)
            .chain(operands.iter().copied())
        {
            h ^= b;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
            h ^= h >> 29;
        }
        h.is_multiple_of(10)
    }

    /// A training example: the `i`-th draw of the stream `seed` that is not in the test split.
    pub fn train_example(&self, seed: u64, i: u64) -> Example {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7a5c_0001);
        rng.set_stream(i);
        loop {
            let (ops, ex) = self.draw(&mut rng);
            if !self.is_test(&ops) {
                return ex;
            }
        }
    }

    /// The first `n` distinct held-out examples (fewer when the task has fewer), the same for every
    /// run and evaluation.
    pub fn test_examples(&self, n: usize) -> Vec<Example> {
        let mut rng = ChaCha8Rng::seed_from_u64(0x7e57_7e57);
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        // Small tasks have few test examples: stop after many draws without a new one.
        let mut misses = 0;
        while out.len() < n && misses < 20_000 {
            let (ops, ex) = self.draw(&mut rng);
            if (self.memorised() || self.is_test(&ops)) && seen.insert(ops) {
                out.push(ex);
                misses = 0;
            } else {
                misses += 1;
            }
        }
        out
    }
}

/// The `tasks` section of a run: a suite mixed into training and evaluated at every evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksConfig {
    /// The tasks.
    pub suite: Vec<TaskSpec>,
    /// Fraction of training rows made of task examples (the rest is the corpus).
    #[serde(default = "default_mix")]
    pub mix: f64,
    /// Held-out examples per task per evaluation.
    #[serde(default = "default_n_eval")]
    pub n_eval: usize,
    /// Seed of the training draws.
    #[serde(default)]
    pub seed: u64,
    /// Resolves small success rates by sampling (absent: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_until: Option<PassUntil>,
}

/// PassUntil (Hu et al. 2024): at an evaluation where a task's greedy exact match is below
/// `below`, answers are sampled at temperature 1 for the held-out examples, round after round,
/// until `successes` exact answers or `max_samples` samples; the success rate comes with its 95%
/// Wilson interval (metric `pass_until`), resolving rates far below 1 / n_eval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassUntil {
    /// Successes to stop at.
    #[serde(default = "default_successes")]
    pub successes: usize,
    /// Most samples per task and evaluation.
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
    /// Sample only while greedy exact match is below this (before the jump).
    #[serde(default = "default_below")]
    pub below: f64,
}

fn default_successes() -> usize {
    20
}

fn default_max_samples() -> usize {
    5_000
}

fn default_below() -> f64 {
    0.1
}

fn default_mix() -> f64 {
    0.5
}

fn default_n_eval() -> usize {
    200
}

impl TasksConfig {
    /// Checks the settings against the model's vocabulary and context: (key under `tasks`, message).
    pub fn validate(&self, vocab: usize, seq_len: usize) -> Result<(), (String, String)> {
        if self.suite.is_empty() {
            return Err(("suite".into(), "needs at least one task".into()));
        }
        for t in &self.suite {
            t.validate().map_err(|m| ("suite".to_string(), m))?;
        }
        if !(0.0..=1.0).contains(&self.mix) {
            return Err(("mix".into(), format!("must be in [0, 1], got {}", self.mix)));
        }
        if self.n_eval == 0 {
            return Err(("n_eval".into(), "must be at least 1".into()));
        }
        if let Some(p) = &self.pass_until {
            if p.successes == 0 || p.max_samples < p.successes {
                return Err((
                    "pass_until".into(),
                    format!(
                        "successes must be at least 1 and max_samples at least successes, got {} and {}",
                        p.successes, p.max_samples
                    ),
                ));
            }
            if !(0.0..=1.0).contains(&p.below) {
                return Err((
                    "pass_until.below".into(),
                    format!("must be in [0, 1], got {}", p.below),
                ));
            }
        }
        for t in &self.suite {
            let longest = t.longest_example();
            if longest > seq_len {
                return Err((
                    "suite".into(),
                    format!(
                        "{}: examples of up to {longest} tokens do not fit model.seq_len {seq_len}",
                        t.name()
                    ),
                ));
            }
        }
        if vocab < sym::SIZE {
            return Err((
                "suite".into(),
                format!(
                    "tasks use token ids 0..{}: model.vocab {vocab} is too small",
                    sym::SIZE
                ),
            ));
        }
        Ok(())
    }

    /// Replaces a `mix` fraction of the step's rows (each `seq + 1` tokens) with rows of task
    /// examples, chosen and filled from streams fixed by the task seed, `step` and the row.
    pub fn mix_into(&self, rows: &mut [i64], step: u64, seq: usize) {
        let width = seq + 1;
        for (r, row) in rows.chunks_exact_mut(width).enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x0005_7a5c);
            rng.set_stream(step.wrapping_mul(1 << 20).wrapping_add(r as u64));
            if rng.random::<f64>() >= self.mix {
                continue;
            }
            let mut filled = 0;
            let mut k = 0u64;
            let base = rng.random::<u64>() >> 1;
            while filled < width {
                let task = &self.suite[rng.random_range(0..self.suite.len())];
                let ex = task.train_example(self.seed, base.wrapping_add(k));
                k += 1;
                let mut toks = ex.tokens();
                toks.push(sym::SEP);
                for t in toks.into_iter().take(width - filled) {
                    row[filled] = t as i64;
                    filled += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_right_and_deterministic() {
        let add = TaskSpec::Add { digits: 3 };
        let e = add.train_example(1, 5);
        assert_eq!(e, add.train_example(1, 5));
        // Decode and check a + b.
        let num = |d: &[u32]| d.iter().fold(0u64, |x, &v| x * 10 + v as u64);
        let (a, b) = (num(&e.prompt[..3]), num(&e.prompt[4..7]));
        assert_eq!(e.prompt[3], sym::PLUS);
        assert_eq!(num(&e.answer[..e.answer.len() - 1]), a + b);
        assert_eq!(*e.answer.last().unwrap(), sym::EOS);
        let rev = TaskSpec::Reverse { length: 5 }.train_example(0, 0);
        let mut s = rev.prompt[1..6].to_vec();
        s.reverse();
        assert_eq!(&rev.answer[..5], &s[..]);
        let m = TaskSpec::Mod {
            digits: 2,
            modulus: 7,
        }
        .train_example(0, 3);
        assert_eq!(m.answer[0] as u64, num(&m.prompt[..2]) % 7);
        let ar = TaskSpec::AddReverse { digits: 2 }.train_example(0, 9);
        let mut sum = number_digits(num(&ar.prompt[..2]) + num(&ar.prompt[3..5]));
        sum.reverse();
        assert_eq!(&ar.answer[..ar.answer.len() - 1], &sum[..]);
        // 3 numbers of 2 digits: running sums 3 digits wide (3 x 99 = 297), each followed by '='
        // or EOS.
        let chain = TaskSpec::Chain {
            digits: 2,
            terms: 3,
        };
        let c = chain.train_example(0, 4);
        let (a, b, d) = (
            num(&c.prompt[..2]),
            num(&c.prompt[3..5]),
            num(&c.prompt[6..8]),
        );
        assert_eq!(c.prompt.len(), 9);
        assert_eq!(chain.steps(), vec![(0, 4), (4, 4)]);
        assert_eq!(num(&c.answer[..3]), a + b);
        assert_eq!(c.answer[3], sym::EQ);
        assert_eq!(num(&c.answer[4..7]), a + b + d);
        assert_eq!(c.answer[7], sym::EOS);
        assert_eq!(c.tokens().len(), chain.longest_example());
    }

    #[test]
    fn train_and_test_splits_do_not_overlap() {
        for task in [
            TaskSpec::Add { digits: 2 },
            TaskSpec::Mul { digits: 2 },
            TaskSpec::Mod {
                digits: 2,
                modulus: 7,
            },
            TaskSpec::Copy { length: 3 },
        ] {
            let test: std::collections::HashSet<Vec<u32>> = task
                .test_examples(1000)
                .iter()
                .map(Example::tokens)
                .collect();
            assert!(!test.is_empty(), "{}", task.name());
            for i in 0..3000 {
                assert!(
                    !test.contains(&task.train_example(3, i).tokens()),
                    "{}",
                    task.name()
                );
            }
            // About a tenth of the operand space is held out.
            if let TaskSpec::Add { digits: 2 } = task {
                assert!((700..1300).contains(&test.len()), "{}", test.len());
            }
            assert_eq!(task.test_examples(50), task.test_examples(50));
        }
    }

    #[test]
    fn recall_evaluates_the_trained_table() {
        let task = TaskSpec::Recall {
            keys: 50,
            length: 6,
        };
        assert!(task.validate().is_ok());
        let test = task.test_examples(100);
        // Every key once, each a fixed value.
        assert_eq!(test.len(), 50);
        let train: std::collections::HashSet<Vec<u32>> = (0..2000)
            .map(|i| task.train_example(1, i).tokens())
            .collect();
        assert!(test.iter().all(|e| train.contains(&e.tokens())));
        let e = &test[0];
        assert_eq!((e.prompt.len(), e.answer.len()), (4, 7));
        assert_eq!(*e.prompt.last().unwrap(), sym::EQ);
        // Values look random: all ten digits appear.
        let digits: std::collections::HashSet<u32> =
            test.iter().flat_map(|e| e.answer[..6].to_vec()).collect();
        assert_eq!(digits.len(), 10);
        assert!(TaskSpec::Recall {
            keys: 1001,
            length: 6
        }
        .validate()
        .is_err());
    }

    #[test]
    fn mixing_replaces_about_the_fraction_of_rows_deterministically() {
        let cfg = TasksConfig {
            suite: vec![TaskSpec::Add { digits: 3 }],
            mix: 0.25,
            n_eval: 10,
            seed: 0,
            pass_until: None,
        };
        let seq = 31;
        let original: Vec<i64> = vec![63; 400 * (seq + 1)];
        let mut a = original.clone();
        cfg.mix_into(&mut a, 7, seq);
        let mut b = original.clone();
        cfg.mix_into(&mut b, 7, seq);
        assert_eq!(a, b);
        let replaced = a.chunks(seq + 1).filter(|r| r[0] != 63).count();
        assert!((60..140).contains(&replaced), "{replaced} of 400 rows");
        assert!(a
            .iter()
            .all(|&t| t == 63 || (0..sym::SIZE as i64).contains(&t)));
    }
}
