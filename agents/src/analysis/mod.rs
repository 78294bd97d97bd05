//! `code_analyzer`: languages, files and lines, cyclomatic complexity per function, the
//! files changed against a base ref (git), linter results where linters are installed,
//! the scanner's secret and static rules, and a `quality_score`.
//!
//! Deterministic: no model is asked anything. Like the scanner, it only reads the
//! repository; what the files say is data, never an instruction.

mod complexity;
pub(crate) mod git;
mod languages;
mod lint;
mod score;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value, json};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::agent::{AgentContext, AgentOutput, TypedAgent};
use crate::errors::AgentError;
use crate::jail::{Cell, Entered, Jail, Network};
use crate::workspace::Workspace;
use troupe_scanner::rules::Lang;
use troupe_scanner::walk::{self, FileText};
use troupe_scanner::{AdvisoryDb, ScannerConfig, scan_repository_cancellable};

pub use complexity::FunctionComplexity;
pub use languages::LanguageStats;
pub use lint::{LintResult, Linter};
pub use score::{QualityInputs, quality_score};

/// The analyzer's limits and thresholds.
#[derive(Debug, Clone)]
pub struct CodeAnalyzerConfig {
    /// The walk and read limits, shared with the security scan it runs.
    pub scanner: ScannerConfig,
    /// A function over this complexity counts as complex.
    pub complex_function_threshold: usize,
    /// A function over this many lines counts as long.
    pub long_function_lines: usize,
    /// Functions listed when the task does not say (worst first).
    pub max_functions: usize,
    pub git_timeout: Duration,
    /// Modified files listed.
    pub max_modified_files: usize,
    pub linters: Vec<Linter>,
    pub lint_timeout: Duration,
    pub max_lint_output_bytes: usize,
    pub max_lint_reported_chars: usize,
    pub max_lint_files: usize,
    /// Where git and the linters run: the repository read-only, no network.
    pub jail: Jail,
    /// Where `repository` may be.
    pub workspace: Workspace,
}

impl Default for CodeAnalyzerConfig {
    fn default() -> Self {
        Self {
            scanner: ScannerConfig::default(),
            complex_function_threshold: 10,
            long_function_lines: 60,
            max_functions: 200,
            git_timeout: Duration::from_secs(60),
            max_modified_files: 10_000,
            linters: Linter::defaults(),
            lint_timeout: Duration::from_secs(300),
            max_lint_output_bytes: 4 * 1024 * 1024,
            max_lint_reported_chars: 8 * 1024,
            max_lint_files: 5_000,
            jail: Jail::default(),
            // The node always gives its roots; a default config is for tests.
            workspace: Workspace::anywhere(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeAnalyzerInputs {
    /// Path of the checked-out repository to analyse.
    repository: PathBuf,
    /// Commit, branch or tag that modified_files are relative to; default HEAD (uncommitted changes).
    base_ref: Option<String>,
    /// Most functions listed (worst complexity first); averages count all.
    max_functions: Option<usize>,
}

pub struct CodeAnalyzerAgent {
    config: CodeAnalyzerConfig,
}

impl CodeAnalyzerAgent {
    pub fn new(config: CodeAnalyzerConfig) -> Self {
        Self { config }
    }
}

/// What the file walk found (the part that needs no child process).
#[derive(Debug, Default)]
struct SourceAnalysis {
    languages: BTreeMap<&'static str, LanguageStats>,
    files: usize,
    lines: usize,
    /// All functions, worst complexity first.
    functions: Vec<FunctionComplexity>,
    /// Source files by language, for the linters.
    sources: Vec<(Lang, String)>,
    truncated: bool,
}

/// Reads every text file within the scanner's limits, counting lines per language and
/// scoring the functions of the files tree-sitter can parse. `cancelled` is asked
/// between files.
fn analyse_sources(
    repository: &Path,
    config: &ScannerConfig,
    cancelled: &dyn Fn() -> bool,
) -> Result<SourceAnalysis, AgentError> {
    let walked = walk::walk(repository, config)?;
    let mut analysis = SourceAnalysis {
        truncated: walked.truncated,
        ..SourceAnalysis::default()
    };
    let mut bytes_read: u64 = 0;
    for candidate in &walked.candidates {
        if cancelled() {
            return Err(AgentError::Cancelled);
        }
        let FileText::Text(text) = walk::read_text(&candidate.path, config.max_file_bytes) else {
            continue;
        };
        bytes_read += text.len() as u64;
        if bytes_read > config.max_total_bytes {
            analysis.truncated = true;
            break;
        }
        analysis.files += 1;
        analysis.lines += text.lines().count();
        let start = text.get(..text.len().min(128)).unwrap_or("");
        let Some(lang) = Lang::of(&candidate.relative, start) else {
            continue;
        };
        analysis
            .languages
            .entry(languages::name(lang))
            .or_default()
            .add(languages::count_lines(lang, &text));
        analysis
            .functions
            .extend(complexity::functions(lang, &candidate.relative, &text));
        analysis.sources.push((lang, candidate.relative.clone()));
    }
    analysis
        .functions
        .sort_by(|a, b| (b.complexity, &a.file, a.line).cmp(&(a.complexity, &b.file, b.line)));
    Ok(analysis)
}

#[async_trait::async_trait]
impl TypedAgent for CodeAnalyzerAgent {
    const KIND: &'static str = "code_analyzer";
    const JAILED: bool = true;
    const DESCRIPTION: &'static str = "Analyses a repository without running it: languages, files, lines, cyclomatic complexity per function, \
         modified_files against base_ref (git), lint results where linters are installed, security_score from the \
         secret and static rules, and quality_score (0-10).";
    type Inputs = CodeAnalyzerInputs;

    async fn attempt(
        &self,
        inputs: CodeAnalyzerInputs,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let repository = self
            .config
            .workspace
            .place("repository", &inputs.repository)?;
        walk::check_repository(&repository)?;
        let base_ref = inputs.base_ref.unwrap_or_else(|| "HEAD".into());
        git::check_base_ref(&base_ref)?;
        let max_functions = inputs.max_functions.unwrap_or(self.config.max_functions);

        context.report("reading the sources", None);
        let cancel = context.cancel.clone();
        let scanner = self.config.scanner.clone();
        let root = repository.clone();
        let (analysis, scan) = tokio::task::spawn_blocking(move || {
            let cancelled = || cancel.is_cancelled();
            let analysis = analyse_sources(&root, &scanner, &cancelled)?;
            // Secret and static rules only: no advisories are loaded.
            let scan =
                scan_repository_cancellable(&root, &scanner, &AdvisoryDb::new(), &cancelled)?;
            Ok::<_, AgentError>((analysis, scan))
        })
        .await
        .map_err(|error| {
            AgentError::Failed(format!("the analysis stopped unexpectedly: {error}"))
        })??;

        let repository = std::path::absolute(&repository)
            .map_err(|error| AgentError::Io(format!("repository: {error}")))?;
        let cell = self
            .config
            .jail
            .enter(Cell {
                readable: vec![repository.clone()],
                writable: Vec::new(),
                cwd: repository.clone(),
                network: Network::Off,
                limits: None,
            })
            .await?;
        let (modified, lint) = self
            .run_tools(&cell, &repository, &base_ref, &analysis, &context)
            .await;
        cell.finish().await;
        let (modified, lint) = (modified?, lint?);

        Ok(AgentOutput {
            outputs: self.outputs(analysis, &scan, modified, &lint, max_functions),
            cost_usd: 0.0,
        })
    }
}

impl CodeAnalyzerAgent {
    /// git's list of changed files and the linters' results, run in `cell`.
    async fn run_tools(
        &self,
        cell: &Entered,
        repository: &Path,
        base_ref: &str,
        analysis: &SourceAnalysis,
        context: &AgentContext,
    ) -> (
        Result<git::Modified, AgentError>,
        Result<Vec<LintResult>, AgentError>,
    ) {
        context.report("asking git what changed", None);
        let modified = git::modified_files(
            cell,
            repository,
            base_ref,
            self.config.git_timeout,
            self.config.max_modified_files,
            &context.cancel,
        )
        .await;

        context.report("running the linters", None);
        let limits = lint::LintLimits {
            timeout: self.config.lint_timeout,
            max_output_bytes: self.config.max_lint_output_bytes,
            max_reported_output_chars: self.config.max_lint_reported_chars,
            max_files: self.config.max_lint_files,
        };
        let lint = lint::run_linters(
            cell,
            &self.config.linters,
            &analysis.sources,
            &limits,
            &context.cancel,
        )
        .await;
        (modified, lint)
    }

    fn outputs(
        &self,
        mut analysis: SourceAnalysis,
        scan: &troupe_scanner::ScanReport,
        modified: git::Modified,
        lint: &[LintResult],
        max_functions: usize,
    ) -> Map<String, Value> {
        let functions = &analysis.functions;
        let total_complexity: usize = functions.iter().map(|function| function.complexity).sum();
        let average_complexity = if functions.is_empty() {
            0.0
        } else {
            (total_complexity as f64 / functions.len() as f64 * 100.0).round() / 100.0
        };
        let complex_functions = functions
            .iter()
            .filter(|function| function.complexity > self.config.complex_function_threshold)
            .count();
        let long_functions = functions
            .iter()
            .filter(|function| function.lines > self.config.long_function_lines)
            .count();
        let security_findings: usize = scan.counts.iter().sum();
        let quality = quality_score(&QualityInputs {
            functions: functions.len(),
            complex_functions,
            long_functions,
            lint_issues: lint.iter().map(|result| result.issues).sum(),
            lines: analysis.lines,
            security_score: scan.security_score(),
        });

        let mut outputs = Map::new();
        outputs.insert("languages".into(), json!(analysis.languages));
        outputs.insert("files".into(), json!(analysis.files));
        outputs.insert("lines".into(), json!(analysis.lines));
        outputs.insert("function_count".into(), json!(functions.len()));
        outputs.insert("average_complexity".into(), json!(average_complexity));
        outputs.insert(
            "max_complexity".into(),
            json!(functions.first().map_or(0, |function| function.complexity)),
        );
        outputs.insert("complex_functions".into(), json!(complex_functions));
        outputs.insert("long_functions".into(), json!(long_functions));
        analysis.functions.truncate(max_functions);
        outputs.insert("functions".into(), json!(analysis.functions));
        match modified {
            git::Modified::Files { files, truncated } => {
                outputs.insert("modified_files".into(), json!(files));
                outputs.insert("modified_files_truncated".into(), json!(truncated));
            }
            git::Modified::Unavailable(note) => {
                outputs.insert("modified_files".into(), Value::Null);
                outputs.insert("git_note".into(), json!(note));
            }
        }
        outputs.insert("lint".into(), json!(lint));
        outputs.insert("quality_score".into(), json!(quality));
        outputs.insert("security_score".into(), json!(scan.security_score()));
        outputs.insert("security_findings".into(), json!(security_findings));
        outputs.insert(
            "truncated".into(),
            json!(analysis.truncated || scan.truncated),
        );
        outputs
    }
}

#[cfg(test)]
mod tests;
