//! The fused CPU operations against burn's own: values and gradients, small tensors and tensors
//! large enough to be split over threads, strided inputs, masked rows, with and without autodiff.
//! Built with the `flex` feature only (Cargo.toml: required-features), as in the workspace's build.

use burn::prelude::*;
use burn::tensor::activation;
use burn::tensor::Distribution;
use models::fused;

fn autodiff() -> Device {
    Device::flex().autodiff()
}

/// The largest absolute difference between two tensors, relative to the larger's largest value.
fn rel_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let scale = a.clone().abs().max().into_scalar::<f32>().max(1e-30);
    (a - b).abs().max().into_scalar::<f32>() / scale
}

/// Value and input gradient of `f` at `x` under a fixed random weighting of the output.
fn value_and_grad<const D: usize>(
    x: &Tensor<D>,
    weights: &Tensor<D>,
    f: impl Fn(Tensor<D>) -> Tensor<D>,
) -> (Tensor<D>, Tensor<D>) {
    let x = x.clone().require_grad();
    let y = f(x.clone());
    let grads = (y.clone() * weights.clone()).sum().backward();
    let g = x.grad(&grads).expect("a gradient for the input");
    (y.inner(), g)
}

type Op<const D: usize> = fn(Tensor<D>) -> Tensor<D>;

/// The fused operations, each with burn's version (the norms with a fixed scale and shift).
fn pairs<const D: usize>() -> [(&'static str, Op<D>, Op<D>); 6] {
    fn affine<const D: usize>(x: &Tensor<D>) -> (Tensor<1>, Tensor<1>) {
        let n = x.dims()[D - 1];
        let gamma = Tensor::<1, Int>::arange(0..n as i64, &x.device()).float() * 0.1 + 0.5;
        (gamma.clone(), gamma * -0.3)
    }
    [
        (
            "layer_norm",
            |x| {
                let (g, b) = affine(&x);
                fused::layer_norm(x, g, Some(b), 1e-5)
            },
            |x| {
                let (g, b) = affine(&x);
                burn::tensor::module::layer_norm(x, g, Some(b), 1e-5)
            },
        ),
        (
            "layer_norm without shift",
            |x| {
                let (g, _) = affine(&x);
                fused::layer_norm(x, g, None, 1e-5)
            },
            |x| {
                let (g, _) = affine(&x);
                burn::tensor::module::layer_norm(x, g, None, 1e-5)
            },
        ),
        (
            "rms_norm",
            |x| {
                let (g, _) = affine(&x);
                fused::rms_norm(x, g, 1e-5)
            },
            |x| {
                let (g, _) = affine(&x);
                let device = x.device();
                let norm = burn::nn::RmsNormConfig::new(x.dims()[D - 1]).init(&device);
                let norm = burn::nn::RmsNorm {
                    gamma: burn::module::Param::from_tensor(g),
                    ..norm
                };
                norm.forward(x)
            },
        ),
        ("gelu", fused::gelu::<D>, activation::gelu::<D>),
        ("softmax", fused::softmax::<D>, |x| {
            activation::softmax(x, D - 1)
        }),
        ("log_softmax", fused::log_softmax::<D>, |x| {
            activation::log_softmax(x, D - 1)
        }),
    ]
}

fn check_against_burn<const D: usize>(shape: [usize; D], scale: f64) {
    let device = autodiff();
    let x = Tensor::<D>::random(shape, Distribution::Normal(0.0, scale), &device);
    let w = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    for (name, ours, theirs) in pairs::<D>() {
        let (y1, g1) = value_and_grad(&x, &w, ours);
        let (y2, g2) = value_and_grad(&x, &w, theirs);
        let (dy, dg) = (rel_diff(y1, y2), rel_diff(g1, g2));
        assert!(dy < 2e-6, "{name} {shape:?}: values differ by {dy:e}");
        assert!(dg < 2e-5, "{name} {shape:?}: gradients differ by {dg:e}");
    }
}

#[test]
fn flex_tensors_take_the_fused_path() {
    let x = Tensor::<2>::zeros([2, 3], &Device::flex());
    assert!(fused::is_fused(&x));
    assert!(fused::is_fused(&Tensor::<2>::zeros([2, 3], &autodiff())));
    assert!(!fused::is_fused(&x.cast(burn::tensor::DType::F64)));
}

#[test]
fn values_and_gradients_match_burns_operations() {
    check_against_burn([2, 3, 5, 7], 2.0);
    check_against_burn([3, 64], 8.0);
    // Above the threshold from which rows are split over threads.
    check_against_burn([4, 300, 230], 3.0);
    check_against_burn([2800, 100], 1.0);
}

#[test]
fn strided_inputs_give_what_their_contiguous_copies_give() {
    let device = Device::flex();
    let x = Tensor::<3>::random([4, 6, 9], Distribution::Normal(0.0, 2.0), &device);
    let strided = x.clone().swap_dims(1, 2);
    let copy = Tensor::<3>::from_data(strided.clone().into_data(), &device);
    for (name, ours, _) in pairs::<3>() {
        let d = rel_diff(ours(strided.clone()), ours(copy.clone()));
        assert_eq!(d, 0.0, "{name}");
    }
}

#[test]
fn masked_scores_get_exactly_zero_weight() {
    let device = autodiff();
    let x = Tensor::<2>::from_floats(
        [[1.0, -1e30, 3.0, -1e30], [-1e30, -1e30, -1e30, -1e30]],
        &device,
    );
    let y: Vec<f32> = fused::softmax(x).into_data().try_to_vec().unwrap();
    assert_eq!(y[1], 0.0);
    assert_eq!(y[3], 0.0);
    let open = 1.0 / (1.0 + (2.0f32).exp());
    assert!((y[0] - open).abs() < 1e-7 && (y[2] - (1.0 - open)).abs() < 1e-7);
    // A row with every key masked softmaxes to uniform weights, as burn's does.
    assert_eq!(&y[4..], &[0.25; 4]);
}

#[test]
fn without_autodiff_the_same_values() {
    let x = Tensor::<2>::random([5, 33], Distribution::Normal(0.0, 3.0), &Device::flex());
    let xa = Tensor::<2>::from_data(x.clone().into_data(), &autodiff());
    for (name, ours, _) in pairs::<2>() {
        let plain: Vec<f32> = ours(x.clone()).into_data().try_to_vec().unwrap();
        let tracked: Vec<f32> = ours(xa.clone()).into_data().try_to_vec().unwrap();
        let d = plain
            .iter()
            .zip(&tracked)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert_eq!(plain, tracked, "{name}: largest difference {d:e}");
    }
}
