//! The fused operations on the CPU backend's tensors: GELU, softmax and log-softmax over the last
//! dimension, forward and backward, each one pass over f32 memory (burn decomposes softmax into five
//! operations, each allocating a tensor, and evaluates GELU's erf by a scalar libm call).
//! Rows are split over rayon's threads when a tensor is large enough to pay for it.

use super::math;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

/// Tensors with fewer elements than this run on the calling thread.
const PARALLEL_FROM: usize = 1 << 16;

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

/// `out[i] = f(a[i])` over chunks of rows, in parallel when large.
fn map_rows(a: &[f32], row: usize, f: impl Fn(&[f32], &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0.0f32; a.len()];
    let row = row.max(1);
    if a.len() < PARALLEL_FROM {
        for (x, y) in a.chunks(row).zip(out.chunks_mut(row)) {
            f(x, y);
        }
    } else {
        // Whole rows per task, about PARALLEL_FROM / 4 elements each.
        let per_task = (PARALLEL_FROM / 4).div_ceil(row) * row;
        out.par_chunks_mut(per_task)
            .zip(a.par_chunks(per_task))
            .for_each(|(y, x)| {
                for (xr, yr) in x.chunks(row).zip(y.chunks_mut(row)) {
                    f(xr, yr);
                }
            });
    }
    out
}

/// `out[i] = f(a[i], b[i])` row by row, as [`map_rows`].
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
    let row = row.max(1);
    if a.len() < PARALLEL_FROM {
        for ((x, g), y) in a.chunks(row).zip(b.chunks(row)).zip(out.chunks_mut(row)) {
            f(x, g, y);
        }
    } else {
        let per_task = (PARALLEL_FROM / 4).div_ceil(row) * row;
        out.par_chunks_mut(per_task)
            .zip(a.par_chunks(per_task).zip(b.par_chunks(per_task)))
            .for_each(|(y, (x, g))| {
                for ((xr, gr), yr) in x.chunks(row).zip(g.chunks(row)).zip(y.chunks_mut(row)) {
                    f(xr, gr, yr);
                }
            });
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

crate::multiversion! {
    /// y = exp(x - max) / sum over one row.
    fn softmax_row(x: &[f32], y: &mut [f32]) {
        let m = math::max(x);
        for (y, &x) in y.iter_mut().zip(x) {
            *y = math::exp(x - m);
        }
        let s = math::sum(y);
        for y in y.iter_mut() {
            *y /= s;
        }
    }
}

crate::multiversion! {
    /// dx = y (g - sum(g y)) over one row.
    fn softmax_grad_row(y: &[f32], g: &[f32], dx: &mut [f32]) {
        let s = math::dot(g, y);
        for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(g) {
            *dx = y * (g - s);
        }
    }
}

crate::multiversion! {
    /// z = (x - max) - ln(sum exp(x - max)) over one row.
    fn log_softmax_row(x: &[f32], z: &mut [f32]) {
        let m = math::max(x);
        for (z, &x) in z.iter_mut().zip(x) {
            *z = math::exp(x - m);
        }
        let log_sum = math::sum(z).ln();
        for (z, &x) in z.iter_mut().zip(x) {
            *z = (x - m) - log_sum;
        }
    }
}

crate::multiversion! {
    /// dx = g - exp(z) sum(g) over one row.
    fn log_softmax_grad_row(z: &[f32], g: &[f32], dx: &mut [f32]) {
        let s = math::sum(g);
        for ((dx, &z), &g) in dx.iter_mut().zip(z).zip(g) {
            *dx = g - math::exp(z) * s;
        }
    }
}

/// GELU, element-wise.
pub fn gelu(x: FlexTensor) -> FlexTensor {
    unary(x, ELEMENTWISE_ROW, gelu_slice)
}

/// The gradient of GELU at `x` for the incoming gradient `grad`.
pub fn gelu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
    binary(x, grad, Some(ELEMENTWISE_ROW), gelu_grad_slice)
}

/// Softmax over the last dimension.
pub fn softmax(x: FlexTensor) -> FlexTensor {
    let row = last(x.layout().shape());
    unary(x, row, softmax_row)
}

/// The gradient of softmax from its output `y`.
pub fn softmax_backward(y: FlexTensor, grad: FlexTensor) -> FlexTensor {
    binary(y, grad, None, softmax_grad_row)
}

/// Log-softmax over the last dimension.
pub fn log_softmax(x: FlexTensor) -> FlexTensor {
    let row = last(x.layout().shape());
    unary(x, row, log_softmax_row)
}

/// The gradient of log-softmax from its output `z`.
pub fn log_softmax_backward(z: FlexTensor, grad: FlexTensor) -> FlexTensor {
    binary(z, grad, None, log_softmax_grad_row)
}

/// A row-wise kernel of one tensor, rows of `row` elements.
fn unary(x: FlexTensor, row: usize, f: fn(&[f32], &mut [f32])) -> FlexTensor {
    let (shape, x) = read(&x);
    write(map_rows(slice(&x), row, f), shape)
}

/// A row-wise kernel of two tensors of one shape, rows of `row` elements (the last dimension when
/// `None`).
fn binary(
    a: FlexTensor,
    b: FlexTensor,
    row: Option<usize>,
    f: fn(&[f32], &[f32], &mut [f32]),
) -> FlexTensor {
    let (shape, a) = read(&a);
    let (_, b) = read(&b);
    let row = row.unwrap_or_else(|| last(&shape));
    write(zip_rows(slice(&a), slice(&b), row, f), shape)
}

/// The length of the last dimension (1 for a scalar).
fn last(shape: &[usize]) -> usize {
    shape.last().copied().unwrap_or(1)
}
