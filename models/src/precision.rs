//! Mixed precision: parameters (the master weights) stay in f32; a forward pass in bf16 or f16 casts
//! the activations after the embedding and each weight as a matmul uses it, and keeps the numerically
//! sensitive parts in f32: normalisation, attention softmax, routing and the logits. Gradients reach
//! the f32 parameters through the casts.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};

/// The dtype a forward pass computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// bf16 matmuls and activations, f32 master weights (no loss scaling needed).
    Bf16,
    /// f16 matmuls and activations, f32 master weights, with dynamic loss scaling.
    F16,
}

impl Precision {
    /// The float dtype of the compute.
    pub fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::Bf16 => FloatDType::BF16,
            Precision::F16 => FloatDType::F16,
        }
    }

    /// The name used in configs and results.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// Whether the loss needs scaling to keep small gradients representable (f16's narrow range).
    pub fn needs_loss_scaling(self) -> bool {
        self == Precision::F16
    }
}

/// `x` in f32 (a no-op for f32 tensors).
pub fn to_f32<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.cast(FloatDType::F32)
}

/// `w` in the dtype of `like` (a no-op when they agree).
pub fn like<const D: usize, const E: usize>(w: Tensor<D>, like: &Tensor<E>) -> Tensor<D> {
    w.cast(like.dtype())
}

/// A linear layer applied in the dtype of its input: x [batch, time, d_in] -> [batch, time, d_out].
pub fn project(lin: &Linear, x: Tensor<3>) -> Tensor<3> {
    let w = like(lin.weight.val(), &x);
    let y = x.matmul(w.unsqueeze());
    match &lin.bias {
        Some(b) => {
            let b = like(b.val(), &y);
            y + b.unsqueeze()
        }
        None => y,
    }
}
