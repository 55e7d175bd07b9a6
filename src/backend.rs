//! Compute backends: which were compiled in, and the device for a `--backend` name.

use crate::error::{LabError, LabResult};
use burn::prelude::*;

/// Backends this binary was built with, default first.
pub fn compiled() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "flex") {
        v.push("flex");
    }
    if cfg!(feature = "ndarray") {
        v.push("ndarray");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

/// The default backend (the first compiled in).
pub fn default_backend() -> &'static str {
    compiled().first().copied().unwrap_or("none")
}

/// The (non-autodiff) device of backend `name`, GPU `index` where that applies.
pub fn device(name: &str, index: usize) -> LabResult<Device> {
    let _ = index;
    let dev = match name {
        #[cfg(feature = "flex")]
        "flex" => Device::flex(),
        #[cfg(feature = "ndarray")]
        "ndarray" => Device::ndarray(),
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(DeviceKind::DiscreteGpu(index)),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(index),
        other => {
            return Err(LabError::input(
                "--backend",
                None,
                format!(
                    "backend '{other}' is not compiled into this binary (compiled: {}); rebuild with --features {other}",
                    compiled().join(", ")
                ),
            ))
        }
    };
    Ok(dev)
}

/// A one-line description of the device for results.
pub fn describe(device: &Device) -> String {
    format!("{device:?}")
}
