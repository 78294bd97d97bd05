//! What kind of project a repository is, from the files at its root. Shared by the
//! agents that need to know how a project is built, tested or packaged.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Toolchain {
    Rust,
    Go,
    Node,
    Python,
}

/// The first toolchain whose marker file is at the root, in a fixed order (a polyglot
/// repository is named by its most specific marker; callers let the task override it).
pub(crate) fn detect(root: &Path) -> Option<Toolchain> {
    let has = |name: &str| root.join(name).exists();
    if has("Cargo.toml") {
        Some(Toolchain::Rust)
    } else if has("go.mod") {
        Some(Toolchain::Go)
    } else if has("package.json") {
        Some(Toolchain::Node)
    } else if [
        "pyproject.toml",
        "requirements.txt",
        "setup.py",
        "setup.cfg",
        "pytest.ini",
        "tox.ini",
        "conftest.py",
    ]
    .iter()
    .any(|name| has(name))
        || has_python_tests(root)
    {
        Some(Toolchain::Python)
    } else {
        None
    }
}

/// `test_*.py` at the root or in `tests/`: a pytest project without packaging files.
fn has_python_tests(root: &Path) -> bool {
    [root.to_path_buf(), root.join("tests")].iter().any(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                name.starts_with("test_") && name.ends_with(".py")
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_marker_and_nothing_in_an_empty_tree() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect(dir.path()), None);
        std::fs::write(dir.path().join("test_x.py"), "").unwrap();
        assert_eq!(detect(dir.path()), Some(Toolchain::Python));
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        assert_eq!(detect(dir.path()), Some(Toolchain::Node));
        std::fs::write(dir.path().join("go.mod"), "module x").unwrap();
        assert_eq!(detect(dir.path()), Some(Toolchain::Go));
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(detect(dir.path()), Some(Toolchain::Rust));
    }
}
