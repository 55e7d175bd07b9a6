//! Fused GELU, softmax and log-softmax for the CPU backend (flex), forward and backward, through
//! burn's backend-extension API. On the small models of lab's sweeps these three took about a third
//! of a training step: GELU's erf is a scalar libm call per element (twice with its gradient),
//! and burn builds softmax and log-softmax from five operations, each allocating a tensor, with a
//! scalar exp (README, "Performance", has the before and after).
//!
//! [`gelu`], [`softmax`] and [`log_softmax`] take the fused path for f32 tensors on the flex
//! device (with or without autodiff) and burn's own operations everywhere else (GPU backends,
//! ndarray, half precision), so the other backends compute what they did. Each fused operation
//! is one autodiff node whose backward is the matching fused gradient; the tests check values and
//! gradients against burn's operations.

use burn::tensor::activation;
use burn::tensor::{DType, Tensor};

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

/// Whether the operations here take the fused path for `x`: an f32 tensor on the flex backend
/// (under autodiff or not).
#[cfg(feature = "flex")]
pub fn is_fused<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32
        && matches!(
            x.device().as_dispatch().clone().inner(),
            burn::backend::DispatchDevice::Flex(_)
        )
}

/// Whether the operations here take the fused path for `x`: never without the flex backend.
#[cfg(not(feature = "flex"))]
pub fn is_fused<const D: usize>(_: &Tensor<D>) -> bool {
    let _ = DType::F32;
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

    /// Fused operations; the `_backward` ones take what the forward kept (its input for GELU,
    /// its output for the softmaxes) and the incoming gradient.
    #[backend_extension(Flex, Autodiff)]
    pub trait Fused: Backend {
        fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
        fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
        fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self>;
        fn fused_softmax_backward(
            y: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> FloatTensor<Self>;
        fn fused_log_softmax(x: FloatTensor<Self>) -> FloatTensor<Self>;
        fn fused_log_softmax_backward(
            z: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> FloatTensor<Self>;
    }

    impl Fused for Flex {
        fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
            kernels::gelu(x)
        }
        fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
            kernels::gelu_backward(x, grad)
        }
        fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
            kernels::softmax(x)
        }
        fn fused_softmax_backward(
            y: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            kernels::softmax_backward(y, grad)
        }
        fn fused_log_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
            kernels::log_softmax(x)
        }
        fn fused_log_softmax_backward(
            z: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            kernels::log_softmax_backward(z, grad)
        }
    }

    /// Which tensor an operation keeps for its backward pass.
    #[derive(Debug, Clone, Copy)]
    enum Keeps {
        Input,
        Output,
    }

    /// An autodiff node of one fused element-wise or row-wise operation: its backward maps the
    /// kept tensor and the incoming gradient through `backward`.
    #[derive(Debug)]
    struct Node<B: Backend> {
        backward: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
    }

    impl<B: Backend> Backward<B, 1> for Node<B> {
        type State = FloatTensor<B>;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let kept = ops.state;
            let f = self.backward;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| f(kept, grad));
        }
    }

    /// Records `forward` on `x` as one node whose gradient is `backward(kept, grad)`.
    fn record<B: Backend, C: CheckpointStrategy>(
        x: FloatTensor<Autodiff<B, C>>,
        forward: fn(FloatTensor<B>) -> FloatTensor<B>,
        backward: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
        keeps: Keeps,
    ) -> FloatTensor<Autodiff<B, C>> {
        match (Node::<B> { backward })
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = x.into_primitive();
                let output = forward(input.clone());
                let kept = match keeps {
                    Keeps::Input => input,
                    Keeps::Output => output.clone(),
                };
                prep.finish(kept, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.into_primitive())),
        }
    }

    impl<B: Backend + Fused, C: CheckpointStrategy> Fused for Autodiff<B, C> {
        fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
            record::<B, C>(x, B::fused_gelu, B::fused_gelu_backward, Keeps::Input)
        }
        fn fused_gelu_backward(_: FloatTensor<Self>, _: FloatTensor<Self>) -> FloatTensor<Self> {
            unreachable!("the gradient of a fused operation is not itself differentiated")
        }
        fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
            record::<B, C>(
                x,
                B::fused_softmax,
                B::fused_softmax_backward,
                Keeps::Output,
            )
        }
        fn fused_softmax_backward(_: FloatTensor<Self>, _: FloatTensor<Self>) -> FloatTensor<Self> {
            unreachable!("the gradient of a fused operation is not itself differentiated")
        }
        fn fused_log_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
            record::<B, C>(
                x,
                B::fused_log_softmax,
                B::fused_log_softmax_backward,
                Keeps::Output,
            )
        }
        fn fused_log_softmax_backward(
            _: FloatTensor<Self>,
            _: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            unreachable!("the gradient of a fused operation is not itself differentiated")
        }
    }
}
