//! Which device a model runs on: the CPU by default; a CUDA GPU when this build has the
//! `cuda` feature and one is present (`auto`), or when asked for (`cuda`).

use candle_core::Device;

use crate::errors::InferenceError;

/// Resolves a `models.device` setting (`cpu`, `cuda`, `auto`).
pub fn select(setting: &str) -> Result<Device, InferenceError> {
    match setting {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(gpu().unwrap_or(Device::Cpu)),
        "cuda" => gpu().ok_or_else(|| {
            InferenceError::InvalidRequest(if cfg!(feature = "cuda") {
                "models.device is `cuda` but no CUDA GPU is usable here; use `auto` or `cpu`"
                    .into()
            } else {
                "models.device is `cuda` but this build has no CUDA support; rebuild with `--features cuda` or use `cpu`".into()
            })
        }),
        other => Err(InferenceError::InvalidRequest(format!(
            "unknown device `{other}`; use cpu, cuda or auto"
        ))),
    }
}

/// How a device is shown in `troupe models list` and `/v1/models`.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda:0".into(),
        Device::Metal(_) => "metal".into(),
    }
}

#[cfg(feature = "cuda")]
fn gpu() -> Option<Device> {
    Device::new_cuda(0).ok()
}

#[cfg(not(feature = "cuda"))]
fn gpu() -> Option<Device> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_is_the_default_and_unknown_devices_are_named() {
        assert!(matches!(select("cpu"), Ok(Device::Cpu)));
        if !cfg!(feature = "cuda") {
            assert!(matches!(select("auto"), Ok(Device::Cpu)));
            let error = select("cuda").unwrap_err().to_string();
            assert!(error.contains("--features cuda"), "{error}");
        }
        let error = select("tpu").unwrap_err().to_string();
        assert!(error.contains("`tpu`"), "{error}");
    }
}
