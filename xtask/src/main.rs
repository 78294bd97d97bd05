//! Project tasks that cargo alone does not do. `cargo xtask ui` builds the web UI's
//! browser bundle: the `hydrate` build of troupe-frontend for wasm32, then its
//! JavaScript glue, into `target/site/pkg/` where `troupe up` serves it from.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const OUTPUT_NAME: &str = "troupe";

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn build_ui(root: &Path) -> anyhow::Result<PathBuf> {
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
            "wasm32-unknown-unknown",
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
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")?
        .to_path_buf();
    match std::env::args().nth(1).as_deref() {
        Some("ui") => {
            let out = build_ui(&root)?;
            println!("the UI bundle is in {}", out.display());
            Ok(())
        }
        _ => bail!("usage: cargo xtask ui"),
    }
}
