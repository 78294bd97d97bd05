//! Which device a model runs on: the CPU by default; a CUDA GPU when this build has the
//! `cuda` feature and one is present (`auto`), or when asked for (`cuda`).

use candle_core::Device;

use troupe_config::DeviceChoice;

use crate::errors::InferenceError;

/// Resolves the `models.device` setting.
pub fn select(setting: DeviceChoice) -> Result<Device, InferenceError> {
    match setting {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(gpu().unwrap_or(Device::Cpu)),
        DeviceChoice::Cuda => gpu().ok_or_else(|| {
            InferenceError::InvalidRequest(if cfg!(feature = "cuda") {
                "models.device is `cuda` but no CUDA GPU is usable here; use `auto` or `cpu`"
                    .into()
            } else {
                "models.device is `cuda` but this build has no CUDA support; rebuild with `--features cuda` or use `cpu`".into()
            })
        }),
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
    fn the_cpu_is_chosen_and_a_missing_gpu_says_how_to_get_one() {
        assert!(matches!(select(DeviceChoice::Cpu), Ok(Device::Cpu)));
        if !cfg!(feature = "cuda") {
            assert!(matches!(select(DeviceChoice::Auto), Ok(Device::Cpu)));
            let error = select(DeviceChoice::Cuda).unwrap_err().to_string();
            assert!(error.contains("--features cuda"), "{error}");
        }
    }
}
