//! Fused GELU, softmax, log-softmax, LayerNorm and RMSNorm for the CPU backend (flex), forward and
//! backward, through burn's backend-extension API. On the small models of lab's sweeps the first
//! three took about a third of a training step: GELU's erf is a scalar libm call per element (twice
//! with its gradient), and burn builds softmax from five operations and LayerNorm from eight, each
//! allocating a tensor, with a scalar exp (README, "Performance", has the before and after).
//!
//! Each function here takes the fused path for f32 tensors on the flex device (with or without
//! autodiff) and burn's own operations everywhere else (GPU backends, ndarray, half precision), so
//! the other backends compute what they did. Each fused operation is one autodiff node whose
//! backward is the matching fused gradient (the norms' scale and shift stay burn operations); the
//! tests check values and gradients against burn's operations.

use burn::tensor::activation;
use burn::tensor::Tensor;

#[cfg(feature = "flex")]
mod kernels;
#[cfg(feature = "flex")]
pub mod math;

/// GELU (the erf form) of `x`, element-wise.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if is_fused(&x) {
        return extension::apply(x, <burn::backend::Dispatch as extension::Fused>::fused_gelu);
    }
    activation::gelu(x)
}

/// Softmax of `x` over its last dimension.
pub fn softmax<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if is_fused(&x) {
        return extension::apply(
            x,
            <burn::backend::Dispatch as extension::Fused>::fused_softmax,
        );
    }
    activation::softmax(x, D - 1)
}

/// Log-softmax of `x` over its last dimension.
pub fn log_softmax<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if is_fused(&x) {
        return extension::apply(
            x,
            <burn::backend::Dispatch as extension::Fused>::fused_log_softmax,
        );
    }
    activation::log_softmax(x, D - 1)
}

/// LayerNorm over the last dimension: (x - mean) / sqrt(var + eps) * gamma + beta.
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Option<Tensor<1>>,
    eps: f64,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if is_fused(&x) {
        let y = Tensor::from_dispatch(
            <burn::backend::Dispatch as extension::Fused>::fused_layer_norm(x.into_dispatch(), eps),
        ) * gamma.unsqueeze();
        return match beta {
            Some(beta) => y + beta.unsqueeze(),
            None => y,
        };
    }
    burn::tensor::module::layer_norm(x, gamma, beta, eps)
}

/// RMSNorm over the last dimension: x / sqrt(mean(x^2) + eps) * gamma.
pub fn rms_norm<const D: usize>(x: Tensor<D>, gamma: Tensor<1>, eps: f64) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if is_fused(&x) {
        return Tensor::from_dispatch(
            <burn::backend::Dispatch as extension::Fused>::fused_rms_norm(x.into_dispatch(), eps),
        ) * gamma.unsqueeze();
    }
    // burn's RmsNorm, for an f32 input.
    let rms = (x.clone().square().mean_dim(D - 1) + eps).sqrt();
    (x / rms) * gamma.unsqueeze()
}

/// Whether the operations here take the fused path for `x`: an f32 tensor on the flex backend
/// (under autodiff or not).
#[cfg(feature = "flex")]
pub fn is_fused<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == burn::tensor::DType::F32
        && matches!(
            x.device().as_dispatch().clone().inner(),
            burn::backend::DispatchDevice::Flex(_)
        )
}

/// Whether the operations here take the fused path for `x`: never without the flex backend.
#[cfg(not(feature = "flex"))]
pub fn is_fused<const D: usize>(_: &Tensor<D>) -> bool {
    false
}

/// The backend extension: the operations on flex and their autodiff nodes.
#[cfg(feature = "flex")]
mod extension {
    use super::kernels;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{backend_extension, Autodiff, Backend, DispatchTensor, Flex};
    use burn::tensor::Tensor;

    /// Applies a dispatched extension operation to a high-level tensor.
    pub fn apply<const D: usize>(
        x: Tensor<D>,
        op: fn(DispatchTensor) -> DispatchTensor,
    ) -> Tensor<D> {
        Tensor::from_dispatch(op(x.into_dispatch()))
    }

    /// The fused operations, dispatched to flex directly or through autodiff.
    #[backend_extension(Flex, Autodiff)]
    pub trait Fused: Backend {
        fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
        fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self>;
        fn fused_log_softmax(x: FloatTensor<Self>) -> FloatTensor<Self>;
        fn fused_layer_norm(x: FloatTensor<Self>, eps: f64) -> FloatTensor<Self>;
        fn fused_rms_norm(x: FloatTensor<Self>, eps: f64) -> FloatTensor<Self>;
    }

    /// Their gradients on a backend that runs them (called by the autodiff nodes only, so not
    /// dispatched): each takes what the forward kept (its input for GELU and the norms, its
    /// output for the softmaxes), the incoming gradient and the norms' epsilon.
    pub trait FusedGrad: Backend {
        fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
        fn fused_softmax_backward(
            y: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> FloatTensor<Self>;
        fn fused_log_softmax_backward(
            z: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> FloatTensor<Self>;
        fn fused_layer_norm_backward(
            x: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self>;
        fn fused_rms_norm_backward(
            x: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self>;
    }

    impl Fused for Flex {
        fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
            kernels::gelu(x)
        }
        fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
            kernels::softmax(x)
        }
        fn fused_log_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
            kernels::log_softmax(x)
        }
        fn fused_layer_norm(x: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
            kernels::layer_norm(x, eps)
        }
        fn fused_rms_norm(x: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
            kernels::rms_norm(x, eps)
        }
    }

    impl FusedGrad for Flex {
        fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
            kernels::gelu_backward(x, grad)
        }
        fn fused_softmax_backward(
            y: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            kernels::softmax_backward(y, grad)
        }
        fn fused_log_softmax_backward(
            z: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            kernels::log_softmax_backward(z, grad)
        }
        fn fused_layer_norm_backward(
            x: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self> {
            kernels::layer_norm_backward(x, grad, eps)
        }
        fn fused_rms_norm_backward(
            x: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self> {
            kernels::rms_norm_backward(x, grad, eps)
        }
    }

    /// Which tensor an operation keeps for its backward pass.
    #[derive(Debug, Clone, Copy)]
    enum Keeps {
        Input,
        Output,
    }

    /// A forward kernel with its scalar parameter (the norms' epsilon; unused by the others).
    type Forward<B> = fn(FloatTensor<B>, f64) -> FloatTensor<B>;
    /// A backward kernel: the kept tensor, the incoming gradient, the parameter.
    type Gradient<B> = fn(FloatTensor<B>, FloatTensor<B>, f64) -> FloatTensor<B>;

    /// An autodiff node of one fused element-wise or row-wise operation: its backward maps the
    /// kept tensor and the incoming gradient through `backward`.
    #[derive(Debug)]
    struct Node<B: Backend> {
        backward: Gradient<B>,
        param: f64,
    }

    impl<B: Backend> Backward<B, 1> for Node<B> {
        type State = FloatTensor<B>;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let kept = ops.state;
            let (f, param) = (self.backward, self.param);
            unary::<B, _>(ops.parents, ops.node, grads, |grad| f(kept, grad, param));
        }
    }

    /// Records `forward` on `x` as one node whose gradient is `backward(kept, grad, param)`.
    fn record<B: Backend, C: CheckpointStrategy>(
        x: FloatTensor<Autodiff<B, C>>,
        (forward, backward, keeps): (Forward<B>, Gradient<B>, Keeps),
        param: f64,
    ) -> FloatTensor<Autodiff<B, C>> {
        match (Node::<B> { backward, param })
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = x.into_primitive();
                let output = forward(input.clone(), param);
                let kept = match keeps {
                    Keeps::Input => input,
                    Keeps::Output => output.clone(),
                };
                prep.finish(kept, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.into_primitive(), param)),
        }
    }

    /// The forward and backward kernels of each operation on the inner backend, and what the
    /// backward keeps.
    fn gelu<B: Fused + FusedGrad>() -> (Forward<B>, Gradient<B>, Keeps) {
        (
            |x, _| B::fused_gelu(x),
            |x, g, _| B::fused_gelu_backward(x, g),
            Keeps::Input,
        )
    }
    fn softmax<B: Fused + FusedGrad>() -> (Forward<B>, Gradient<B>, Keeps) {
        (
            |x, _| B::fused_softmax(x),
            |y, g, _| B::fused_softmax_backward(y, g),
            Keeps::Output,
        )
    }
    fn log_softmax<B: Fused + FusedGrad>() -> (Forward<B>, Gradient<B>, Keeps) {
        (
            |x, _| B::fused_log_softmax(x),
            |z, g, _| B::fused_log_softmax_backward(z, g),
            Keeps::Output,
        )
    }
    fn layer_norm<B: Fused + FusedGrad>() -> (Forward<B>, Gradient<B>, Keeps) {
        (
            B::fused_layer_norm,
            B::fused_layer_norm_backward,
            Keeps::Input,
        )
    }
    fn rms_norm<B: Fused + FusedGrad>() -> (Forward<B>, Gradient<B>, Keeps) {
        (B::fused_rms_norm, B::fused_rms_norm_backward, Keeps::Input)
    }

    impl<B: Backend + Fused + FusedGrad, C: CheckpointStrategy> Fused for Autodiff<B, C> {
        fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
            record::<B, C>(x, gelu::<B>(), 0.0)
        }
        fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
            record::<B, C>(x, softmax::<B>(), 0.0)
        }
        fn fused_log_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
            record::<B, C>(x, log_softmax::<B>(), 0.0)
        }
        fn fused_layer_norm(x: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
            record::<B, C>(x, layer_norm::<B>(), eps)
        }
        fn fused_rms_norm(x: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
            record::<B, C>(x, rms_norm::<B>(), eps)
        }
    }
}
