//! `security_scanner`: the agent kind over the `troupe-scanner` library. It checks the
//! task's inputs, runs the scan off the async threads (cancellable), optionally asks an
//! OSV endpoint about the dependencies found, and returns the report as outputs, with
//! SARIF written where the task asks.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde_json::{Map, Value, json};
use troupe_scanner::{
    AdvisoryDb, ScannerConfig, load_advisories, query_osv, scan_repository_cancellable, to_sarif,
};

use crate::agent::{Agent, AgentContext, AgentOutput};
use crate::errors::AgentError;
use crate::schema::{Field, FieldType, InputSchema};

static SCHEMA: LazyLock<InputSchema> = LazyLock::new(|| InputSchema {
    fields: vec![
        Field::new(
            "repository",
            FieldType::String,
            true,
            "Path of the checked-out repository to scan.",
        ),
        Field::new(
            "advisories",
            FieldType::String,
            false,
            "OSV advisories: a directory of OSV JSON files (searched recursively) or a .zip of them.",
        ),
        Field::new(
            "osv_url",
            FieldType::String,
            false,
            "Base URL of an OSV-compatible API (POST {url}/v1/querybatch), e.g. https://api.osv.dev.",
        ),
        Field::new(
            "sarif_path",
            FieldType::String,
            false,
            "Write a SARIF 2.1.0 report to this file.",
        ),
        Field::new(
            "max_findings",
            FieldType::Integer,
            false,
            "Most findings listed (worst first); counts include the rest.",
        ),
    ],
    open: false,
});

pub struct SecurityScannerAgent {
    config: ScannerConfig,
}

impl SecurityScannerAgent {
    pub fn new(config: ScannerConfig) -> Self {
        Self { config }
    }
}

fn string_input<'a>(inputs: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    inputs.get(name).and_then(Value::as_str)
}

#[async_trait::async_trait]
impl Agent for SecurityScannerAgent {
    fn kind(&self) -> &str {
        "security_scanner"
    }

    fn description(&self) -> &str {
        "Scans a repository for secrets, insecure code and configuration, and vulnerable dependencies (OSV); \
         outputs findings, counts by severity, security_score (0-10) and optionally SARIF."
    }

    fn input_schema(&self) -> &InputSchema {
        &SCHEMA
    }

    async fn run(
        &self,
        inputs: Map<String, Value>,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        SCHEMA.validate(&inputs)?;
        let repository = PathBuf::from(string_input(&inputs, "repository").unwrap_or_default());
        troupe_scanner::walk::check_repository(&repository)?;
        let mut config = self.config.clone();
        if let Some(max_findings) = inputs.get("max_findings").and_then(Value::as_i64) {
            config.max_findings =
                usize::try_from(max_findings).map_err(|_| AgentError::InvalidInput {
                    field: "max_findings".into(),
                    reason: format!("must be zero or more, got {max_findings}"),
                })?;
        }
        let sarif_path = string_input(&inputs, "sarif_path").map(PathBuf::from);
        if let Some(parent) = sarif_path
            .as_deref()
            .and_then(Path::parent)
            .filter(|parent| !parent.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(AgentError::InvalidInput {
                field: "sarif_path".into(),
                reason: format!(
                    "directory `{}` does not exist; create it or choose another path",
                    parent.display()
                ),
            });
        }
        let advisories_path = string_input(&inputs, "advisories").map(PathBuf::from);
        let osv_url = string_input(&inputs, "osv_url").map(str::to_string);
        if let Some(url) = &osv_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(AgentError::InvalidInput {
                field: "osv_url".into(),
                reason: format!(
                    "`{url}` is not an http(s) URL; give the API's base, e.g. https://api.osv.dev"
                ),
            });
        }

        context.report("scanning", None);
        let cancel = context.cancel.clone();
        let scan_config = config.clone();
        let (mut report, mut db) = tokio::task::spawn_blocking(move || {
            let (db, warnings) = match &advisories_path {
                Some(path) => load_advisories(path, &scan_config)?,
                None => (AdvisoryDb::new(), Vec::new()),
            };
            let mut report = scan_repository_cancellable(&repository, &scan_config, &db, &|| {
                cancel.is_cancelled()
            })?;
            report.warnings.extend(warnings);
            Ok::<_, AgentError>((report, db))
        })
        .await
        .map_err(|error| AgentError::Failed(format!("the scan stopped unexpectedly: {error}")))??;

        if let Some(url) = &osv_url
            && !report.dependencies.is_empty()
        {
            context.report("querying the OSV endpoint", None);
            let warnings = tokio::select! {
                warnings = query_osv(url, &report.dependencies, &config, &mut db) => warnings,
                () = context.cancel.cancelled() => return Err(AgentError::Cancelled),
            };
            report.warnings.extend(warnings);
            report.apply_advisories(&db);
        }

        let mut outputs = report.to_outputs();
        if let Some(path) = sarif_path {
            let sarif = to_sarif(&report.findings);
            let text = serde_json::to_vec_pretty(&sarif)
                .map_err(|error| AgentError::Failed(format!("cannot serialise SARIF: {error}")))?;
            tokio::fs::write(&path, text).await.map_err(|error| {
                AgentError::Io(format!(
                    "cannot write SARIF to `{}`: {error}",
                    path.display()
                ))
            })?;
            outputs.insert("sarif_path".into(), json!(path.display().to_string()));
        }
        Ok(AgentOutput {
            outputs,
            cost_usd: 0.0,
        })
    }
}
