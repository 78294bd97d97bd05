//! The kinds of agent a node can run, by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::agent::Agent;
use crate::crew::{
    Architect, CodeGenerator, CodeReview, Crew, Debugging, Documentation, Planner, TestGenerator,
};
use crate::errors::AgentError;

#[derive(Clone, Default)]
pub struct Registry {
    /// Keyed by `Agent::kind`, owned because plugin kinds are named in settings.
    kinds: BTreeMap<String, Arc<dyn Agent>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind; a later registration of the same name replaces the earlier one, so
    /// settings can swap a built-in for a configured variant.
    pub fn register(&mut self, agent: Arc<dyn Agent>) -> &mut Self {
        self.kinds.insert(agent.kind().to_string(), agent);
        self
    }

    pub fn get(&self, kind: &str) -> Result<Arc<dyn Agent>, AgentError> {
        self.kinds
            .get(kind)
            .cloned()
            .ok_or_else(|| AgentError::UnknownKind {
                kind: kind.into(),
                known: self.kind_names().join(", "),
            })
    }

    pub fn kind_names(&self) -> Vec<&str> {
        self.kinds.keys().map(String::as_str).collect()
    }

    pub fn contains(&self, kind: &str) -> bool {
        self.kinds.contains_key(kind)
    }

    pub fn agents(&self) -> impl Iterator<Item = &Arc<dyn Agent>> {
        self.kinds.values()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

/// The kinds every node has: `echo`, `shell`, `http`, `human_review`, and, with their
/// default limits, `security_scanner`, `test_runner`, `deployment_agent`,
/// `code_analyzer` and the model-backed [`crew`]. Every kind that runs code that is not
/// ours uses the shell's jail, every kind that takes a path the shell's workspace, and
/// every kind that sends a request `http`'s egress policy.
pub fn builtin(shell: crate::ShellAgentConfig, http: crate::HttpAgentConfig) -> Registry {
    let jail = shell.jail.clone();
    let workspace = shell.workspace.clone();
    let egress = http.egress.clone();
    let mut registry = Registry::new();
    registry
        .register(Arc::new(crate::EchoAgent))
        .register(Arc::new(crate::ShellAgent::new(shell)))
        .register(Arc::new(crate::HttpAgent::new(http)))
        .register(Arc::new(crate::HumanReviewAgent))
        .register(Arc::new(crate::SecurityScannerAgent::new(
            troupe_scanner::ScannerConfig::default(),
            workspace.clone(),
            egress,
        )))
        .register(Arc::new(crate::TestRunnerAgent::new(
            crate::TestRunnerConfig {
                jail: jail.clone(),
                workspace: workspace.clone(),
                ..crate::TestRunnerConfig::default()
            },
        )))
        .register(Arc::new(crate::DeploymentAgent::new(
            crate::DeploymentConfig {
                jail: jail.clone(),
                workspace: workspace.clone(),
                ..crate::DeploymentConfig::default()
            },
        )))
        .register(Arc::new(crate::CodeAnalyzerAgent::new(
            crate::CodeAnalyzerConfig {
                jail: jail.clone(),
                workspace: workspace.clone(),
                ..crate::CodeAnalyzerConfig::default()
            },
        )));
    let crew_config = crate::CrewConfig {
        workspace,
        jail,
        ..crate::CrewConfig::default()
    };
    for agent in crew(crew_config) {
        registry.register(agent);
    }
    registry
}

/// The inputs of built-in kinds that are shell commands (run with `sh -c`): the engine
/// renders templates in them with each value quoted for where it stands, so that a run
/// variable or an upstream output cannot become code in a command someone else wrote.
pub fn shell_command_inputs(kind: &str) -> &'static [&'static str] {
    use crate::agent::TypedAgent;
    if kind == crate::ShellAgent::KIND || kind == crate::TestRunnerAgent::KIND {
        &["command"]
    } else if kind == crate::DeploymentAgent::KIND {
        &["deploy_command"]
    } else {
        &[]
    }
}

/// The kinds `crew` makes: a workflow that uses one needs a model.
pub const CREW_KINDS: [&str; 7] = [
    "planner",
    "architect",
    "code_generator",
    "test_generator",
    "code_review",
    "debugging",
    "documentation",
];

/// The model-backed kinds ([`CREW_KINDS`]), with `config`'s limits. They need a model
/// in their context ([`crate::AgentServices`]) to run.
pub fn crew(config: crate::CrewConfig) -> Vec<Arc<dyn Agent>> {
    vec![
        Arc::new(Crew::<Planner>::new(config.clone())),
        Arc::new(Crew::<Architect>::new(config.clone())),
        Arc::new(Crew::<CodeGenerator>::new(config.clone())),
        Arc::new(Crew::<TestGenerator>::new(config.clone())),
        Arc::new(Crew::<CodeReview>::new(config.clone())),
        Arc::new(Crew::<Debugging>::new(config.clone())),
        Arc::new(Crew::<Documentation>::new(config)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crew_kinds_names_every_kind_the_crew_has() {
        let kinds: Vec<String> = crew(crate::CrewConfig::default())
            .iter()
            .map(|agent| agent.kind().to_string())
            .collect();
        assert_eq!(kinds, CREW_KINDS);
    }
}
