//! How agents start child processes: always in their own process group, killed with
//! the node and reaped after a kill (`group`); run to the end within a timeout and with
//! bounded capture of their pipes (`run`, `capture`); with an environment reduced to an
//! allow-list.

mod capture;
mod group;
mod run;

pub(crate) use capture::{Captured, LineSink};
pub(crate) use group::GroupChild;
pub(crate) use run::{Bounds, Finished, run_bounded, run_bounded_with_lines};

use std::collections::BTreeMap;

/// The variables of the node's environment named in `allow_list`, then `extra` (the
/// task's `env` input) on top.
pub(crate) fn environment(
    allow_list: &[String],
    extra: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut environment: BTreeMap<String, String> = allow_list
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
        .collect();
    environment.extend(
        extra
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    environment
}

/// The toolchain's variables of the node's environment, and only those, with a `HOME`
/// that does not exist: what a program run over code that is not ours (a linter, git)
/// sees. No provider keys or store credentials, and no home directory whose
/// configuration could make the program run something else.
pub(crate) fn toolchain_environment() -> BTreeMap<String, String> {
    let toolchain = TOOLCHAIN_VARIABLES.map(String::from);
    let mut environment = environment(&toolchain, None);
    environment.insert("HOME".into(), "/nonexistent".into());
    environment
}

/// Where programs and their interpreters are found (`PYENV_ROOT`: pyenv's shims), and
/// the locale.
const TOOLCHAIN_VARIABLES: [&str; 4] = ["PATH", "PYENV_ROOT", "LANG", "TZ"];

/// The last `max_chars` characters of `text`, for error messages.
pub(crate) fn tail_chars(text: &str, max_chars: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(max_chars)).collect()
}

/// Where `program` would be found on the node's `PATH`, if anywhere: an optional tool
/// (a linter) that is missing is then reported as unavailable instead of failing.
pub(crate) fn find_on_path(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|metadata| {
                metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
            })
        })
}

#[cfg(test)]
mod tests;
