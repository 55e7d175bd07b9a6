//! Evaluating a model on a task suite: greedy decoding for exact match and edit distance, and one
//! teacher-forced pass for per-token accuracy, the log-probability of the answer and, where the answer
//! comes from a choice set, the Brier score. All metrics of a task come from the same examples.

use super::metrics::{brier, edit_distance, exact_match, truncate_at, wilson};
use super::{sym, Example, PassUntil, TaskSpec, TasksConfig};
use burn::prelude::*;
use models::fused::log_softmax;
use models::{Arch, Decoder, ModelConfig, Precision, Source};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One metric of one task at one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMetric {
    /// Task name (add3, mod7_2, ...).
    pub task: String,
    /// exact_match, token_accuracy, edit_distance, answer_logprob, brier, answer_length.
    pub metric: &'static str,
    /// Mean over examples (a proportion for accuracies).
    pub value: f64,
    /// Examples evaluated.
    pub n_examples: usize,
    /// 95% Wilson interval for proportions.
    pub ci: Option<(f64, f64)>,
}

/// Examples per forward pass.
const CHUNK: usize = 64;

/// Logits [rows, t - skipped, vocab] of token rows [rows, t] whose first `prompt` tokens are the
/// prompt, and how many leading positions they skip: none for decoders (the prompt is causal or
/// bidirectional context); for an encoder-decoder the prompt is the encoder's input and the
/// decoder starts at the prompt's last token, position prompt - 1.
fn logits(
    model: &Decoder,
    model_cfg: &ModelConfig,
    flat: Vec<i64>,
    [n, t]: [usize; 2],
    prompt: usize,
    device: &Device,
) -> (Tensor<3>, usize) {
    let tokens = |values, t| Tensor::<2, Int>::from_data(TensorData::new(values, [n, t]), device);
    match model_cfg.arch {
        Arch::Causal => (
            model.forward_masked(tokens(flat, t), &Decoder::causal_mask(t, device)),
            0,
        ),
        Arch::Prefix => {
            let mask = Decoder::prefix_mask(&vec![prompt; n], t, device);
            (model.forward_masked(tokens(flat, t), &mask), 0)
        }
        Arch::EncoderDecoder => {
            let s = prompt.saturating_sub(1);
            let rows: Vec<&[i64]> = flat.chunks_exact(t).collect();
            let inputs: Vec<&[i64]> = rows.iter().map(|r| &r[..prompt]).collect();
            let target: Vec<i64> = rows.iter().flat_map(|r| r[s..].iter().copied()).collect();
            let mask = Decoder::causal_mask(t - s, device);
            let source = Source::new(&inputs, device);
            let out = model.forward_from(
                Some(&source),
                tokens(target, t - s),
                &mask,
                &[],
                Precision::F32,
            );
            (out.logits, s)
        }
    }
}

/// Log-probabilities [rows][t][vocab] of padded token rows (an encoder-decoder's positions before
/// the prompt's last token, which no metric reads, are zeros).
fn log_probs(
    model: &Decoder,
    model_cfg: &ModelConfig,
    rows: &[Vec<u32>],
    prompt: usize,
    device: &Device,
) -> Vec<Vec<Vec<f32>>> {
    let t = rows.iter().map(Vec::len).max().unwrap_or(1);
    let n = rows.len();
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|r| (0..t).map(move |i| *r.get(i).unwrap_or(&sym::PAD) as i64))
        .collect();
    let (logits, skipped) = logits(model, model_cfg, flat, [n, t], prompt, device);
    let [_, read, v] = logits.dims();
    let lp: Vec<f32> = log_softmax(logits)
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 log-probabilities");
    (0..n)
        .map(|r| {
            (0..t)
                .map(|i| match i.checked_sub(skipped) {
                    Some(j) => lp[(r * read + j) * v..(r * read + j + 1) * v].to_vec(),
                    None => vec![0.0; v],
                })
                .collect()
        })
        .collect()
}

fn argmax(xs: &[f32]) -> u32 {
    xs.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i as u32)
}

/// Greedy continuation of `prompts` (equal lengths) by `steps` tokens.
fn greedy(
    model: &Decoder,
    model_cfg: &ModelConfig,
    prompts: &[Vec<u32>],
    steps: usize,
    device: &Device,
) -> Vec<Vec<u32>> {
    continue_with(model, model_cfg, prompts, steps, device, argmax)
}

/// A token drawn from the distribution whose log-probabilities are `lp` (temperature 1).
fn draw(lp: &[f32], rng: &mut ChaCha8Rng) -> u32 {
    let mut u: f64 = rng.random();
    for (i, &l) in lp.iter().enumerate() {
        u -= (l as f64).exp();
        if u < 0.0 {
            return i as u32;
        }
    }
    argmax(lp)
}

/// Continuation of `prompts` (equal lengths) by `steps` tokens, each chosen by `pick` from the
/// next token's log-probabilities.
fn continue_with(
    model: &Decoder,
    model_cfg: &ModelConfig,
    prompts: &[Vec<u32>],
    steps: usize,
    device: &Device,
    mut pick: impl FnMut(&[f32]) -> u32,
) -> Vec<Vec<u32>> {
    let prompt = prompts.first().map_or(0, Vec::len);
    let mut seqs: Vec<Vec<u32>> = prompts.to_vec();
    for _ in 0..steps {
        let lp = log_probs(model, model_cfg, &seqs, prompt, device);
        for (s, l) in seqs.iter_mut().zip(lp) {
            let last = l.last().expect("non-empty row");
            s.push(pick(last));
        }
    }
    seqs.into_iter().map(|s| s[prompt..].to_vec()).collect()
}

/// PassUntil: samples answers (temperature 1) for `examples`, round after round, until
/// `settings.successes` exact answers or `settings.max_samples` samples, from a stream fixed by
/// `seed`; the success rate with its 95% Wilson interval, over the samples drawn.
pub fn pass_until(
    model: &Decoder,
    model_cfg: &ModelConfig,
    task: &TaskSpec,
    examples: &[Example],
    settings: &PassUntil,
    seed: u64,
    device: &Device,
) -> TaskMetric {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut successes, mut samples) = (0usize, 0usize);
    'rounds: while !examples.is_empty() {
        for chunk in examples.chunks(CHUNK) {
            if successes >= settings.successes || samples >= settings.max_samples {
                break 'rounds;
            }
            let take = chunk.len().min(settings.max_samples - samples);
            let chunk = &chunk[..take];
            let prompts: Vec<Vec<u32>> = chunk.iter().map(|e| e.prompt.clone()).collect();
            let longest = chunk.iter().map(|e| e.answer.len()).max().unwrap_or(0);
            let sampled = continue_with(model, model_cfg, &prompts, longest, device, |lp| {
                draw(lp, &mut rng)
            });
            successes += chunk
                .iter()
                .zip(&sampled)
                .filter(|(e, s)| exact_match(s, &e.answer, sym::EOS))
                .count();
            samples += take;
        }
    }
    TaskMetric {
        task: task.name(),
        metric: "pass_until",
        value: successes as f64 / samples.max(1) as f64,
        n_examples: samples,
        ci: Some(wilson(successes, samples, 1.96)),
    }
}

/// Every metric of one task on its held-out examples.
pub fn evaluate_task(
    model: &Decoder,
    model_cfg: &ModelConfig,
    task: &TaskSpec,
    examples: &[Example],
    device: &Device,
) -> Vec<TaskMetric> {
    let n = examples.len();
    let (mut em, mut tok_right, mut tok_total) = (0usize, 0usize, 0usize);
    let (mut edit, mut logprob, mut brier_sum, mut len_sum) = (0.0, 0.0, 0.0, 0.0);
    let choices = task.choices();
    for chunk in examples.chunks(CHUNK) {
        let prompt = chunk[0].prompt.len();
        let full: Vec<Vec<u32>> = chunk.iter().map(Example::tokens).collect();
        let lp = log_probs(model, model_cfg, &full, prompt, device);
        let longest = chunk.iter().map(|e| e.answer.len()).max().unwrap_or(0);
        let prompts: Vec<Vec<u32>> = chunk.iter().map(|e| e.prompt.clone()).collect();
        let generated = greedy(model, model_cfg, &prompts, longest, device);
        for ((ex, l), gen) in chunk.iter().zip(&lp).zip(&generated) {
            len_sum += ex.answer.len() as f64;
            for (j, &want) in ex.answer.iter().enumerate() {
                let at = &l[ex.prompt.len() + j - 1];
                tok_right += usize::from(argmax(at) == want);
                tok_total += 1;
                logprob += at[want as usize] as f64;
            }
            em += usize::from(exact_match(gen, &ex.answer, sym::EOS));
            edit += edit_distance(truncate_at(gen, sym::EOS), &ex.answer) as f64;
            if let Some(c) = &choices {
                let at = &l[ex.prompt.len() - 1];
                let p: Vec<f64> = c.iter().map(|&k| (at[k as usize] as f64).exp()).collect();
                let z: f64 = p.iter().sum();
                let p: Vec<f64> = p.iter().map(|v| v / z).collect();
                let correct = c.iter().position(|&k| k == ex.answer[0]).unwrap_or(0);
                brier_sum += brier(&p, correct);
            }
        }
    }
    let name = task.name();
    let metric = |metric, value, ci| TaskMetric {
        task: name.clone(),
        metric,
        value,
        n_examples: n,
        ci,
    };
    let nf = n.max(1) as f64;
    let mut out = vec![
        metric("exact_match", em as f64 / nf, Some(wilson(em, n, 1.96))),
        metric(
            "token_accuracy",
            tok_right as f64 / tok_total.max(1) as f64,
            Some(wilson(tok_right, tok_total, 1.96)),
        ),
        metric("edit_distance", edit / nf, None),
        metric("answer_logprob", logprob / nf, None),
        metric("answer_length", len_sum / nf, None),
    ];
    // Chance of an exact match: one over the choice set, or a uniform guess of every answer digit.
    let chance = match &choices {
        Some(c) => {
            out.push(metric("brier", brier_sum / nf, None));
            1.0 / c.len() as f64
        }
        None => 10f64.powf(-(len_sum / nf - 1.0)),
    };
    out.push(metric("chance", chance, None));
    out
}

/// Exact match of each step of a composite task on its own (task `<name>.step<i>`): greedy
/// decoding of the step's span from the prompt and the correct earlier steps.
pub fn evaluate_steps(
    model: &Decoder,
    model_cfg: &ModelConfig,
    task: &TaskSpec,
    examples: &[Example],
    device: &Device,
) -> Vec<TaskMetric> {
    let n = examples.len();
    task.steps()
        .into_iter()
        .enumerate()
        .map(|(i, (start, len))| {
            let mut right = 0;
            for chunk in examples.chunks(CHUNK) {
                let prompts: Vec<Vec<u32>> = chunk
                    .iter()
                    .map(|e| [e.prompt.as_slice(), &e.answer[..start]].concat())
                    .collect();
                let generated = greedy(model, model_cfg, &prompts, len, device);
                right += chunk
                    .iter()
                    .zip(&generated)
                    .filter(|(e, g)| g[..] == e.answer[start..start + len])
                    .count();
            }
            TaskMetric {
                task: format!("{}.step{}", task.name(), i + 1),
                metric: "exact_match",
                value: right as f64 / n.max(1) as f64,
                n_examples: n,
                ci: Some(wilson(right, n, 1.96)),
            }
        })
        .collect()
}

/// Every metric of every task of the suite at the evaluation of step `step`; `examples[i]` are
/// the held-out examples of task i (drawn once per run with [`held_out`]); a composite task's
/// steps are evaluated on their own too ([`evaluate_steps`]). With `pass_until`, a
/// task whose greedy exact match is below its bar also gets PassUntil's rate, sampled from a
/// stream fixed by the task seed, the step and the task (a resumed run draws the same).
pub fn evaluate_suite(
    model: &Decoder,
    model_cfg: &ModelConfig,
    tasks: &TasksConfig,
    examples: &[Vec<Example>],
    step: u64,
    device: &Device,
) -> Vec<TaskMetric> {
    let mut out = Vec::new();
    for (i, (t, ex)) in tasks.suite.iter().zip(examples).enumerate() {
        let metrics = evaluate_task(model, model_cfg, t, ex, device);
        let greedy = metrics
            .iter()
            .find(|m| m.metric == "exact_match")
            .map(|m| m.value);
        out.extend(metrics);
        out.extend(evaluate_steps(model, model_cfg, t, ex, device));
        if let (Some(p), Some(em)) = (&tasks.pass_until, greedy) {
            if em < p.below {
                let seed = tasks.seed ^ 0x9A55_0000 ^ step.wrapping_mul(1 << 8) ^ i as u64;
                out.push(pass_until(model, model_cfg, t, ex, p, seed, device));
            }
        }
    }
    out
}

/// The held-out examples of every task of the suite, the same for every evaluation.
pub fn held_out(tasks: &TasksConfig) -> Vec<Vec<Example>> {
    tasks
        .suite
        .iter()
        .map(|t| t.test_examples(tasks.n_eval))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::PrefixLen;

    /// An untrained model of `cfg` on the CPU, initialised from `seed`.
    fn untrained(cfg: &ModelConfig, seed: u64) -> (Decoder, Device) {
        let device = crate::backend::device(crate::backend::cpu_backend(), 0).unwrap();
        device.seed(seed);
        (Decoder::new(cfg, &device), device)
    }

    #[test]
    fn draws_follow_the_distribution() {
        let lp: Vec<f32> = [0.7f32, 0.2, 0.1].iter().map(|p| p.ln()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[draw(&lp, &mut rng) as usize] += 1;
        }
        for (c, p) in counts.iter().zip([0.7, 0.2, 0.1]) {
            assert!((*c as f64 / 20_000.0 - p).abs() < 0.01, "{counts:?}");
        }
    }

    /// PassUntil stops at its successes or its cap, is fixed by its seed, and its interval holds
    /// its rate.
    #[test]
    fn pass_until_stops_at_successes_or_the_cap() {
        let cfg = ModelConfig::new(1, 16, 2, 20, 16);
        let (model, device) = untrained(&cfg, 3);
        let task = TaskSpec::Mod {
            digits: 2,
            modulus: 3,
        };
        let examples = task.test_examples(8);
        let run = |successes, max_samples, seed| {
            let p = PassUntil {
                successes,
                max_samples,
                below: 1.0,
            };
            pass_until(&model, &cfg, &task, &examples, &p, seed, &device)
        };
        // An untrained model over 20 ids answers "d EOS" right about once in 400 samples.
        let capped = run(1_000, 100, 7);
        assert_eq!(capped.n_examples, 100);
        let stopped = run(2, 20_000, 7);
        let k = (stopped.value * stopped.n_examples as f64).round() as usize;
        assert!(k >= 2 && stopped.n_examples < 20_000, "{stopped:?}");
        // At most one chunk past the sample that reached the successes.
        assert_eq!(run(2, 20_000, 7), stopped);
        let (lo, hi) = stopped.ci.unwrap();
        assert!(
            lo <= stopped.value && stopped.value <= hi && hi < 0.5,
            "{stopped:?}"
        );
    }

    /// A composite task's whole answer is right exactly when every step is right given the
    /// earlier ones: the composite's exact match is the joint success of its steps, at most the
    /// least accurate step's.
    #[test]
    fn a_composite_is_right_when_all_its_steps_are() {
        let cfg = ModelConfig::new(1, 16, 2, 20, 24);
        let (model, device) = untrained(&cfg, 9);
        let task = TaskSpec::Chain {
            digits: 1,
            terms: 3,
        };
        let examples = task.test_examples(40);
        let steps = evaluate_steps(&model, &cfg, &task, &examples, &device);
        assert_eq!(
            steps.iter().map(|m| m.task.as_str()).collect::<Vec<_>>(),
            ["chain3x1.step1", "chain3x1.step2"]
        );
        let whole = evaluate_task(&model, &cfg, &task, &examples, &device);
        let em = whole
            .iter()
            .find(|m| m.metric == "exact_match")
            .unwrap()
            .value;
        assert!(em <= steps.iter().map(|m| m.value).fold(1.0, f64::min));
        // An oracle that answers every step right gets every step and the whole answer right:
        // the step spans tile the answer.
        let spans: usize = task.steps().iter().map(|s| s.1).sum();
        assert!(examples.iter().all(|e| e.answer.len() == spans));
    }

    /// Greedy decoding and the teacher-forced pass read the same positions: the first generated
    /// token is the argmax at the prompt's last position, and a position's log-probabilities do
    /// not depend on the tokens after it, for every architecture.
    #[test]
    fn greedy_and_teacher_forced_passes_line_up() {
        let device = crate::backend::device(crate::backend::cpu_backend(), 0).unwrap();
        device.seed(5);
        let prompts: Vec<Vec<u32>> = (0..3u32)
            .map(|r| (0..5).map(|i| (7 * r + 3 * i + 1) % 32).collect())
            .collect();
        let full: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| [p.as_slice(), &[4, 9, 2]].concat())
            .collect();
        for arch in [Arch::Causal, Arch::Prefix, Arch::EncoderDecoder] {
            let mut cfg = ModelConfig::new(1, 16, 2, 32, 16);
            cfg.arch = arch;
            cfg.prefix = arch.has_prefix().then_some(PrefixLen::Fixed(5));
            let model = Decoder::new(&cfg, &device);
            let first = greedy(&model, &cfg, &prompts, 1, &device);
            let forced = log_probs(&model, &cfg, &full, 5, &device);
            let alone = log_probs(&model, &cfg, &prompts, 5, &device);
            for r in 0..prompts.len() {
                assert_eq!(first[r], vec![argmax(&forced[r][4])], "{arch:?}");
                let diff = forced[r][4]
                    .iter()
                    .zip(&alone[r][4])
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(diff < 1e-5, "{arch:?}: {diff}");
                // Later positions see more of the answer: their distributions differ.
                assert_ne!(forced[r][5], forced[r][6], "{arch:?}");
            }
        }
    }
}
