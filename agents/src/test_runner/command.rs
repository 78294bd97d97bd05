//! What to run for each project type, and whether coverage can be measured cheaply.

use std::path::Path;

use tokio::process::Command;

use crate::errors::AgentError;
use crate::project::Toolchain;

use super::parse::{
    CargoParser, FailureLimits, GoParser, OutputParser, PytestParser, TapParser, pytest,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProjectType {
    Cargo,
    Pytest,
    Npm,
    Go,
    /// A `command` given by the task in a tree whose type is unknown: no parser.
    Custom,
}

impl ProjectType {
    pub(crate) const NAMES: &str = "cargo, pytest, npm, go";

    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "cargo" => Some(Self::Cargo),
            "pytest" => Some(Self::Pytest),
            "npm" => Some(Self::Npm),
            "go" => Some(Self::Go),
            _ => None,
        }
    }

    pub(crate) fn from_toolchain(toolchain: Toolchain) -> Self {
        match toolchain {
            Toolchain::Rust => Self::Cargo,
            Toolchain::Python => Self::Pytest,
            Toolchain::Node => Self::Npm,
            Toolchain::Go => Self::Go,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Cargo => "cargo",
            Self::Pytest => "pytest",
            Self::Npm => "npm",
            Self::Go => "go",
            Self::Custom => "custom",
        }
    }

    pub(crate) fn parser(self, limits: FailureLimits) -> Option<Box<dyn OutputParser>> {
        match self {
            Self::Cargo => Some(Box::new(CargoParser::new(limits))),
            Self::Pytest => Some(Box::new(PytestParser::new(limits))),
            Self::Npm => Some(Box::new(TapParser::new(limits))),
            Self::Go => Some(Box::new(GoParser::new(limits))),
            Self::Custom => None,
        }
    }

    /// The tool that must be installed, and how to install it.
    fn required_tool(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Cargo => Some(("cargo", "install Rust with rustup")),
            Self::Pytest => Some(("python3", "install Python 3 (apt-get install python3)")),
            Self::Npm => Some((
                "npm",
                "install Node.js and npm (apt-get install nodejs npm)",
            )),
            Self::Go => Some(("go", "install Go (apt-get install golang-go)")),
            Self::Custom => None,
        }
    }
}

/// The script to run and, when coverage was wanted but cannot be had, why.
pub(crate) struct Plan {
    pub script: String,
    pub coverage_note: Option<String>,
}

/// Checks the toolchain is there and builds the default command for `project_type`.
pub(crate) async fn default_plan(
    project_type: ProjectType,
    reports_dir: &Path,
    coverage: bool,
) -> Result<Plan, AgentError> {
    if let Some((tool, install)) = project_type.required_tool()
        && !succeeds(tool, &[version_flag(tool)]).await
    {
        return Err(AgentError::Failed(format!(
            "`{tool}` is needed to run {} tests but cannot be run here: {install}",
            project_type.name()
        )));
    }
    let not_measured = |why: &str| coverage.then(|| why.to_string());
    let plan = match project_type {
        ProjectType::Cargo => {
            if coverage && succeeds("cargo", &["llvm-cov", "--version"]).await {
                Plan {
                    script: "cargo llvm-cov --offline --color never --summary-only".into(),
                    coverage_note: None,
                }
            } else {
                Plan {
                    script: "cargo test --offline --color never".into(),
                    coverage_note: not_measured(
                        "cargo coverage needs cargo-llvm-cov (cargo install cargo-llvm-cov)",
                    ),
                }
            }
        }
        ProjectType::Pytest => {
            if !succeeds("python3", &["-c", "import pytest"]).await {
                return Err(AgentError::Failed(
                    "pytest is not importable by python3: install it (pip install pytest)".into(),
                ));
            }
            let junit = reports_dir.join(pytest::JUNIT_FILE);
            let mut script = format!(
                "python3 -m pytest -q -rA -p no:cacheprovider --junitxml={}",
                quote(&junit.to_string_lossy())
            );
            let mut coverage_note = None;
            if coverage {
                if succeeds("python3", &["-c", "import pytest_cov"]).await {
                    script.push_str(" --cov=. --cov-report=term");
                    coverage_note = None;
                } else {
                    coverage_note = Some(
                        "pytest-cov is not installed for python3 (pip install pytest-cov)".into(),
                    );
                }
            }
            Plan {
                script,
                coverage_note,
            }
        }
        ProjectType::Npm => Plan {
            script: "npm test".into(),
            coverage_note: not_measured(
                "npm projects measure coverage in their own test script, which this agent \
                 does not change",
            ),
        },
        ProjectType::Go => Plan {
            script: if coverage {
                "go test -json -cover ./...".into()
            } else {
                "go test -json ./...".into()
            },
            coverage_note: None,
        },
        ProjectType::Custom => {
            return Err(AgentError::InvalidInput {
                field: "command".into(),
                reason: "is required when the project type is not known".into(),
            });
        }
    };
    Ok(plan)
}

/// `go` has a `version` subcommand and no `--version` flag.
fn version_flag(tool: &str) -> &'static str {
    if tool == "go" { "version" } else { "--version" }
}

async fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .is_ok_and(|status| status.success())
}

/// Single-quotes `text` for `sh`.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
