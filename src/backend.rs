//! Compute backends: which were compiled in, the devices each one sees, and the device for a
//! `--backend NAME --device N` pair, with errors that name the backend and list what was found.

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

/// The CPU backend `auto` falls back to (the first compiled in).
pub fn cpu_backend() -> &'static str {
    compiled()
        .into_iter()
        .find(|b| !is_gpu(b))
        .unwrap_or("none")
}

/// The backend a name stands for: `auto` is a GPU backend when a hardware GPU is present (CUDA
/// first, then wgpu; software adapters such as lavapipe do not count), else the CPU backend.
pub fn resolve(name: &str) -> String {
    if name != "auto" {
        return name.to_string();
    }
    for gpu in ["cuda", "wgpu"] {
        if compiled().contains(&gpu)
            && gpu_devices(gpu).is_ok_and(|devs| devs.iter().any(is_hardware))
        {
            return gpu.to_string();
        }
    }
    cpu_backend().to_string()
}

/// Whether a device is a hardware GPU (a card), not a CPU or a software rasteriser.
#[allow(unused_variables)]
fn is_hardware(device: &Device) -> bool {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if let Ok(Some(id)) = guarded(|| device.identity()) {
        return id.physical.is_some();
    }
    false
}

/// Whether `name` runs on a GPU (one run per device by default, device indices apply).
pub fn is_gpu(name: &str) -> bool {
    matches!(name, "wgpu" | "cuda")
}

/// The message of a caught panic.
fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown error".into())
}

/// Runs `f`, turning a panic inside the backend (a missing driver, a failed adapter request) into
/// an error message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    r.map_err(|e| panic_message(e.as_ref()))
}

/// The devices a GPU backend sees, in the order `--device` counts them.
#[allow(unused_variables)]
fn gpu_devices(name: &str) -> Result<Vec<Device>, String> {
    guarded(|| match name {
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::enumerate(burn::tensor::DeviceType::Wgpu).into_vec(),
        #[cfg(feature = "cuda")]
        "cuda" => Device::enumerate(burn::tensor::DeviceType::Cuda).into_vec(),
        _ => Vec::new(),
    })
}

/// A device's own name (the adapter or card), or its debug form where the backend reports none.
pub fn describe(device: &Device) -> String {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if let Ok(Some(id)) = guarded(|| device.identity()) {
        return format!("{} ({})", id.name, id.fingerprint);
    }
    format!("{device:?}")
}

/// One line per device a backend sees: `N: name`, or why it sees none.
pub fn list_devices(name: &str) -> Vec<String> {
    if !is_gpu(name) {
        return vec!["0: the CPU".into()];
    }
    match gpu_devices(name) {
        Ok(devs) if devs.is_empty() => vec!["none".into()],
        Ok(devs) => devs
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{i}: {}", describe(d)))
            .collect(),
        Err(e) => vec![format!("none ({e})")],
    }
}

/// What to install when a GPU backend finds no device.
fn driver_hint(name: &str) -> &'static str {
    match name {
        "wgpu" => "a Vulkan, Metal or DX12 driver (on Debian without a GPU: apt-get install mesa-vulkan-drivers for lavapipe)",
        _ => "the NVIDIA driver and CUDA runtime (libcuda.so, libnvrtc.so on the library path)",
    }
}

/// The (non-autodiff) device of backend `name`, device `index` where that applies. The device is
/// opened and a small computation checked, so a broken driver is reported here rather than as a
/// panic in the middle of a run.
pub fn device(name: &str, index: usize) -> LabResult<Device> {
    let unavailable = |msg: String| LabError::input("--backend", None, msg);
    let dev = match name {
        #[cfg(feature = "flex")]
        "flex" => Device::flex(),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Device::ndarray(),
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        "wgpu" | "cuda" if compiled().contains(&name) => {
            let devs = gpu_devices(name).map_err(|e| {
                unavailable(format!(
                    "backend '{name}': could not list devices: {e}; install {}",
                    driver_hint(name)
                ))
            })?;
            if devs.is_empty() {
                return Err(unavailable(format!(
                    "backend '{name}' found no device; install {}",
                    driver_hint(name)
                )));
            }
            match devs.get(index) {
                Some(d) => d.clone(),
                None => {
                    return Err(LabError::input(
                        "--device",
                        None,
                        format!(
                            "backend '{name}' has no device {index}; devices seen: {}",
                            list_devices(name).join("; ")
                        ),
                    ))
                }
            }
        }
        other => {
            return Err(unavailable(format!(
                "backend '{other}' is not compiled into this binary (compiled: {}); rebuild with --features {other}",
                compiled().join(", ")
            )))
        }
    };
    if is_gpu(name) {
        let probe = guarded(|| {
            let t = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &dev);
            let s: f32 = t.sum().into_scalar();
            s
        });
        match probe {
            Ok(s) if (s - 6.0).abs() < 1e-6 => {}
            Ok(s) => {
                return Err(unavailable(format!(
                    "backend '{name}' device {index} computed 1+2+3 = {s}"
                )))
            }
            Err(e) => {
                return Err(unavailable(format!(
                    "backend '{name}' device {index} failed to start: {e}; devices seen: {}",
                    list_devices(name).join("; ")
                )))
            }
        }
    }
    Ok(dev)
}
