//! Project tasks that cargo alone does not do: `cargo xtask ui` (the web UI's browser
//! bundle) and `cargo xtask tidy` (the conventions no compiler checks).

mod tidy;
mod ui;

use std::path::Path;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")?
        .to_path_buf();
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
