//! The deployment agent's inputs, checked and filled with defaults.

use crate::workspace::Workspace;
use std::path::{Component, Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use super::templates::Values;
use crate::errors::{AgentError, invalid};
use crate::project::{Toolchain, detect};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentInputs {
    /// Path of the repository to deploy.
    repository: PathBuf,
    /// Where to write the plan: relative to the repository (default `deploy`), or absolute.
    output_dir: Option<String>,
    /// DNS-1123 name; the directory's name by default.
    app_name: Option<String>,
    /// Image reference; `<app_name>:latest` by default.
    image: Option<String>,
    /// Port the application listens on.
    port: Option<u64>,
    /// Pods to run (default 2).
    replicas: Option<u64>,
    /// Command (`sh -c`, in the repository) run when dry_run is false.
    pub deploy_command: Option<String>,
    /// Render only (default true).
    pub dry_run: Option<bool>,
    /// Target environment and namespace (default staging).
    environment: Option<String>,
}

pub(crate) struct Request {
    pub repository: PathBuf,
    pub output_dir: PathBuf,
    pub values: Values,
}

pub(crate) fn toolchain_name(toolchain: Toolchain) -> &'static str {
    match toolchain {
        Toolchain::Rust => "cargo",
        Toolchain::Python => "python",
        Toolchain::Node => "node",
        Toolchain::Go => "go",
    }
}

impl Request {
    pub(crate) fn from_inputs(
        inputs: &DeploymentInputs,
        max_replicas: u32,
        workspace: &Workspace,
    ) -> Result<Self, AgentError> {
        let repository = repository(workspace, &inputs.repository)?;
        let toolchain = detect(&repository).ok_or_else(|| {
            invalid(
                "repository",
                format!(
                    "`{}` has no Cargo.toml, go.mod, package.json, requirements.txt or \
                     pyproject.toml at its root, so there is no template for it",
                    repository.display()
                ),
            )
        })?;
        let output_dir = output_dir(&repository, inputs.output_dir.as_deref())?;
        let output_dir = workspace.place("output_dir", &output_dir)?;
        let app_name = match &inputs.app_name {
            Some(name) => dns_label("app_name", name, "")?,
            None => slug(
                &repository
                    .file_name()
                    .map(|name| name.to_string_lossy())
                    .unwrap_or_default(),
            ),
        };
        let image = match &inputs.image {
            Some(image) => image_reference(image)?,
            None => format!("{app_name}:latest"),
        };
        let default_port = match toolchain {
            Toolchain::Python => 8000,
            Toolchain::Node => 3000,
            Toolchain::Rust | Toolchain::Go => 8080,
        };
        let port = match inputs.port {
            None => default_port,
            Some(port) => u16::try_from(port)
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| invalid("port", format!("{port} is not a port (1 to 65535)")))?,
        };
        let replicas = match inputs.replicas {
            None => 2,
            Some(replicas) => u32::try_from(replicas)
                .ok()
                .filter(|replicas| (1..=max_replicas).contains(replicas))
                .ok_or_else(|| {
                    invalid(
                        "replicas",
                        format!("{replicas} is not between 1 and {max_replicas}"),
                    )
                })?,
        };
        let environment = match &inputs.environment {
            None => "staging".to_string(),
            Some(name) => dns_label("environment", name, " for the namespace")?,
        };
        let dockerfile_path = output_dir
            .strip_prefix(&repository)
            .map(|relative| relative.join("Dockerfile").to_string_lossy().into_owned())
            .unwrap_or_else(|_| "Dockerfile".into());
        let (entrypoint, install) = toolchain_details(toolchain, &repository)?;
        Ok(Self {
            repository,
            output_dir,
            values: Values {
                toolchain,
                app_name,
                image,
                port,
                replicas,
                environment,
                dockerfile_path,
                entrypoint,
                install,
            },
        })
    }
}

fn repository(workspace: &Workspace, given: &Path) -> Result<PathBuf, AgentError> {
    Some(workspace.place("repository", given)?)
        .filter(|path| path.is_dir())
        .ok_or_else(|| {
            invalid(
                "repository",
                format!(
                    "`{}` is not a directory; give the path of a checked-out repository",
                    given.display()
                ),
            )
        })
}

/// `name` when it is a DNS-1123 label; else an error suggesting its slug.
fn dns_label(field: &str, name: &str, why: &str) -> Result<String, AgentError> {
    if is_dns_label(name) {
        return Ok(name.to_string());
    }
    Err(invalid(
        field,
        format!(
            "`{name}` is not a DNS-1123 label{why} (lowercase letters, digits and `-`, at \
             most 63, starting and ending with a letter or digit); try `{}`",
            slug(name)
        ),
    ))
}

fn image_reference(image: &str) -> Result<String, AgentError> {
    if is_image_reference(image) {
        return Ok(image.to_string());
    }
    Err(invalid(
        "image",
        format!("`{image}` is not an image reference like `registry.example.com/team/app:1.2.3`"),
    ))
}

/// The default (`<repository>/deploy`), a relative path that stays inside the
/// repository, or an absolute path given explicitly.
fn output_dir(repository: &Path, given: Option<&str>) -> Result<PathBuf, AgentError> {
    let Some(given) = given else {
        return Ok(repository.join("deploy"));
    };
    let path = Path::new(given);
    if path.is_absolute() {
        return Ok(normalise(path));
    }
    let joined = normalise(&repository.join(path));
    let escapes = path
        .components()
        .any(|component| component == Component::ParentDir)
        && !joined.starts_with(repository);
    if escapes || joined == repository {
        return Err(invalid(
            "output_dir",
            format!(
                "`{given}` resolves outside the repository (or to its root); give a \
                 subdirectory such as `deploy`, or an absolute path to write elsewhere"
            ),
        ));
    }
    // A symlinked directory inside the repository could still point out of it.
    if let Ok(real) = joined.canonicalize()
        && !real.starts_with(repository)
    {
        return Err(invalid(
            "output_dir",
            format!(
                "`{given}` is a link to {} outside the repository; give an absolute path to write there",
                real.display()
            ),
        ));
    }
    Ok(joined)
}

/// Removes `.` and resolves `..` lexically.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What the Dockerfile starts (Rust binary, Python script) and how dependencies are
/// installed (Python, Node).
fn toolchain_details(
    toolchain: Toolchain,
    repository: &Path,
) -> Result<(String, String), AgentError> {
    let has = |name: &str| repository.join(name).exists();
    Ok(match toolchain {
        Toolchain::Rust => (cargo_binary(repository)?, String::new()),
        Toolchain::Python => {
            let script = ["main.py", "app.py"]
                .into_iter()
                .find(|name| has(name))
                .unwrap_or("main.py");
            let install = if has("requirements.txt") {
                "pip install --no-cache-dir -r requirements.txt"
            } else {
                "pip install --no-cache-dir ."
            };
            (script.to_string(), install.to_string())
        }
        Toolchain::Node => {
            let install = if has("package-lock.json") {
                "npm ci --omit=dev"
            } else {
                "npm install --omit=dev"
            };
            (String::new(), install.to_string())
        }
        Toolchain::Go => (String::new(), String::new()),
    })
}

/// The first `[[bin]]`'s name, else the package's: the binary `cargo build` makes.
fn cargo_binary(repository: &Path) -> Result<String, AgentError> {
    let manifest = std::fs::read_to_string(repository.join("Cargo.toml"))
        .map_err(|error| AgentError::Io(format!("reading Cargo.toml: {error}")))?;
    let manifest: toml::Table = toml::from_str(&manifest).map_err(|error| {
        invalid(
            "repository",
            format!("its Cargo.toml does not parse: {error}"),
        )
    })?;
    let bin = manifest
        .get("bin")
        .and_then(|bins| bins.as_array())
        .and_then(|bins| bins.first())
        .and_then(|bin| bin.get("name"))
        .and_then(|name| name.as_str());
    let package = manifest
        .get("package")
        .and_then(|package| package.get("name"))
        .and_then(|name| name.as_str());
    let name = bin.or(package).ok_or_else(|| {
        invalid("repository", "its Cargo.toml names no package (a workspace root?); give the member crate's directory")
    })?;
    // Pasted into the Dockerfile: only the characters cargo allows in a name.
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            "repository",
            format!("its Cargo.toml names the binary `{name}`, which is not a valid crate name"),
        ));
    }
    Ok(name.to_string())
}

pub(crate) fn is_dns_label(name: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 63
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A DNS-1123 label made from `text`: lowercased, other characters to `-`, runs of `-`
/// collapsed, trimmed to 63; `app` when nothing is left.
pub(crate) fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(63).collect();
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() { "app".into() } else { slug }
}

/// A conservative image reference: registry/path:tag@digest characters only, so it
/// cannot break out of the quoted YAML or Dockerfile it is written into.
fn is_image_reference(image: &str) -> bool {
    !image.is_empty()
        && image.len() <= 255
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_dns_labels() {
        assert_eq!(slug("My_Service.v2"), "my-service-v2");
        assert_eq!(slug("--"), "app");
        assert!(is_dns_label(&slug(&"x".repeat(100))));
        assert!(!is_dns_label("Bad"));
        assert!(!is_dns_label("-bad"));
    }

    #[test]
    fn output_dirs_stay_inside_unless_absolute() {
        let repo = Path::new("/srv/repo");
        assert_eq!(
            output_dir(repo, None).unwrap(),
            Path::new("/srv/repo/deploy")
        );
        assert_eq!(
            output_dir(repo, Some("ops/./k8s")).unwrap(),
            Path::new("/srv/repo/ops/k8s")
        );
        assert_eq!(
            output_dir(repo, Some("/tmp/plan")).unwrap(),
            Path::new("/tmp/plan")
        );
        for outside in ["../x", "a/../../x", "."] {
            let error = output_dir(repo, Some(outside)).unwrap_err().to_string();
            assert!(
                error.contains("resolves outside the repository"),
                "{outside}: {error}"
            );
        }
    }
}
