//! What types alone cannot check: ranges, relations between keys, well-formed addresses.
//! Every problem names its key; the loader adds where the value came from. One function
//! per section keeps each rule next to its neighbours.

use std::collections::BTreeSet;

use crate::choices::ProviderKind;
use crate::settings::Settings;

pub(crate) type Problems = Vec<(&'static str, String)>;

impl Settings {
    pub(crate) fn problems(&self) -> Problems {
        let mut problems = Vec::new();
        self.engine_problems(&mut problems);
        self.cluster_problems(&mut problems);
        self.server_and_store_problems(&mut problems);
        self.model_problems(&mut problems);
        self.provider_problems(&mut problems);
        self.agent_problems(&mut problems);
        self.auth_problems(&mut problems);
        self.telemetry_problems(&mut problems);
        self.audit_problems(&mut problems);
        self.alerts.problems(&mut problems);
        crate::external::plugin_problems(&self.agents.plugins, &mut problems);
        crate::external::mcp_problems(&self.agents.mcp_servers, &mut problems);
        problems
    }

    fn cluster_problems(&self, problems: &mut Problems) {
        let cluster = &self.cluster;
        if cluster.enabled
            && !["ws://", "wss://"]
                .iter()
                .any(|s| self.store.url.starts_with(s))
        {
            problems.push((
                "cluster.enabled",
                format!(
                    "the nodes of a cluster share one store, and `{}` is this process's own: \
                     set store.url to a SurrealDB server all of them reach (ws://HOST:PORT)",
                    self.store.url
                ),
            ));
        }
        if cluster.heartbeat_ms < 50 {
            problems.push(("cluster.heartbeat_ms", "must be at least 50".into()));
        }
        if cluster.lease_ms < cluster.heartbeat_ms.saturating_mul(3) {
            problems.push((
                "cluster.lease_ms",
                format!(
                    "must be at least three heartbeats ({} ms), or a node fences itself over \
                     one slow renewal",
                    cluster.heartbeat_ms.saturating_mul(3)
                ),
            ));
        }
        let name = &cluster.node_name;
        if !name.is_empty() && !is_node_name(name) {
            problems.push((
                "cluster.node_name",
                format!(
                    "`{name}` is not a node name: use letters, digits, `.`, `_` and `-`, at \
                     most 63 (or leave it empty for the host's name)"
                ),
            ));
        }
        for label in &cluster.labels {
            if !is_node_name(label) {
                problems.push((
                    "cluster.labels",
                    format!("`{label}` is not a label: use letters, digits, `.`, `_` and `-`"),
                ));
            }
        }
        self.cluster_link_problems(problems);
    }

    /// The links between nodes: addresses, and who may open one.
    fn cluster_link_problems(&self, problems: &mut Problems) {
        let cluster = &self.cluster;
        let listen = cluster.listen.parse::<std::net::SocketAddr>();
        if listen.is_err() {
            problems.push((
                "cluster.listen",
                format!("`{}` is not an address like 0.0.0.0:7710", cluster.listen),
            ));
        }
        for (key, address) in std::iter::once(("cluster.advertise", &cluster.advertise))
            .filter(|(_, address)| !address.is_empty())
            .chain(cluster.seeds.iter().map(|seed| ("cluster.seeds", seed)))
        {
            if !is_host_and_port(address) {
                problems.push((key, format!("`{address}` is not HOST:PORT")));
            }
        }
        if cluster.insecure
            && let Ok(listen) = listen
            && !listen.ip().is_loopback()
        {
            problems.push((
                "cluster.insecure",
                format!(
                    "plain links are for one machine only, and `{}` is not on loopback: \
                     listen on 127.0.0.1, or give the links certificates (cluster.tls; \
                     `troupe cluster certs` makes them)",
                    cluster.listen
                ),
            ));
        }
        if !cluster.enabled {
            return;
        }
        match (cluster.cookie.is_empty(), cluster.cookie_secret.is_empty()) {
            // Its length is checked once it is read from the store, at start.
            (true, false) => {}
            (false, false) => problems.push((
                "cluster.cookie_secret",
                "both a cookie (cluster.cookie) and a secret holding one \
                 (cluster.cookie_secret) are set: choose one"
                    .into(),
            )),
            _ if cluster.cookie.len() < 16 => problems.push((
                "cluster.cookie",
                "every node of a cluster presents the same secret of at least 16 characters: \
                 set TROUPE_CLUSTER__COOKIE, or keep it sealed (`troupe secrets set \
                 cluster.cookie`) and set cluster.cookie_secret = \"cluster.cookie\""
                    .into(),
            )),
            _ => {}
        }
        match (&cluster.tls, cluster.insecure) {
            (None, false) => problems.push((
                "cluster.tls",
                "the links between nodes need certificates: `troupe cluster certs --out DIR \
                 --nodes NAME,...` makes a CA and one per node; set cluster.tls.ca_file, \
                 cert_file and key_file (or cluster.insecure = true for nodes on one \
                 machine)"
                    .into(),
            )),
            (Some(_), true) => problems.push((
                "cluster.insecure",
                "both certificates (cluster.tls) and plain links are set: choose one".into(),
            )),
            _ => {}
        }
    }

    fn engine_problems(&self, problems: &mut Problems) {
        let engine = &self.engine;
        at_least_one(
            problems,
            [
                (
                    "engine.max_concurrent_tasks",
                    engine.max_concurrent_tasks.into(),
                ),
                (
                    "engine.agent_queue_capacity",
                    engine.agent_queue_capacity.into(),
                ),
                ("engine.restart_period_secs", engine.restart_period_secs),
                ("engine.approval_timeout_secs", engine.approval_timeout_secs),
                ("engine.max_fan_out", engine.max_fan_out.into()),
                ("audit.checkpoint_every", self.audit.checkpoint_every),
            ],
        );
        if engine.max_fan_out > 10_000 {
            problems.push((
                "engine.max_fan_out",
                "must be at most 10000 (the workflow language's own cap)".into(),
            ));
        }
        if engine.retry_base_delay_ms > engine.retry_max_delay_ms {
            problems.push((
                "engine.retry_base_delay_ms",
                format!(
                    "must not exceed engine.retry_max_delay_ms ({})",
                    engine.retry_max_delay_ms
                ),
            ));
        }
    }

    fn server_and_store_problems(&self, problems: &mut Problems) {
        if self.server.address.parse::<std::net::SocketAddr>().is_err() {
            problems.push((
                "server.address",
                format!(
                    "`{}` is not an address like 127.0.0.1:7700",
                    self.server.address
                ),
            ));
        }
        if self.server.max_body_bytes < 1024 {
            problems.push(("server.max_body_bytes", "must be at least 1024".into()));
        }
        let url = &self.store.url;
        if !["surrealkv://", "mem://", "ws://", "wss://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            problems.push((
                "store.url",
                format!("`{url}` must start with surrealkv://, mem://, ws:// or wss://"),
            ));
        }
        if url.starts_with("surrealkv://") && url.len() == "surrealkv://".len() {
            problems.push((
                "store.url",
                "surrealkv:// needs a directory after it".into(),
            ));
        }
    }

    fn model_problems(&self, problems: &mut Problems) {
        let models = &self.models;
        if models.dir.trim().is_empty() {
            problems.push(("models.dir", "must name a directory".into()));
        }
        at_least_one(
            problems,
            [
                (
                    "models.generation_workers",
                    models.generation_workers.into(),
                ),
                (
                    "models.max_batch_sequences",
                    models.max_batch_sequences.into(),
                ),
                ("models.max_step_tokens", models.max_step_tokens.into()),
                ("models.embedding_workers", models.embedding_workers.into()),
            ],
        );
    }

    fn provider_problems(&self, problems: &mut Problems) {
        let providers = &self.providers;
        if providers.chain.is_empty() {
            problems.push(("providers.chain", "needs at least one provider".into()));
        }
        let mut names = BTreeSet::new();
        for entry in &providers.chain {
            if entry.name.is_empty() || !names.insert(entry.name.as_str()) {
                problems.push((
                    "providers.chain",
                    format!(
                        "provider names must be present and unique (`{}`)",
                        entry.name
                    ),
                ));
            }
            if entry.kind == ProviderKind::Local {
                continue;
            }
            if !(entry.base_url.starts_with("http://") || entry.base_url.starts_with("https://")) {
                problems.push((
                    "providers.chain",
                    format!(
                        "`{}` needs a base_url starting with http:// or https://",
                        entry.name
                    ),
                ));
            }
            if entry.model.is_empty() {
                problems.push(("providers.chain", format!("`{}` needs a model", entry.name)));
            }
            if entry.input_usd_per_mtok < 0.0 || entry.output_usd_per_mtok < 0.0 {
                problems.push((
                    "providers.chain",
                    format!("`{}` has a negative price", entry.name),
                ));
            }
        }
        for (task, route) in &providers.routes {
            for name in route.iter().filter(|name| !names.contains(name.as_str())) {
                problems.push((
                    "providers.routes",
                    format!("route `{task}` names `{name}`, which is not in providers.chain"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&providers.min_quality) {
            problems.push(("providers.min_quality", "must be between 0 and 1".into()));
        }
        let budgets = std::iter::once(("the node", providers.budget_usd_per_day)).chain(
            providers
                .project_budgets_usd_per_day
                .iter()
                .map(|(project, usd)| (project.as_str(), *usd)),
        );
        for (whose, usd) in budgets.filter(|(_, usd)| !(usd.is_finite() && *usd >= 0.0)) {
            problems.push((
                "providers.budget_usd_per_day",
                format!("{whose}'s cap is {usd}; a cap is a number of USD, 0 or more"),
            ));
        }
        at_least_one(
            problems,
            [
                ("providers.timeout_secs", providers.timeout_secs),
                ("providers.max_tokens", providers.max_tokens),
            ],
        );
    }

    fn agent_problems(&self, problems: &mut Problems) {
        let (scanner, runner, model) = (
            &self.agents.scanner,
            &self.agents.test_runner,
            &self.agents.model,
        );
        at_least_one(
            problems,
            [
                (
                    "agents.shell.max_output_bytes",
                    self.agents.shell.max_output_bytes,
                ),
                ("agents.model.max_calls", model.max_calls.into()),
                ("agents.model.max_tokens", model.max_tokens),
                ("agents.model.max_file_bytes", model.max_file_bytes),
                ("agents.model.max_quoted_chars", model.max_quoted_chars),
            ],
        );
        // Unset limits keep the kind's built-in default; a set one must be usable.
        let limits = [
            ("agents.scanner.max_files", scanner.max_files),
            ("agents.scanner.max_file_bytes", scanner.max_file_bytes),
            ("agents.scanner.max_total_bytes", scanner.max_total_bytes),
            (
                "agents.test_runner.default_timeout_secs",
                runner.default_timeout_secs,
            ),
            (
                "agents.test_runner.max_output_bytes",
                runner.max_output_bytes,
            ),
            (
                "agents.test_runner.max_memory_bytes",
                runner.max_memory_bytes,
            ),
            ("agents.test_runner.max_processes", runner.max_processes),
            ("agents.test_runner.max_copy_bytes", runner.max_copy_bytes),
            ("agents.test_runner.max_copy_files", runner.max_copy_files),
        ];
        at_least_one(
            problems,
            limits
                .into_iter()
                .filter_map(|(key, value)| value.map(|value| (key, value))),
        );
        if !(-1.0..=1.0).contains(&model.min_recall_score) {
            problems.push((
                "agents.model.min_recall_score",
                format!(
                    "{} is not a cosine similarity (-1 to 1)",
                    model.min_recall_score
                ),
            ));
        }
    }

    fn audit_problems(&self, problems: &mut Problems) {
        let every = self.audit.verify_every_secs;
        if every != 0 && every < 60 {
            problems.push((
                "audit.verify_every_secs",
                format!(
                    "{every} s would walk the whole chain nearly all the time: use at least \
                     60, or 0 to verify at start only"
                ),
            ));
        }
    }

    fn telemetry_problems(&self, problems: &mut Problems) {
        let telemetry = &self.telemetry;
        let otlp = &telemetry.otlp;
        if !otlp.endpoint.is_empty()
            && !["http://", "https://"]
                .iter()
                .any(|scheme| otlp.endpoint.starts_with(scheme))
        {
            problems.push((
                "telemetry.otlp.endpoint",
                format!(
                    "`{}` must start with http:// or https:// (or be empty to export nothing)",
                    otlp.endpoint
                ),
            ));
        }
        if !(0.0..=1.0).contains(&otlp.sample_ratio) {
            problems.push((
                "telemetry.otlp.sample_ratio",
                format!("{} is not a share: use 0 to 1", otlp.sample_ratio),
            ));
        }
        if otlp.timeout_ms < 100 {
            problems.push(("telemetry.otlp.timeout_ms", "must be at least 100".into()));
        }
        if otlp.queue_size < 64 {
            problems.push(("telemetry.otlp.queue_size", "must be at least 64".into()));
        }
        if !telemetry.trace_url.is_empty() && !telemetry.trace_url.contains("{trace_id}") {
            problems.push((
                "telemetry.trace_url",
                format!(
                    "`{}` has no `{{trace_id}}` for the run's trace id to go in",
                    telemetry.trace_url
                ),
            ));
        }
    }

    fn auth_problems(&self, problems: &mut Problems) {
        let auth = &self.auth;
        at_least_one(
            problems,
            [
                ("auth.access_ttl_secs", auth.access_ttl_secs),
                ("auth.refresh_ttl_secs", auth.refresh_ttl_secs),
                ("auth.password_min_length", auth.password_min_length),
                ("auth.login_failures", auth.login_failures),
                ("auth.login_window_secs", auth.login_window_secs),
                (
                    "auth.password_hash_passes",
                    auth.password_hash_passes.into(),
                ),
            ],
        );
        if auth.refresh_reuse_grace_secs > 60 {
            problems.push((
                "auth.refresh_reuse_grace_secs",
                "must be at most 60: within the grace a stolen refresh token goes unnoticed".into(),
            ));
        }
        if auth.password_hash_memory_kib < 8 {
            problems.push((
                "auth.password_hash_memory_kib",
                "must be at least 8 (Argon2's minimum)".into(),
            ));
        }
        for proxy in &auth.trusted_proxies {
            if proxy.parse::<std::net::IpAddr>().is_err() {
                problems.push((
                    "auth.trusted_proxies",
                    format!("`{proxy}` is not an IP address"),
                ));
            }
        }
        if auth.password_max_length < auth.password_min_length {
            problems.push((
                "auth.password_max_length",
                "must not be below auth.password_min_length".into(),
            ));
        }
    }
}

/// "must be at least 1" for each key whose value is 0.
fn at_least_one(problems: &mut Problems, values: impl IntoIterator<Item = (&'static str, u64)>) {
    for (key, value) in values {
        if value == 0 {
            problems.push((key, "must be at least 1".into()));
        }
    }
}

/// A node's name (or a label): letters, digits, `.`, `_` and `-`, at most 63, not only
/// dots. The one rule for names in settings, in the node table and in certificates.
pub fn is_node_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(allowed)
        && name.chars().any(|c| c != '.')
}

/// `HOST:PORT`, the host a name or an address.
fn is_host_and_port(address: &str) -> bool {
    address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}
