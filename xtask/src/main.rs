//! Project tasks that cargo alone does not do: `cargo xtask ui` (the web UI's browser
//! bundle) and `cargo xtask tidy` (the conventions no compiler checks).

mod tidy;
mod ui;

use std::path::Path;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let root = workspace_root()?;
    match std::env::args().nth(1).as_deref() {
        Some("ui") => {
            let out = ui::build_ui(&root)?;
            println!("the UI bundle is in {}", out.display());
            Ok(())
        }
        Some("tidy") => tidy::check(&root),
        _ => bail!("usage: cargo xtask ui | cargo xtask tidy"),
    }
}

/// The workspace this command runs in: the nearest directory above the current one whose
/// Cargo.toml declares `[workspace]`. Not `CARGO_MANIFEST_DIR`: clones that share one
/// target directory (CI's fresh clone and a working copy) share this binary too, and it
/// would keep pointing at whichever clone built it last.
fn workspace_root() -> anyhow::Result<std::path::PathBuf> {
    let here = std::env::current_dir().context("reading the current directory")?;
    here.ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.contains("[workspace]"))
        })
        .map(Path::to_path_buf)
        .with_context(|| format!("{} is not inside the Troupe workspace", here.display()))
}
