//! The fused operations on the CPU backend's tensors: GELU, and over the last dimension softmax,
//! log-softmax and the normalisations of LayerNorm and RMSNorm, forward and backward, each one pass
//! over f32 memory (burn builds softmax from five operations and LayerNorm from eight, each
//! allocating a tensor, and evaluates GELU's erf by a scalar libm call).
//! Rows are split over rayon's threads when a tensor is large enough to pay for it.

use super::math;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

/// Tensors with fewer elements than this run on the calling thread: below it, waking another
/// thread costs about what the work does (and a sweep runs one process per core anyway).
const PARALLEL_FROM: usize = 1 << 18;

/// The f32 elements of a tensor in row-major order, with its shape.
fn read(t: &FlexTensor) -> (Vec<usize>, FlexTensor) {
    assert_eq!(t.dtype(), DType::F32, "fused kernels take f32 tensors");
    let shape = t.layout().shape().to_vec();
    (shape, t.to_contiguous())
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("a contiguous f32 tensor after to_contiguous")
}

fn write(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Rows per task when a tensor is split over threads: whole rows, about PARALLEL_FROM / 4
/// elements.
fn rows_per_task(row: usize) -> usize {
    (PARALLEL_FROM / 4).div_ceil(row) * row
}

/// `f(a, out)` over chunks of whole rows of `row` elements: one chunk, or chunks in parallel when
/// the tensor is large.
fn map_rows(a: &[f32], row: usize, f: impl Fn(&[f32], &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0.0f32; a.len()];
    if a.len() < PARALLEL_FROM {
        f(a, &mut out);
    } else {
        let per_task = rows_per_task(row);
        out.par_chunks_mut(per_task)
            .zip(a.par_chunks(per_task))
            .for_each(|(y, x)| f(x, y));
    }
    out
}

/// `f(a, b, out)` over chunks of whole rows, as [`map_rows`].
fn zip_rows(
    a: &[f32],
    b: &[f32],
    row: usize,
    f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> Vec<f32> {
    assert_eq!(
        a.len(),
        b.len(),
        "fused kernels: operands of different sizes"
    );
    let mut out = vec![0.0f32; a.len()];
    if a.len() < PARALLEL_FROM {
        f(a, b, &mut out);
    } else {
        let per_task = rows_per_task(row);
        out.par_chunks_mut(per_task)
            .zip(a.par_chunks(per_task).zip(b.par_chunks(per_task)))
            .for_each(|(y, (x, g))| f(x, g, y));
    }
    out
}

/// Rows for element-wise kernels: any split works, this one keeps tasks a few pages long.
const ELEMENTWISE_ROW: usize = 4096;

crate::multiversion! {
    /// y = GELU(x).
    fn gelu_slice(x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = math::gelu(x);
        }
    }
}

crate::multiversion! {
    /// dx = GELU'(x) g.
    fn gelu_grad_slice(x: &[f32], g: &[f32], dx: &mut [f32]) {
        for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(g) {
            *dx = math::gelu_grad(x, g);
        }
    }
}

/// Writes exp(x - max) of one row into `y`; returns the max and the sum of the exponentials.
#[inline(always)]
fn exp_shifted(x: &[f32], y: &mut [f32]) -> (f32, f32) {
    let m = math::max(x);
    for (y, &x) in y.iter_mut().zip(x) {
        *y = math::exp(x - m);
    }
    (m, math::sum(y))
}

crate::multiversion! {
    /// y = exp(x - max) / sum over each row.
    fn softmax_rows(x: &[f32], y: &mut [f32], row: usize) {
        for (x, y) in x.chunks(row).zip(y.chunks_mut(row)) {
            let (_, s) = exp_shifted(x, y);
            for y in y.iter_mut() {
                *y /= s;
            }
        }
    }
}

crate::multiversion! {
    /// dx = y (g - sum(g y)) over each row.
    fn softmax_grad_rows(y: &[f32], g: &[f32], dx: &mut [f32], row: usize) {
        for ((y, g), dx) in y.chunks(row).zip(g.chunks(row)).zip(dx.chunks_mut(row)) {
            let s = math::dot(g, y);
            for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(g) {
                *dx = y * (g - s);
            }
        }
    }
}

crate::multiversion! {
    /// z = (x - max) - ln(sum exp(x - max)) over each row.
    fn log_softmax_rows(x: &[f32], z: &mut [f32], row: usize) {
        for (x, z) in x.chunks(row).zip(z.chunks_mut(row)) {
            let (m, s) = exp_shifted(x, z);
            let log_sum = s.ln();
            for (z, &x) in z.iter_mut().zip(x) {
                *z = (x - m) - log_sum;
            }
        }
    }
}

crate::multiversion! {
    /// dx = g - exp(z) sum(g) over each row.
    fn log_softmax_grad_rows(z: &[f32], g: &[f32], dx: &mut [f32], row: usize) {
        for ((z, g), dx) in z.chunks(row).zip(g.chunks(row)).zip(dx.chunks_mut(row)) {
            let s = math::sum(g);
            for ((dx, &z), &g) in dx.iter_mut().zip(z).zip(g) {
                *dx = g - math::exp(z) * s;
            }
        }
    }
}

/// Writes (x - mean) / sqrt(var + eps) of one row into `y` and returns the denominator.
#[inline(always)]
fn standardize(x: &[f32], y: &mut [f32], eps: f32) -> f32 {
    let n = x.len() as f32;
    let mean = math::sum(x) / n;
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x - mean;
    }
    let denom = (math::dot(y, y) / n + eps).sqrt();
    for y in y.iter_mut() {
        *y /= denom;
    }
    denom
}

/// Writes x / sqrt(mean(x^2) + eps) of one row into `y` and returns the denominator.
#[inline(always)]
fn rms_scale(x: &[f32], y: &mut [f32], eps: f32) -> f32 {
    let denom = (math::dot(x, x) / x.len() as f32 + eps).sqrt();
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x / denom;
    }
    denom
}

/// The gradient of a normalisation y = (x - c) / denom from y (in `dx` on entry), its denominator
/// and the incoming gradient: dx = (g - mean(g) - y mean(g y)) / denom for LayerNorm (`centred`),
/// (g - y mean(g y)) / denom for RMSNorm.
#[inline(always)]
fn normalization_grad(g: &[f32], dx: &mut [f32], denom: f32, centred: bool) {
    let n = g.len() as f32;
    let mean_g = if centred { math::sum(g) / n } else { 0.0 };
    let mean_gy = math::dot(g, dx) / n;
    for (dx, &g) in dx.iter_mut().zip(g) {
        *dx = (g - mean_g - *dx * mean_gy) / denom;
    }
}

/// Writes one row's normalisation into `y` (centred for LayerNorm, not for RMSNorm) and returns
/// its denominator.
#[inline(always)]
fn normalize(x: &[f32], y: &mut [f32], eps: f32, centred: bool) -> f32 {
    if centred {
        standardize(x, y, eps)
    } else {
        rms_scale(x, y, eps)
    }
}

crate::multiversion! {
    /// Each row normalised, LayerNorm's way (`centred`) or RMSNorm's, without scale and shift.
    fn norm_rows(x: &[f32], y: &mut [f32], row: usize, eps: f32, centred: bool) {
        for (x, y) in x.chunks(row).zip(y.chunks_mut(row)) {
            normalize(x, y, eps, centred);
        }
    }
}

crate::multiversion! {
    /// The gradient of [`norm_rows`] at x for the incoming gradient g, each row's normalisation
    /// recomputed from x.
    fn norm_grad_rows(x: &[f32], g: &[f32], dx: &mut [f32], row: usize, eps: f32, centred: bool) {
        for ((x, g), dx) in x.chunks(row).zip(g.chunks(row)).zip(dx.chunks_mut(row)) {
            let denom = normalize(x, dx, eps, centred);
            normalization_grad(g, dx, denom, centred);
        }
    }
}

/// GELU, element-wise.
pub fn gelu(x: FlexTensor) -> FlexTensor {
    unary(x, Some(ELEMENTWISE_ROW), |x, y, _| gelu_slice(x, y))
}

/// The gradient of GELU at `x` for the incoming gradient `grad`.
pub fn gelu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
    binary(x, grad, Some(ELEMENTWISE_ROW), |x, g, dx, _| {
        gelu_grad_slice(x, g, dx)
    })
}

/// Softmax over the last dimension.
pub fn softmax(x: FlexTensor) -> FlexTensor {
    unary(x, None, softmax_rows)
}

/// The gradient of softmax from its output `y`.
pub fn softmax_backward(y: FlexTensor, grad: FlexTensor) -> FlexTensor {
    binary(y, grad, None, softmax_grad_rows)
}

/// Log-softmax over the last dimension.
pub fn log_softmax(x: FlexTensor) -> FlexTensor {
    unary(x, None, log_softmax_rows)
}

/// The gradient of log-softmax from its output `z`.
pub fn log_softmax_backward(z: FlexTensor, grad: FlexTensor) -> FlexTensor {
    binary(z, grad, None, log_softmax_grad_rows)
}

/// LayerNorm's normalisation over the last dimension.
pub fn layer_norm(x: FlexTensor, eps: f64) -> FlexTensor {
    norm(x, eps, true)
}

/// The gradient of LayerNorm's normalisation at `x`.
pub fn layer_norm_backward(x: FlexTensor, grad: FlexTensor, eps: f64) -> FlexTensor {
    norm_backward(x, grad, eps, true)
}

/// RMSNorm's normalisation over the last dimension.
pub fn rms_norm(x: FlexTensor, eps: f64) -> FlexTensor {
    norm(x, eps, false)
}

/// The gradient of RMSNorm's normalisation at `x`.
pub fn rms_norm_backward(x: FlexTensor, grad: FlexTensor, eps: f64) -> FlexTensor {
    norm_backward(x, grad, eps, false)
}

fn norm(x: FlexTensor, eps: f64, centred: bool) -> FlexTensor {
    unary(x, None, move |x, y, row| {
        norm_rows(x, y, row, eps as f32, centred)
    })
}

fn norm_backward(x: FlexTensor, grad: FlexTensor, eps: f64, centred: bool) -> FlexTensor {
    binary(x, grad, None, move |x, g, dx, row| {
        norm_grad_rows(x, g, dx, row, eps as f32, centred)
    })
}

/// A kernel of one tensor over chunks of whole rows of `row` elements (the last dimension when
/// `None`); `f` gets the input chunk, the output chunk and the row length.
fn unary(
    x: FlexTensor,
    row: Option<usize>,
    f: impl Fn(&[f32], &mut [f32], usize) + Sync,
) -> FlexTensor {
    let (shape, x) = read(&x);
    let row = row.unwrap_or_else(|| last(&shape)).max(1);
    write(map_rows(slice(&x), row, |x, y| f(x, y, row)), shape)
}

/// A kernel of two tensors of one shape, as [`unary`].
fn binary(
    a: FlexTensor,
    b: FlexTensor,
    row: Option<usize>,
    f: impl Fn(&[f32], &[f32], &mut [f32], usize) + Sync,
) -> FlexTensor {
    let (shape, a) = read(&a);
    let (_, b) = read(&b);
    let row = row.unwrap_or_else(|| last(&shape)).max(1);
    write(
        zip_rows(slice(&a), slice(&b), row, |a, b, y| f(a, b, y, row)),
        shape,
    )
}

/// The length of the last dimension (1 for a scalar).
fn last(shape: &[usize]) -> usize {
    shape.last().copied().unwrap_or(1)
}
