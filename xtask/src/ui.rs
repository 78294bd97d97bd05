//! `cargo xtask ui` builds the web UI's browser bundle: the `hydrate` build of
//! troupe-frontend for wasm32, then its JavaScript glue, into `target/site/pkg/` where
//! `troupe up` serves it from.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const OUTPUT_NAME: &str = "troupe";

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

const TARGET: &str = "wasm32-unknown-unknown";

/// Adds the wasm32 target through rustup when it is missing, so the README's first
/// command works on a fresh machine; without rustup, cargo's own error says what lacks.
fn ensure_target() -> anyhow::Result<()> {
    let Ok(installed) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Ok(());
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == TARGET)
    {
        return Ok(());
    }
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .context("running rustup")?;
    if !added.success() {
        bail!("`rustup target add {TARGET}` failed");
    }
    Ok(())
}

pub fn build_ui(root: &Path) -> anyhow::Result<PathBuf> {
    ensure_target()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--locked",
            "-p",
            "troupe-frontend",
            "--lib",
            "--features",
            "hydrate",
            "--target",
            TARGET,
            "--profile",
            "wasm-release",
        ])
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!(
            "the wasm32 build failed: see cargo's errors above (without the target, \
             `rustup target add wasm32-unknown-unknown`)"
        );
    }
    let target = target_dir(root);
    let wasm = target.join("wasm32-unknown-unknown/wasm-release/troupe_frontend.wasm");
    let out = target.join("site/pkg");
    std::fs::create_dir_all(&out)?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)?
        .out_name(OUTPUT_NAME)
        .generate(&out)
        .context("generating the JavaScript glue")?;
    let bundle = out.join(format!("{OUTPUT_NAME}_bg.wasm"));
    let bytes = std::fs::read(&bundle)?;
    std::fs::write(
        &bundle,
        without_names(&bytes).context("reading the bundle's sections")?,
    )?;
    Ok(out)
}

/// The module without its `name` section: function names for debuggers, most of the
/// file (3 of 5 MB), and not needed to run. Stripping them in the profile would also
/// drop the `target_features` section wasm-bindgen reads, so they go after it.
fn without_names(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    fn leb128(bytes: &[u8], at: &mut usize) -> anyhow::Result<usize> {
        let (mut value, mut shift) = (0_usize, 0);
        loop {
            let byte = *bytes.get(*at).context("a section runs past the end")?;
            *at += 1;
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 35 {
                bail!("a section size is not a 32-bit LEB128");
            }
        }
    }
    if module.len() < 8 || &module[..4] != b"\0asm" {
        bail!("not a WebAssembly module");
    }
    let mut kept = module[..8].to_vec();
    let mut at = 8;
    while at < module.len() {
        let start = at;
        let id = module[at];
        at += 1;
        let size = leb128(module, &mut at)?;
        let end = at
            .checked_add(size)
            .filter(|end| *end <= module.len())
            .context("a section runs past the end")?;
        let is_names = id == 0 && {
            let mut name_at = at;
            let length = leb128(module, &mut name_at)?;
            module.get(name_at..name_at + length) == Some(b"name".as_slice())
        };
        if !is_names {
            kept.extend_from_slice(&module[start..end]);
        }
        at = end;
    }
    Ok(kept)
}
