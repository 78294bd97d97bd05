//! `security_scanner`: the agent kind over the `troupe-scanner` library. It checks the
//! task's inputs, runs the scan off the async threads (cancellable), optionally asks an
//! OSV endpoint about the dependencies found, and returns the report as outputs, with
//! SARIF written where the task asks.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use troupe_scanner::{
    AdvisoryDb, ScannerConfig, load_advisories, query_osv, scan_repository_cancellable, to_sarif,
};

use crate::agent::{AgentContext, AgentOutput, TypedAgent};
use crate::egress::Egress;
use crate::errors::AgentError;
use crate::workspace::Workspace;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityScannerInputs {
    /// Path of the checked-out repository to scan.
    repository: PathBuf,
    /// OSV advisories: a directory of OSV JSON files (searched recursively) or a .zip of them.
    advisories: Option<PathBuf>,
    /// Base URL of an OSV-compatible API (POST {url}/v1/querybatch), e.g. https://api.osv.dev.
    osv_url: Option<String>,
    /// Write a SARIF 2.1.0 report to this file.
    sarif_path: Option<PathBuf>,
    /// Most findings listed (worst first); counts include the rest.
    max_findings: Option<usize>,
}

pub struct SecurityScannerAgent {
    config: ScannerConfig,
    /// Where `repository`, `advisories` and `sarif_path` may be.
    workspace: Workspace,
    /// Where `osv_url` may point.
    egress: Egress,
}

impl SecurityScannerAgent {
    pub fn new(config: ScannerConfig, workspace: Workspace, egress: Egress) -> Self {
        Self {
            config,
            workspace,
            egress,
        }
    }
}

#[async_trait::async_trait]
impl TypedAgent for SecurityScannerAgent {
    const KIND: &'static str = "security_scanner";
    const DESCRIPTION: &'static str = "Scans a repository for secrets, insecure code and configuration, and vulnerable dependencies (OSV); \
         outputs findings, counts by severity, security_score (0-10) and optionally SARIF.";
    type Inputs = SecurityScannerInputs;

    async fn attempt(
        &self,
        inputs: SecurityScannerInputs,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let SecurityScannerInputs {
            repository,
            advisories: advisories_path,
            osv_url,
            sarif_path,
            max_findings,
        } = inputs;
        let repository = self.workspace.place("repository", &repository)?;
        let sarif_path = sarif_path
            .map(|path| self.workspace.place("sarif_path", &path))
            .transpose()?;
        let advisories_path = advisories_path
            .map(|path| self.workspace.place("advisories", &path))
            .transpose()?;
        troupe_scanner::walk::check_repository(&repository)?;
        let mut config = self.config.clone();
        if let Some(max_findings) = max_findings {
            config.max_findings = max_findings;
        }
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
        let osv = match &osv_url {
            Some(url) => {
                let egress = self.egress.widened(&context.project_networks().await)?;
                Some((
                    egress.check_url("osv_url", url)?,
                    egress.client(Some(config.osv_timeout))?,
                ))
            }
            None => None,
        };

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

        if let Some((url, client)) = &osv
            && !report.dependencies.is_empty()
        {
            context.report("querying the OSV endpoint", None);
            let warnings = tokio::select! {
                warnings = query_osv(&client.client, url.as_str(), &report.dependencies, &config, &mut db) => warnings,
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
