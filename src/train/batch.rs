//! A micro-batch as the model sees it: inputs, targets, the attention mask and which targets carry
//! loss (all of them for a causal decoder; the non-prefix ones for a prefix decoder and an
//! encoder-decoder, whose encoder reads the prefix).

use burn::prelude::*;
use models::fused::log_softmax;
use models::{Arch, Decoder, LayerStats, ModelConfig, Precision, PrefixLen, Source};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Prefix lengths of the `rows` sequences of one step (or validation batch): zeros for a causal
/// decoder, the fixed length, or uniform draws from a stream fixed by `seed` and `index`, so a step's
/// prefixes do not depend on micro-batching or resumption.
pub fn prefix_lengths(model: &ModelConfig, seed: u64, index: u64, rows: usize) -> Vec<usize> {
    if !model.arch.has_prefix() {
        return vec![0; rows];
    }
    match model.prefix {
        Some(PrefixLen::Fixed(p)) => vec![p; rows],
        Some(PrefixLen::Range { min, max }) => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5072_6566_6978);
            rng.set_stream(index);
            (0..rows).map(|_| rng.random_range(min..=max)).collect()
        }
        None => vec![0; rows],
    }
}

/// Loss-bearing positions of a sequence of `seq` inputs with prefix `p`: position i predicts token
/// i + 1, which is a target when i + 1 >= p.
pub fn loss_positions(p: usize, seq: usize) -> usize {
    seq - p.saturating_sub(1)
}

/// One micro-batch on a device.
pub struct Batch {
    /// Inputs [rows, seq].
    pub x: Tensor<2, Int>,
    /// Targets [rows * seq].
    pub y: Tensor<1, Int>,
    /// Attention mask [rows or 1, 1, seq, seq] (true = masked).
    pub mask: Tensor<4, Bool>,
    /// Per-target loss weight (1 on loss-bearing targets, 0 on prefix targets); `None` = all 1.
    pub weights: Option<Tensor<1>>,
    /// Number of loss-bearing targets.
    pub loss_tokens: usize,
    /// The encoder's input (encoder-decoders only).
    pub source: Option<Source>,
}

impl Batch {
    /// Splits windows of seq + 1 tokens into inputs and targets, with the masks for `prefix`
    /// (one length per row), as a model of `arch` reads them.
    pub fn new(rows: &[i64], prefix: &[usize], seq: usize, arch: Arch, device: &Device) -> Batch {
        if arch == Arch::EncoderDecoder {
            return Self::seq2seq(rows, prefix, seq, device);
        }
        let n = prefix.len();
        let mut x = Vec::with_capacity(n * seq);
        let mut y = Vec::with_capacity(n * seq);
        for r in rows.chunks_exact(seq + 1) {
            x.extend_from_slice(&r[..seq]);
            y.extend_from_slice(&r[1..]);
        }
        let causal = prefix.iter().all(|&p| p <= 1);
        let loss_tokens = prefix.iter().map(|&p| loss_positions(p, seq)).sum();
        let weights = (!causal).then(|| {
            let w: Vec<f32> = prefix
                .iter()
                .flat_map(|&p| (0..seq).map(move |i| if i + 1 >= p { 1.0 } else { 0.0 }))
                .collect();
            Tensor::<1>::from_data(TensorData::new(w, [n * seq]), device)
        });
        Batch {
            x: Tensor::<2, Int>::from_data(TensorData::new(x, [n, seq]), device),
            y: Tensor::<1, Int>::from_data(TensorData::new(y, [n * seq]), device),
            mask: if causal {
                Decoder::causal_mask(seq, device)
            } else {
                Decoder::prefix_mask(prefix, seq, device)
            },
            weights,
            loss_tokens,
            source: None,
        }
    }

    /// An encoder-decoder's batch: the encoder reads a row's first p tokens; the decoder reads
    /// tokens s..seq, s = max(p - 1, 0), and predicts tokens s + 1..=seq (the targets a prefix
    /// decoder's loss covers), each row padded at its end to the longest one (padding carries no
    /// loss and, under the causal mask, does not reach the row's own positions).
    fn seq2seq(rows: &[i64], prefix: &[usize], seq: usize, device: &Device) -> Batch {
        let n = prefix.len();
        let starts: Vec<usize> = prefix.iter().map(|p| p.saturating_sub(1)).collect();
        let len = seq - starts.iter().copied().min().unwrap_or(0);
        let (mut x, mut y, mut w) = (Vec::new(), Vec::new(), Vec::new());
        let mut inputs = Vec::with_capacity(n);
        for ((r, &p), &s) in rows.chunks_exact(seq + 1).zip(prefix).zip(&starts) {
            let pad = len - (seq - s);
            x.extend(r[s..seq].iter().copied().chain(std::iter::repeat_n(0, pad)));
            y.extend(
                r[s + 1..]
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(0, pad)),
            );
            w.extend((0..len).map(|i| if i < seq - s { 1f32 } else { 0.0 }));
            inputs.push(&r[..p]);
        }
        let ragged = starts.iter().any(|&s| s != starts[0]);
        Batch {
            x: Tensor::<2, Int>::from_data(TensorData::new(x, [n, len]), device),
            y: Tensor::<1, Int>::from_data(TensorData::new(y, [n * len]), device),
            mask: Decoder::causal_mask(len, device),
            weights: ragged.then(|| Tensor::<1>::from_data(TensorData::new(w, [n * len]), device)),
            loss_tokens: prefix.iter().map(|&p| loss_positions(p, seq)).sum(),
            source: Some(Source::new(&inputs, device)),
        }
    }

    /// A batch of `rows` uniformly random token sequences of length `seq` as a model of `cfg`
    /// reads them (its prefix lengths drawn from stream 0 of seed 0; benchmarks and backend
    /// tests).
    pub fn random(
        rng: &mut impl Rng,
        cfg: &ModelConfig,
        rows: usize,
        seq: usize,
        device: &Device,
    ) -> Batch {
        let tokens: Vec<i64> = (0..rows * (seq + 1))
            .map(|_| rng.random_range(0..cfg.vocab as i64))
            .collect();
        let prefix = prefix_lengths(cfg, 0, 0, rows);
        Batch::new(&tokens, &prefix, seq, cfg.arch, device)
    }

    /// Logits [rows, positions, vocab] of this batch's inputs (no MoE biases, f32).
    pub fn logits(&self, model: &Decoder) -> Tensor<3> {
        let out = model.forward_from(
            self.source.as_ref(),
            self.x.clone(),
            &self.mask,
            &[],
            Precision::F32,
        );
        out.logits
    }

    /// The training forward pass: the objective to differentiate (cross-entropy of the
    /// loss-bearing targets summed and divided by `denominator`, the loss tokens of the whole step,
    /// plus this micro-batch's share of the MoE routing losses and of the multi-token prediction
    /// loss), the next-token cross-entropy alone, and the routing statistics. `biases`: MoE
    /// selection biases per layer (empty: none).
    pub fn forward(
        &self,
        model: &Decoder,
        denominator: usize,
        biases: &[Vec<f32>],
        precision: Precision,
    ) -> Pass {
        self.pass(model, denominator, biases, precision, true)
    }

    /// The evaluation forward pass: as [`Batch::forward`] with a denominator of 1 (summed
    /// cross-entropy) and without the multi-token prediction modules.
    pub fn evaluate(&self, model: &Decoder, biases: &[Vec<f32>], precision: Precision) -> Pass {
        self.pass(model, 1, biases, precision, false)
    }

    fn pass(
        &self,
        model: &Decoder,
        denominator: usize,
        biases: &[Vec<f32>],
        precision: Precision,
        training: bool,
    ) -> Pass {
        let out = model.forward_from(
            self.source.as_ref(),
            self.x.clone(),
            &self.mask,
            biases,
            precision,
        );
        let [b, t, _] = out.logits.dims();
        let nll = token_nll(out.logits, self.y.clone());
        let summed = match &self.weights {
            Some(w) => (nll * w.clone()).sum(),
            None => nll.sum(),
        };
        let ce = summed.div_scalar(denominator as f64);
        let mut objective = match out.aux {
            Some(aux) => ce.clone() + aux.mul_scalar(self.loss_tokens as f64 / denominator as f64),
            None => ce.clone(),
        };
        if let (true, Some(hidden)) = (training, out.hidden) {
            // Depth k predicts target i + k from position i: the targets k.. of each row, averaged
            // over the step's (causal) rows like the next-token loss, then over the depths.
            let targets = self.y.clone().reshape([b, t]);
            let depths = model.mtp_logits(self.x.clone(), hidden);
            let share = model.mtp_weight() / depths.len() as f64;
            for (i, logits) in depths.into_iter().enumerate() {
                let k = i + 1;
                let y = targets.clone().slice([0..b, k..t]).reshape([b * (t - k)]);
                let mean_share = t as f64 / (denominator as f64 * (t - k) as f64);
                objective = objective + token_nll(logits, y).sum().mul_scalar(share * mean_share);
            }
        }
        Pass {
            objective,
            ce,
            stats: out.stats,
        }
    }
}

/// Negative log-likelihood of each target [b * t] under logits [b, t, vocab].
fn token_nll(logits: Tensor<3>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [b, t, v] = logits.dims();
    log_softmax(logits.reshape([b * t, v]))
        .gather(1, targets.reshape([b * t, 1]))
        .reshape([b * t])
        .neg()
}

/// What one micro-batch's forward pass gives the trainer.
pub struct Pass {
    /// The loss to differentiate.
    pub objective: Tensor<1>,
    /// The cross-entropy part (reported as the training loss).
    pub ce: Tensor<1>,
    /// MoE routing statistics per layer.
    pub stats: Vec<LayerStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_positions_count_the_targets() {
        assert_eq!(loss_positions(0, 8), 8);
        assert_eq!(loss_positions(1, 8), 8);
        // Prefix of 3: positions 2..8 predict tokens 3..9.
        assert_eq!(loss_positions(3, 8), 6);
    }

    #[test]
    fn prefix_draws_are_fixed_by_seed_and_index() {
        let mut cfg = ModelConfig::new(1, 8, 1, 16, 32);
        assert_eq!(prefix_lengths(&cfg, 1, 0, 3), vec![0, 0, 0]);
        cfg.arch = Arch::Prefix;
        cfg.prefix = Some(PrefixLen::Range { min: 4, max: 20 });
        let a = prefix_lengths(&cfg, 1, 5, 64);
        assert_eq!(a, prefix_lengths(&cfg, 1, 5, 64));
        assert_ne!(a, prefix_lengths(&cfg, 1, 6, 64));
        assert!(a.iter().all(|p| (4..=20).contains(p)));
        assert!(a.iter().any(|&p| p < 8) && a.iter().any(|&p| p > 16));
    }
}
