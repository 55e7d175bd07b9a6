//! Multi-token prediction (DeepSeek-V3): sequential modules that predict the tokens 2, 3, ...
//! positions ahead, sharing the decoder's embedding and output head.

use crate::config::ModelConfig;
use crate::layers::{linear, Block, Norm};
use crate::precision::project;
use burn::module::Module;
use burn::nn::Linear;
use burn::prelude::*;

/// One module: h' = Block(W [norm(h); norm(emb)]), then its own output norm before the shared head.
#[derive(Module, Debug)]
pub struct MtpModule {
    norm_hidden: Norm,
    norm_embedding: Norm,
    proj: Linear,
    block: Block,
    norm_out: Norm,
}

impl MtpModule {
    /// A module for the configuration (a dense block like the decoder's).
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        let d = cfg.d_model;
        MtpModule {
            norm_hidden: Norm::new(cfg, device),
            norm_embedding: Norm::new(cfg, device),
            proj: linear(2 * d, d, cfg.bias, cfg.init_std, device),
            block: Block::new(cfg, device),
            norm_out: Norm::new(cfg, device),
        }
    }

    /// The module's hidden states [b, t, d] from the previous depth's `hidden` and the embeddings
    /// of the tokens one position further ahead (`embedded`, [b, t, d]), under the causal `mask`.
    pub fn forward(
        &self,
        hidden: Tensor<3>,
        embedded: Tensor<3>,
        mask: &Tensor<4, Bool>,
    ) -> Tensor<3> {
        let joined = Tensor::cat(
            vec![
                self.norm_hidden.forward(hidden),
                self.norm_embedding.forward(embedded),
            ],
            2,
        );
        self.block
            .forward(project(&self.proj, joined), mask, None, None)
            .x
    }

    /// The module's hidden states normalised for the shared output head.
    pub fn output_norm(&self, hidden: Tensor<3>) -> Tensor<3> {
        self.norm_out.forward(hidden)
    }
}
