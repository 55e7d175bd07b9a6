//! Exact parameter and FLOP accounting as pure functions of the configuration (DESIGN.md).
//!
//! FLOPs count multiply-adds as 2. The forward pass costs 2 x (matmul parameters touched per token,
//! output head included) plus attention scores and values, 2 x 2 x n_layer x seq_len x d_model per
//! token. lab's attention computes the full score matrix and masks it, so the masked half is counted
//! (no halving). Training costs 3 x forward. Norms, softmax, activations and embedding look-ups are
//! not counted.

use crate::config::{Mlp, ModelConfig, Norm, NormPlacement, Position};
use serde::{Deserialize, Serialize};

/// Parameter and FLOP counts of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// Every trainable parameter.
    pub params_total: u64,
    /// Token and learned position embeddings (the tied head shares the token embedding).
    pub params_embedding: u64,
    /// params_total - params_embedding (Kaplan's N).
    pub params_nonembedding: u64,
    /// Parameters touched by one token (all of them for a dense model).
    pub params_active: u64,
    /// Training FLOPs per token: 3 x forward.
    pub flops_per_token: u64,
    /// 6 x active non-embedding parameters (params_active - params_embedding).
    pub flops_6n: u64,
}

fn norm_params(cfg: &ModelConfig) -> u64 {
    let d = cfg.d_model as u64;
    match cfg.norm {
        Norm::Layernorm if cfg.bias => 2 * d,
        Norm::Dyt => 2 * d + 1,
        _ => d,
    }
}

/// The final norm's parameters: none after post-norm blocks.
fn final_norm_params(cfg: &ModelConfig) -> u64 {
    match cfg.norm_placement {
        NormPlacement::Pre => norm_params(cfg),
        NormPlacement::Post => 0,
    }
}

/// Matmul weights of one feed-forward network of hidden width `f`.
fn ffn_matmul(cfg: &ModelConfig, f: u64) -> u64 {
    let d = cfg.d_model as u64;
    match cfg.mlp {
        Mlp::Gelu => 2 * d * f,
        Mlp::Swiglu => 3 * d * f,
    }
}

/// Biases of one feed-forward network of hidden width `f`.
fn ffn_bias(cfg: &ModelConfig, f: u64) -> u64 {
    if !cfg.bias {
        return 0;
    }
    let d = cfg.d_model as u64;
    match cfg.mlp {
        Mlp::Gelu => f + d,
        Mlp::Swiglu => 2 * f + d,
    }
}

/// Feed-forward parameters of one block: (matmul weights, all parameters), each as (total, active
/// per token). MoE: the router, every routed expert (total) or the top-k ones (active), and the
/// shared experts.
fn ffn_params(cfg: &ModelConfig) -> ((u64, u64), (u64, u64)) {
    match cfg.moe() {
        None => {
            let f = cfg.d_ff() as u64;
            let mm = ffn_matmul(cfg, f);
            ((mm, mm), (mm + ffn_bias(cfg, f), mm + ffn_bias(cfg, f)))
        }
        Some(m) => {
            let (d, fe) = (cfg.d_model as u64, cfg.d_expert() as u64);
            let (e, k) = (m.experts() as u64, m.active() as u64);
            let router = d * e;
            let shared_f = (m.n_shared * cfg.d_ff()) as u64;
            let shared_mm = if shared_f > 0 {
                ffn_matmul(cfg, shared_f)
            } else {
                0
            };
            let shared_all = if shared_f > 0 {
                shared_mm + ffn_bias(cfg, shared_f)
            } else {
                0
            };
            let expert_mm = ffn_matmul(cfg, fe);
            let expert_all = expert_mm + ffn_bias(cfg, fe);
            (
                (
                    router + e * expert_mm + shared_mm,
                    router + k * expert_mm + shared_mm,
                ),
                (
                    router + e * expert_all + shared_all,
                    router + k * expert_all + shared_all,
                ),
            )
        }
    }
}

/// Width of the keys (and of the values) of one block: key/value heads x head width.
fn d_kv(cfg: &ModelConfig) -> u64 {
    (cfg.kv_heads() * cfg.d_head()) as u64
}

/// One block's attention parameters as (matmul weights, everything else). Multi-head: q and
/// output d x d each, k and v d x d_kv each, and their biases. Latent attention: the query down
/// and up projections (the up one to h (d_head + rope_dim)), the key/value down projection (to
/// kv_rank + rope_dim), its up projection (to 2 d) and the output, their biases, and the two latent
/// RMSNorm scales.
fn attention_params(cfg: &ModelConfig) -> (u64, u64) {
    let d = cfg.d_model as u64;
    let bias = |b: u64| if cfg.bias { b } else { 0 };
    match &cfg.mla {
        None => (2 * d * d + 2 * d * d_kv(cfg), bias(2 * d + 2 * d_kv(cfg))),
        Some(m) => {
            let (q, kv, r, h) = (
                m.q_rank as u64,
                m.kv_rank as u64,
                m.rope_dim as u64,
                cfg.n_head as u64,
            );
            let matmul = d * q + q * (d + h * r) + d * (kv + r) + kv * 2 * d + d * d;
            let biases = bias(q + (d + h * r) + (kv + r) + 2 * d + d);
            (matmul, biases + q + kv)
        }
    }
}

/// Width of a query-key dot product summed over heads: d (h heads of d_head), plus h x rope_dim
/// for latent attention's decoupled rotary part.
fn score_width(cfg: &ModelConfig) -> u64 {
    let d = cfg.d_model as u64;
    d + cfg
        .mla
        .as_ref()
        .map_or(0, |m| (cfg.n_head * m.rope_dim) as u64)
}

/// Matmul weights of one block touched per token: attention q, k, v, output and the (active)
/// feed-forward.
pub fn block_matmul_params(cfg: &ModelConfig) -> u64 {
    attention_params(cfg).0 + ffn_params(cfg).0 .1
}

/// Bytes of key/value cache one token occupies at inference, 2 bytes per element (16-bit
/// inference): keys and values of every layer, or with latent attention the latent and the rotary
/// key.
pub fn kv_cache_bytes_per_token(cfg: &ModelConfig) -> u64 {
    let per_layer = match &cfg.mla {
        None => 2 * d_kv(cfg),
        Some(m) => (m.kv_rank + m.rope_dim) as u64,
    };
    cfg.n_layer as u64 * per_layer * 2
}

/// Every parameter of one block, as (total, active per token).
pub fn block_params(cfg: &ModelConfig) -> (u64, u64) {
    let (matmul, other) = attention_params(cfg);
    let attn = matmul + other;
    let (total, active) = ffn_params(cfg).1;
    let fixed = attn + 2 * norm_params(cfg);
    (fixed + total, fixed + active)
}

/// Parameters of the multi-token prediction modules: per module two input norms, the 2d -> d
/// projection, a (dense) block and an output norm.
fn mtp_params(cfg: &ModelConfig) -> u64 {
    let Some(m) = &cfg.mtp else {
        return 0;
    };
    let d = cfg.d_model as u64;
    let proj = 2 * d * d + if cfg.bias { d } else { 0 };
    m.depth as u64 * (3 * norm_params(cfg) + proj + block_params(cfg).0)
}

/// Forward FLOPs of the multi-token prediction modules per training token: module k runs on the
/// seq_len - k positions that have a token k + 1 ahead (projection, block and output head per
/// position; scores and values over those positions), rounded to the nearest FLOP per token.
fn mtp_forward_flops(cfg: &ModelConfig) -> u64 {
    let Some(m) = &cfg.mtp else {
        return 0;
    };
    let (d, v, t) = (cfg.d_model as u64, cfg.vocab as u64, cfg.seq_len as u64);
    let per_position = 2 * (2 * d * d + block_matmul_params(cfg) + v * d);
    let per_sequence: u64 = (1..=m.depth as u64)
        .map(|k| {
            let n = t - k;
            n * per_position + 2 * n * n * (score_width(cfg) + d)
        })
        .sum();
    (per_sequence + t / 2) / t
}

/// Learned position embeddings of a stack of `cfg`'s width and context (none otherwise).
fn position_params(cfg: &ModelConfig) -> u64 {
    if cfg.position == Position::Learned {
        (cfg.seq_len * cfg.d_model) as u64
    } else {
        0
    }
}

/// One decoder block's cross-attention to an encoder of width `d_source`, as (matmul weights,
/// everything else): q and output d x d, keys and values d_source x 2d, their biases, and the
/// sub-layer's norm.
fn cross_params(cfg: &ModelConfig, d_source: u64) -> (u64, u64) {
    let d = cfg.d_model as u64;
    let bias = if cfg.bias { 4 * d } else { 0 };
    (2 * d * d + 2 * d_source * d, bias + norm_params(cfg))
}

/// An encoder-decoder's encoder stack as (embedding, other): its own token embedding (none when
/// shared) and learned positions; its blocks and final norm. None for decoder-only models.
fn encoder_stack(cfg: &ModelConfig) -> Option<(u64, u64)> {
    let enc = cfg.encoder_config()?;
    let token = if cfg.shares_encoder_embedding() {
        0
    } else {
        (enc.vocab * enc.d_model) as u64
    };
    let blocks = enc.n_layer as u64 * block_params(&enc).0 + final_norm_params(&enc);
    Some((token + position_params(&enc), blocks))
}

/// Parameters of an encoder-decoder's encoder stack: its own token embedding (none when shared),
/// learned positions, blocks and final norm. None for decoder-only models.
pub fn encoder_params_total(cfg: &ModelConfig) -> Option<u64> {
    encoder_stack(cfg).map(|(embedding, other)| embedding + other)
}

/// Forward FLOPs of one encoder-decoder sequence whose encoder reads its first `p` tokens: the
/// encoder over p positions (matmuls, and scores and values over p keys), the decoder over the
/// seq_len - max(p - 1, 0) positions that predict the rest (matmuls with the cross-attention's q
/// and output, the head, self-attention over its own positions), the cross-attention's keys and
/// values of the p encoder states in every decoder block, and its scores and values over p keys.
fn seq2seq_forward_flops(cfg: &ModelConfig, enc: &ModelConfig, p: u64) -> u64 {
    let (d, v, t, l) = (
        cfg.d_model as u64,
        cfg.vocab as u64,
        cfg.seq_len as u64,
        cfg.n_layer as u64,
    );
    let (de, le) = (enc.d_model as u64, enc.n_layer as u64);
    let td = t - p.saturating_sub(1);
    let encoder = 2 * p * le * block_matmul_params(enc) + 2 * le * p * p * (score_width(enc) + de);
    let decoder = 2 * td * (l * (block_matmul_params(cfg) + 2 * d * d) + v * d)
        + 2 * l * td * td * (score_width(cfg) + d);
    let cross = 2 * p * l * 2 * de * d + 2 * l * td * p * 2 * d;
    encoder + decoder + cross
}

/// Forward FLOPs per token (sequence position) of an encoder-decoder: the mean over its prefix
/// lengths (uniform over the range) of [`seq2seq_forward_flops`] / seq_len, rounded.
fn seq2seq_flops_per_token(cfg: &ModelConfig, enc: &ModelConfig) -> u64 {
    let (lo, hi) = cfg.prefix.map_or((0, 0), |p| p.bounds());
    let per_sequence: u64 = (lo as u64..=hi as u64)
        .map(|p| seq2seq_forward_flops(cfg, enc, p))
        .sum();
    let positions = (hi - lo + 1) as u64 * cfg.seq_len as u64;
    (per_sequence + positions / 2) / positions
}

/// Computes the accounting of a configuration.
pub fn account(cfg: &ModelConfig) -> Accounting {
    let (d, v, t, l) = (
        cfg.d_model as u64,
        cfg.vocab as u64,
        cfg.seq_len as u64,
        cfg.n_layer as u64,
    );
    let token_emb = v * d;
    let pos_emb = position_params(cfg);
    let head = if cfg.tie_embeddings {
        0
    } else {
        v * d + if cfg.bias { v } else { 0 }
    };
    let encoder = cfg.encoder_config();
    // The encoder stack, and each decoder block's cross-attention to it.
    let (encoder_embedding, encoder_rest) = match (&encoder, encoder_stack(cfg)) {
        (Some(enc), Some((embedding, stack))) => {
            let (matmul, other) = cross_params(cfg, enc.d_model as u64);
            (embedding, stack + l * (matmul + other))
        }
        _ => (0, 0),
    };
    let params_embedding = token_emb + pos_emb + encoder_embedding;
    let (block_total, block_active) = block_params(cfg);
    let rest = params_embedding + final_norm_params(cfg) + head + mtp_params(cfg) + encoder_rest;
    let params_total = rest + l * block_total;
    let params_active = rest + l * block_active;
    let params_nonembedding = params_total - params_embedding;
    let forward = match &encoder {
        Some(enc) => seq2seq_flops_per_token(cfg, enc),
        None => {
            let matmul_per_token = l * block_matmul_params(cfg) + v * d;
            // Scores (q.k over the score width) and values (over d), 2 FLOPs each, per token and
            // position.
            let attention = 2 * l * t * (score_width(cfg) + d);
            2 * matmul_per_token + attention + mtp_forward_flops(cfg)
        }
    };
    Accounting {
        params_total,
        params_embedding,
        params_nonembedding,
        params_active,
        flops_per_token: 3 * forward,
        flops_6n: 6 * (params_active - params_embedding),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_s_by_hand() {
        // d 128, L 4, h 4, seq 128, vocab 256, GELU d_ff 512, LayerNorm without bias, untied, no bias.
        let cfg = ModelConfig::new(4, 128, 4, 256, 128);
        let a = account(&cfg);
        // Embeddings: 256*128 + 128*128 = 32768 + 16384 = 49152.
        assert_eq!(a.params_embedding, 49_152);
        // Block: 4*128^2 + 2*128*512 + 2*128 = 65536 + 131072 + 256 = 196864; x4 = 787456.
        // Final norm 128, head 256*128 = 32768. Non-embedding = 787456 + 128 + 32768 = 820352.
        assert_eq!(a.params_nonembedding, 820_352);
        assert_eq!(a.params_total, 869_504);
        // Forward: 2*(4*196608 + 32768) + 4*4*128*128 = 2*819200 + 262144 = 1900544; x3.
        assert_eq!(a.flops_per_token, 5_701_632);
        assert_eq!(a.flops_6n, 6 * 820_352);
    }

    fn encoder_decoder(prefix: crate::config::PrefixLen) -> ModelConfig {
        let mut cfg = ModelConfig::new(2, 32, 2, 50, 16);
        cfg.arch = crate::config::Arch::EncoderDecoder;
        cfg.prefix = Some(prefix);
        cfg
    }

    #[test]
    fn encoder_decoder_by_hand() {
        use crate::config::{EncoderConfig, PrefixLen};
        // Decoder d 32, L 2, h 2, vocab 50, seq 16, GELU d_ff 128, learned positions, untied, no
        // bias; encoder of 3 blocks, width 32, sharing the token embedding; prefix 6.
        let mut cfg = encoder_decoder(PrefixLen::Fixed(6));
        cfg.encoder = Some(EncoderConfig {
            n_layer: Some(3),
            ..Default::default()
        });
        let a = account(&cfg);
        // Embeddings: tokens 50*32 = 1600, positions 16*32 = 512 per stack: 2624.
        assert_eq!(a.params_embedding, 2_624);
        // Block: 4*32^2 + 2*32*128 + 2*32 = 4096 + 8192 + 64 = 12352. Cross-attention per decoder
        // block: q and out 2*32^2 + keys and values 2*32*32 = 4096, its norm 32: 4128.
        // Decoder: 2 * (12352 + 4128) + final norm 32 + head 1600 = 34592. Encoder: 3 * 12352 +
        // final norm 32 = 37088.
        assert_eq!(a.params_nonembedding, 34_592 + 37_088);
        assert_eq!(a.params_total, a.params_nonembedding + 2_624);
        // Forward of one sequence (matmul weights per block 12288, cross q and out 2048): encoder
        // over 6 positions 2*6*3*12288 + 2*3*36*64 = 442368 + 13824 = 456192; decoder over the 11
        // positions 5..16: 2*11*(2*(12288 + 2048) + 1600) + 2*2*121*64 = 665984 + 30976 = 696960;
        // cross-attention keys and values 2*6*2*(2*32*32) = 49152, scores and values
        // 2*2*11*6*64 = 16896.
        let decoder = 2 * 11 * (2 * (12_288 + 2_048) + 1_600) + 2 * 2 * 121 * 64;
        assert_eq!(decoder, 696_960);
        let sequence = 456_192 + decoder + 49_152 + 16_896;
        assert_eq!(a.flops_per_token, 3 * ((sequence + 8) / 16));
    }

    #[test]
    fn encoder_decoder_flops_average_the_prefix_range() {
        use crate::config::{EncoderConfig, PrefixLen};
        let mut cfg = encoder_decoder(PrefixLen::Range { min: 2, max: 5 });
        cfg.encoder = Some(EncoderConfig {
            d_model: Some(48),
            n_head: Some(3),
            share_embedding: false,
            ..Default::default()
        });
        let enc = cfg.encoder_config().unwrap();
        assert_eq!((enc.d_model, enc.n_layer, enc.d_ff()), (48, 2, 192));
        let mean: u64 = (2..=5).map(|p| seq2seq_forward_flops(&cfg, &enc, p)).sum();
        assert_eq!(account(&cfg).flops_per_token, 3 * ((mean + 32) / 64));
        // An unshared encoder of width 48 has its own token and position tables.
        assert_eq!(
            account(&cfg).params_embedding,
            50 * 32 + 16 * 32 + 50 * 48 + 16 * 48
        );
        // The cross-attention's keys and values come from width 48.
        assert_eq!(cross_params(&cfg, 48).0, 2 * 32 * 32 + 2 * 48 * 32);
    }

    fn moe(n_experts: usize, top_k: usize, granularity: usize, n_shared: usize) -> ModelConfig {
        let mut cfg = ModelConfig::new(2, 64, 4, 100, 32);
        cfg.ffn = crate::config::Ffn::Moe;
        cfg.moe = Some(crate::config::MoeConfig {
            n_experts,
            top_k,
            granularity,
            n_shared,
            router: Default::default(),
            z_loss: 0.0,
            balance: Default::default(),
            aux_weight: 0.01,
            bias_rate: 0.001,
            capacity_factor: None,
        });
        cfg
    }

    #[test]
    fn moe_by_hand() {
        // d 64, d_ff 256, 8 experts top-2, one shared expert, GELU, no bias, L 2, vocab 100, seq 32.
        let a = account(&moe(8, 2, 1, 1));
        // Block: attention 4*64^2 = 16384; router 64*8 = 512; experts 8 * 2*64*256 = 262144;
        // shared 2*64*256 = 32768; norms 2*64 = 128. Total 311936; active 16384 + 512 + 2*32768
        // + 32768 + 128 = 115328.
        let emb = 100 * 64 + 32 * 64;
        let rest = emb + 64 + 100 * 64;
        assert_eq!(a.params_total, rest + 2 * 311_936);
        assert_eq!(a.params_active, rest + 2 * 115_328);
        // Forward: 2 * (2 * (16384 + 512 + 65536 + 32768) + 6400) + 4 * 2 * 32 * 64.
        assert_eq!(a.flops_per_token, 3 * (2 * (2 * 115_200 + 6_400) + 16_384));
        assert_eq!(a.flops_6n, 6 * (a.params_active - emb));
    }

    #[test]
    fn granularity_preserves_total_and_active_experts() {
        // Routed-expert parameters do not change with m; only the router (d x m E) grows.
        let base = account(&moe(4, 1, 1, 0));
        for m in [2, 4, 8] {
            let a = account(&moe(4, 1, m, 0));
            let router_growth = 2 * 64 * 4 * (m as u64 - 1);
            assert_eq!(a.params_total, base.params_total + router_growth, "m = {m}");
            assert_eq!(
                a.params_active,
                base.params_active + router_growth,
                "m = {m}"
            );
        }
        // A dense model with the same d_ff has the active parameters of a top-1 MoE, less the router.
        let dense = account(&ModelConfig::new(2, 64, 4, 100, 32));
        assert_eq!(base.params_active, dense.params_active + 2 * 64 * 4);
    }

    #[test]
    fn grouped_and_multi_query_attention_by_hand() {
        // d 64, 8 heads of 8, 2 key/value heads: k and v are 64 x 16 each. GELU d_ff 256, L 2,
        // vocab 100, seq 32, learned positions, no bias.
        let mut cfg = ModelConfig::new(2, 64, 8, 100, 32);
        let mha = account(&cfg);
        cfg.n_kv_head = Some(2);
        let a = account(&cfg);
        // Block: q 4096 + k 1024 + v 1024 + out 4096 = 10240; ffn 2*64*256 = 32768; norms 128.
        let block = 10_240 + 32_768 + 128;
        let (emb, rest) = (100 * 64 + 32 * 64, 64 + 100 * 64);
        assert_eq!(a.params_total, emb + rest + 2 * block);
        assert_eq!(mha.params_total - a.params_total, 2 * 2 * 64 * 48);
        // Attention scores and values still cost 2 x 2 x L x T x d (every query head reads a key).
        assert_eq!(
            a.flops_per_token,
            3 * (2 * (2 * (10_240 + 32_768) + 6_400) + 4 * 2 * 32 * 64)
        );
        // KV cache: 2 (k, v) x 2 layers x 16 x 2 bytes = 128 bytes; MHA 512; MQA 64.
        assert_eq!(kv_cache_bytes_per_token(&cfg), 128);
        cfg.n_kv_head = None;
        assert_eq!(kv_cache_bytes_per_token(&cfg), 512);
        cfg.n_kv_head = Some(1);
        assert_eq!(kv_cache_bytes_per_token(&cfg), 64);
        // With bias: q, k, v, out biases 64 + 8 + 8 + 64.
        cfg.bias = true;
        let biased = account(&cfg);
        cfg.bias = false;
        let plain = account(&cfg);
        let extra_per_block = 144 + 64 + 256 + 64 + 64; // attention, norm shifts x2, ffn biases
        assert_eq!(
            biased.params_total - plain.params_total,
            2 * extra_per_block as u64 + 64 + 100
        );
    }

    #[test]
    fn latent_attention_by_hand() {
        // d 32, 4 heads of 8, L 2, vocab 50, seq 16, rope; kv_rank 8, q_rank 12, rope_dim 4.
        let mut cfg = ModelConfig::new(2, 32, 4, 50, 16);
        cfg.position = Position::Rope;
        cfg.mla = Some(crate::config::MlaConfig {
            kv_rank: 8,
            q_rank: 12,
            rope_dim: 4,
        });
        let a = account(&cfg);
        // Attention: q down 32*12 + q up 12*(32 + 4*4) + kv down 32*(8 + 4) + kv up 8*64 + out
        // 32*32 = 384 + 576 + 384 + 512 + 1024 = 2880, and the two latent norms 12 + 8.
        let block = 2_880 + 20 + 2 * 32 * 128 + 2 * 32;
        assert_eq!(a.params_total, 1_600 + 32 + 1_600 + 2 * block);
        // Scores over 32 + 4*4 dimensions, values over 32: 2 * 2 * 16 * (48 + 32) per token.
        let matmul = 2 * (2_880 + 8_192) + 1_600;
        assert_eq!(a.flops_per_token, 3 * (2 * matmul + 2 * 2 * 16 * 80));
        // The cache holds the latent and the rotary key: 2 layers x 12 x 2 bytes.
        assert_eq!(kv_cache_bytes_per_token(&cfg), 48);
    }

    #[test]
    fn multi_token_prediction_by_hand() {
        // d 32, 2 heads, L 2, vocab 50, seq 8, learned positions, GELU d_ff 128; depth 2.
        let mut cfg = ModelConfig::new(2, 32, 2, 50, 8);
        let plain = account(&cfg);
        cfg.mtp = Some(crate::config::MtpConfig {
            depth: 2,
            weight: 0.3,
        });
        let a = account(&cfg);
        // A block: 4*32*32 + 2*32*128 + 2*32 = 4096 + 8192 + 64 = 12352. A module: three norms
        // (96), the projection 64*32 = 2048 and a block: 14496; two of them.
        assert_eq!(a.params_total - plain.params_total, 2 * 14_496);
        assert_eq!(a.params_embedding, plain.params_embedding);
        // Per position: 2*(2048 + 4096 + 8192 + 50*32) = 2*15936 = 31872. Module 1 runs on 7
        // positions, module 2 on 6; attention 2*n*n*(32 + 32) = 128 n^2.
        let per_sequence = 7 * 31_872 + 128 * 49 + 6 * 31_872 + 128 * 36;
        assert_eq!(per_sequence, 425_216);
        // 425216 / 8 = 53152 forward FLOPs per token, x3 for training.
        assert_eq!(a.flops_per_token - plain.flops_per_token, 3 * 53_152);
    }

    #[test]
    fn dyt_and_post_norm_by_hand() {
        // DyT: gamma and beta per channel and one alpha, 2 x 64 + 1 = 129 per norm; 2 per block
        // and a final one. Post-norm drops the final norm.
        let mut cfg = ModelConfig::new(2, 64, 4, 100, 32);
        let ln = account(&cfg);
        cfg.norm = Norm::Dyt;
        let dyt = account(&cfg);
        assert_eq!(dyt.params_total - ln.params_total, 5 * 65);
        assert_eq!(dyt.flops_per_token, ln.flops_per_token);
        cfg.norm_placement = NormPlacement::Post;
        assert_eq!(dyt.params_total - account(&cfg).params_total, 129);
    }

    #[test]
    fn tied_rope_swiglu_rmsnorm_bias_by_hand() {
        let mut cfg = ModelConfig::new(2, 64, 2, 100, 32);
        cfg.tie_embeddings = true;
        cfg.position = Position::Rope;
        cfg.mlp = Mlp::Swiglu;
        cfg.norm = Norm::Rmsnorm;
        cfg.bias = true;
        // d_ff = ceil(8*64/3 = 170.67) = 171 -> multiple of 8 = 176.
        assert_eq!(cfg.d_ff(), 176);
        let a = account(&cfg);
        assert_eq!(a.params_embedding, 6_400);
        // Block: 4*4096 + 3*64*176 + (4*64 + 2*176 + 64) + 2*64 = 16384 + 33792 + 672 + 128 = 50976.
        assert_eq!(a.params_total, 6_400 + 2 * 50_976 + 64);
        // Forward: 2*(2*(16384 + 33792) + 6400) + 4*2*32*64.
        assert_eq!(a.flops_per_token, 3 * (2 * (2 * 50_176 + 6_400) + 16_384));
    }
}
