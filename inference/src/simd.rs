//! The CPU features that decide how fast the kernels run: what the machine has, what
//! this build was compiled to use (`.cargo/config.toml` sets x86-64-v3), and which path
//! our quantised products take.

/// Features present on this CPU, e.g. `["avx", "avx2", "fma", "f16c"]`.
pub fn detected() -> Vec<&'static str> {
    let mut features = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            features.push("avx");
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            features.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("fma") {
            features.push("fma");
        }
        if std::arch::is_x86_feature_detected!("f16c") {
            features.push("f16c");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            features.push("avx512f");
        }
        if std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            features.push("avx512vnni");
        }
    }
    #[cfg(target_arch = "aarch64")]
    features.push("neon");
    features
}

/// Features this binary's code was compiled to use.
pub fn compiled() -> Vec<&'static str> {
    let mut features = Vec::new();
    if cfg!(target_feature = "avx") {
        features.push("avx");
    }
    if cfg!(target_feature = "avx2") {
        features.push("avx2");
    }
    if cfg!(target_feature = "fma") {
        features.push("fma");
    }
    if cfg!(target_feature = "f16c") {
        features.push("f16c");
    }
    if cfg!(target_feature = "neon") {
        features.push("neon");
    }
    features
}

/// The path our quantised products take on this machine: `avx512vnni`, `avx2` or
/// `portable`.
pub fn kernel_path() -> &'static str {
    crate::kernels::path()
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn this_build_uses_avx2_and_fma_as_configured() {
        // Fails when .cargo/config.toml's target-cpu is lost: the quantized kernels
        // would silently run several times slower.
        let compiled = super::compiled();
        assert!(
            compiled.contains(&"avx2") && compiled.contains(&"fma"),
            "{compiled:?}"
        );
        for feature in compiled {
            assert!(
                super::detected().contains(&feature),
                "compiled for {feature}, which this CPU lacks"
            );
        }
    }
}
