//! Exact parameter and FLOP accounting as pure functions of the configuration (DESIGN.md).
//!
//! FLOPs count multiply-adds as 2. The forward pass costs 2 x (matmul parameters touched per token,
//! output head included) plus attention scores and values, 2 x 2 x n_layer x seq_len x d_model per
//! token. lab's attention computes the full score matrix and masks it, so the masked half is counted
//! (no halving). Training costs 3 x forward. Norms, softmax, activations and embedding look-ups are
//! not counted.

use crate::config::{Mlp, ModelConfig, Norm, Position};
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
    /// 6 x active non-embedding parameters.
    pub flops_6n: u64,
}

fn norm_params(cfg: &ModelConfig) -> u64 {
    let d = cfg.d_model as u64;
    match cfg.norm {
        Norm::Layernorm if cfg.bias => 2 * d,
        _ => d,
    }
}

/// Weights (not biases) of the matmuls of one block: attention q, k, v, output and the MLP.
pub fn block_matmul_params(cfg: &ModelConfig) -> u64 {
    let (d, f) = (cfg.d_model as u64, cfg.d_ff() as u64);
    let mlp = match cfg.mlp {
        Mlp::Gelu => 2 * d * f,
        Mlp::Swiglu => 3 * d * f,
    };
    4 * d * d + mlp
}

/// Every parameter of one block.
pub fn block_params(cfg: &ModelConfig) -> u64 {
    let (d, f) = (cfg.d_model as u64, cfg.d_ff() as u64);
    let biases = if cfg.bias {
        let mlp_bias = match cfg.mlp {
            Mlp::Gelu => f + d,
            Mlp::Swiglu => 2 * f + d,
        };
        4 * d + mlp_bias
    } else {
        0
    };
    block_matmul_params(cfg) + biases + 2 * norm_params(cfg)
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
    let pos_emb = if cfg.position == Position::Learned {
        t * d
    } else {
        0
    };
    let head = if cfg.tie_embeddings {
        0
    } else {
        v * d + if cfg.bias { v } else { 0 }
    };
    let params_embedding = token_emb + pos_emb;
    let params_total = params_embedding + l * block_params(cfg) + norm_params(cfg) + head;
    let params_nonembedding = params_total - params_embedding;
    let matmul_per_token = l * block_matmul_params(cfg) + v * d;
    let attention = 2 * 2 * l * t * d;
    let forward = 2 * matmul_per_token + attention;
    Accounting {
        params_total,
        params_embedding,
        params_nonembedding,
        params_active: params_total,
        flops_per_token: 3 * forward,
        flops_6n: 6 * params_nonembedding,
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
