//! Versioned schema migrations, applied in order at open. Each runs once; the applied
//! version is recorded in `schema_migration`. Never edit a released migration: add one.

use serde_json::{Value, json};
use surrealdb::Surreal;
use surrealdb::engine::any::Any;

use crate::error::StoreError;

const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
    "
    DEFINE TABLE IF NOT EXISTS workflow SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS workflow_id ON workflow TYPE string;
    DEFINE FIELD IF NOT EXISTS name ON workflow TYPE string;
    DEFINE FIELD IF NOT EXISTS latest_version ON workflow TYPE int;
    DEFINE FIELD IF NOT EXISTS updated_at_ms ON workflow TYPE int;
    DEFINE FIELD IF NOT EXISTS deleted ON workflow TYPE bool;
    DEFINE INDEX IF NOT EXISTS workflow_id_unique ON workflow FIELDS workflow_id UNIQUE;

    DEFINE TABLE IF NOT EXISTS workflow_version SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS workflow_id ON workflow_version TYPE string;
    DEFINE FIELD IF NOT EXISTS version ON workflow_version TYPE int;
    DEFINE FIELD IF NOT EXISTS name ON workflow_version TYPE string;
    DEFINE FIELD IF NOT EXISTS source ON workflow_version TYPE string;
    DEFINE FIELD IF NOT EXISTS created_at_ms ON workflow_version TYPE int;
    DEFINE INDEX IF NOT EXISTS workflow_version_unique ON workflow_version FIELDS workflow_id, version UNIQUE;

    DEFINE TABLE IF NOT EXISTS run SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS run_id ON run TYPE string;
    DEFINE FIELD IF NOT EXISTS workflow_id ON run TYPE string;
    DEFINE FIELD IF NOT EXISTS workflow_version ON run TYPE int;
    DEFINE FIELD IF NOT EXISTS workflow_name ON run TYPE string;
    DEFINE FIELD IF NOT EXISTS status ON run TYPE string;
    DEFINE FIELD IF NOT EXISTS started_by ON run TYPE string;
    DEFINE FIELD IF NOT EXISTS created_at_ms ON run TYPE int;
    DEFINE FIELD IF NOT EXISTS finished_at_ms ON run TYPE int;
    DEFINE INDEX IF NOT EXISTS run_id_unique ON run FIELDS run_id UNIQUE;
    DEFINE INDEX IF NOT EXISTS run_status ON run FIELDS status;

    DEFINE TABLE IF NOT EXISTS run_event SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS run_id ON run_event TYPE string;
    DEFINE FIELD IF NOT EXISTS seq ON run_event TYPE int;
    DEFINE FIELD IF NOT EXISTS at_ms ON run_event TYPE int;
    DEFINE FIELD IF NOT EXISTS kind ON run_event TYPE string;
    DEFINE FIELD IF NOT EXISTS payload ON run_event TYPE string;
    DEFINE INDEX IF NOT EXISTS run_event_unique ON run_event FIELDS run_id, seq UNIQUE;
    ",
    ),
    (
        2,
        "
    DEFINE TABLE IF NOT EXISTS inference_call SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS request_id ON inference_call TYPE string;
    DEFINE FIELD IF NOT EXISTS at_ms ON inference_call TYPE int;
    DEFINE FIELD IF NOT EXISTS day ON inference_call TYPE string;
    DEFINE FIELD IF NOT EXISTS provider ON inference_call TYPE string;
    DEFINE FIELD IF NOT EXISTS model ON inference_call TYPE string;
    DEFINE FIELD IF NOT EXISTS local ON inference_call TYPE bool;
    DEFINE FIELD IF NOT EXISTS task_type ON inference_call TYPE string;
    DEFINE FIELD IF NOT EXISTS agent ON inference_call TYPE option<string>;
    DEFINE FIELD IF NOT EXISTS tokens_in ON inference_call TYPE int;
    DEFINE FIELD IF NOT EXISTS tokens_out ON inference_call TYPE int;
    DEFINE FIELD IF NOT EXISTS latency_ms ON inference_call TYPE int;
    DEFINE FIELD IF NOT EXISTS cost_usd ON inference_call TYPE float;
    DEFINE FIELD IF NOT EXISTS baseline_usd ON inference_call TYPE float;
    DEFINE FIELD IF NOT EXISTS quality ON inference_call TYPE option<float>;
    DEFINE FIELD IF NOT EXISTS escalated ON inference_call TYPE bool;
    DEFINE FIELD IF NOT EXISTS served ON inference_call TYPE bool;
    DEFINE FIELD IF NOT EXISTS error ON inference_call TYPE option<string>;
    DEFINE INDEX IF NOT EXISTS inference_call_time ON inference_call FIELDS at_ms;
    ",
    ),
    (
        3,
        // The run log as chunks, one row per append (see `records::chunk_row`); the old
        // one-row-per-event log becomes one-event chunks, in the same JSON shape.
        r#"
    DEFINE TABLE IF NOT EXISTS run_log SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS run_id ON run_log TYPE string;
    DEFINE FIELD IF NOT EXISTS first_seq ON run_log TYPE int;
    DEFINE FIELD IF NOT EXISTS last_seq ON run_log TYPE int;
    DEFINE FIELD IF NOT EXISTS events ON run_log TYPE string;
    FOR $old IN (SELECT run_id, seq, at_ms, payload FROM run_event) {
        CREATE type::record('run_log', [$old.run_id, $old.seq]) CONTENT {
            run_id: $old.run_id, first_seq: $old.seq, last_seq: $old.seq,
            events: string::concat('[{"seq":', <string> $old.seq, ',"at_ms":', <string> $old.at_ms,
                ',"event":', $old.payload, '}]'),
        } RETURN NONE;
    };
    REMOVE TABLE IF EXISTS run_event;
    "#,
    ),
    (
        4,
        // Agent memory; its HNSW index is defined at start-up for the embedding model's
        // dimension (`Store::ensure_memory_index`).
        "
    DEFINE TABLE IF NOT EXISTS memory SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS project ON memory TYPE string;
    DEFINE FIELD IF NOT EXISTS user ON memory TYPE string;
    DEFINE FIELD IF NOT EXISTS run_id ON memory TYPE string;
    DEFINE FIELD IF NOT EXISTS kind ON memory TYPE string ASSERT $value IN ['short_term', 'long_term', 'episodic'];
    DEFINE FIELD IF NOT EXISTS text ON memory TYPE string;
    DEFINE FIELD IF NOT EXISTS metadata ON memory TYPE string;
    DEFINE FIELD IF NOT EXISTS embedding ON memory TYPE array<float>;
    DEFINE FIELD IF NOT EXISTS created_at_ms ON memory TYPE int;
    DEFINE INDEX IF NOT EXISTS memory_scope ON memory FIELDS project, user, created_at_ms;
    ",
    ),
    (
        5,
        // The audit hash chain, keyed by sequence number (see `audit::chain`).
        "
    DEFINE TABLE IF NOT EXISTS audit_log SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS seq ON audit_log TYPE int;
    DEFINE FIELD IF NOT EXISTS at_ms ON audit_log TYPE int;
    DEFINE FIELD IF NOT EXISTS actor ON audit_log TYPE string;
    DEFINE FIELD IF NOT EXISTS action ON audit_log TYPE string;
    DEFINE FIELD IF NOT EXISTS target ON audit_log TYPE string;
    DEFINE FIELD IF NOT EXISTS details ON audit_log TYPE string;
    DEFINE FIELD IF NOT EXISTS prev_hash ON audit_log TYPE string;
    DEFINE FIELD IF NOT EXISTS hash ON audit_log TYPE string;
    DEFINE INDEX IF NOT EXISTS audit_log_seq ON audit_log FIELDS seq UNIQUE;
    DEFINE INDEX IF NOT EXISTS audit_log_time ON audit_log FIELDS at_ms;
    ",
    ),
    (
        6,
        // Accounts and sessions (see `auth`).
        "
    DEFINE TABLE IF NOT EXISTS user SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS user_id ON user TYPE string;
    DEFINE FIELD IF NOT EXISTS email ON user TYPE string;
    DEFINE FIELD IF NOT EXISTS role ON user TYPE string;
    DEFINE FIELD IF NOT EXISTS disabled ON user TYPE bool;
    DEFINE FIELD IF NOT EXISTS must_change_password ON user TYPE bool;
    DEFINE FIELD IF NOT EXISTS created_at_ms ON user TYPE int;
    DEFINE FIELD IF NOT EXISTS password_hash ON user TYPE string;
    DEFINE INDEX IF NOT EXISTS user_email ON user FIELDS email UNIQUE;

    DEFINE TABLE IF NOT EXISTS refresh_token SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS token_hash ON refresh_token TYPE string;
    DEFINE FIELD IF NOT EXISTS family ON refresh_token TYPE string;
    DEFINE FIELD IF NOT EXISTS user_id ON refresh_token TYPE string;
    DEFINE FIELD IF NOT EXISTS expires_at_ms ON refresh_token TYPE int;
    DEFINE FIELD IF NOT EXISTS used ON refresh_token TYPE bool;
    DEFINE FIELD IF NOT EXISTS revoked ON refresh_token TYPE bool;
    DEFINE INDEX IF NOT EXISTS refresh_family ON refresh_token FIELDS family;
    DEFINE INDEX IF NOT EXISTS refresh_user ON refresh_token FIELDS user_id;
    ",
    ),
    (
        7,
        // API keys: the secret only as SHA-256 (see `auth::Auth::create_api_key`).
        "
    DEFINE TABLE IF NOT EXISTS api_key SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS key_id ON api_key TYPE string;
    DEFINE FIELD IF NOT EXISTS name ON api_key TYPE string;
    DEFINE FIELD IF NOT EXISTS user_id ON api_key TYPE string;
    DEFINE FIELD IF NOT EXISTS scopes ON api_key TYPE array<string>;
    DEFINE FIELD IF NOT EXISTS projects ON api_key TYPE array<string>;
    DEFINE FIELD IF NOT EXISTS created_at_ms ON api_key TYPE int;
    DEFINE FIELD IF NOT EXISTS expires_at_ms ON api_key TYPE option<int>;
    DEFINE FIELD IF NOT EXISTS last_used_ms ON api_key TYPE option<int>;
    DEFINE FIELD IF NOT EXISTS revoked ON api_key TYPE bool;
    DEFINE FIELD IF NOT EXISTS secret_hash ON api_key TYPE string;
    DEFINE INDEX IF NOT EXISTS api_key_user ON api_key FIELDS user_id;
    ",
    ),
    (
        8,
        // Projects and their members; workflows and runs belong to one (`default` for
        // everything written before projects existed).
        "
    DEFINE FIELD IF NOT EXISTS project ON workflow TYPE string DEFAULT 'default';
    UPDATE workflow SET project = 'default' WHERE project = NONE;
    DEFINE FIELD IF NOT EXISTS project ON run TYPE string DEFAULT 'default';
    UPDATE run SET project = 'default' WHERE project = NONE;
    DEFINE INDEX IF NOT EXISTS run_project ON run FIELDS project;

    DEFINE TABLE IF NOT EXISTS project SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS project_id ON project TYPE string;
    DEFINE FIELD IF NOT EXISTS name ON project TYPE string;
    DEFINE FIELD IF NOT EXISTS created_by ON project TYPE string;
    DEFINE FIELD IF NOT EXISTS created_at_ms ON project TYPE int;

    DEFINE TABLE IF NOT EXISTS member SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS project_id ON member TYPE string;
    DEFINE FIELD IF NOT EXISTS user_id ON member TYPE string;
    DEFINE FIELD IF NOT EXISTS role ON member TYPE string;
    DEFINE INDEX IF NOT EXISTS member_user ON member FIELDS user_id;
    DEFINE INDEX IF NOT EXISTS member_project ON member FIELDS project_id;
    ",
    ),
    (
        9,
        // Sealed secrets and second factors (see `secrets` and `auth::mfa`).
        "
    DEFINE TABLE IF NOT EXISTS secret SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS name ON secret TYPE string;
    DEFINE FIELD IF NOT EXISTS key_id ON secret TYPE string;
    DEFINE FIELD IF NOT EXISTS updated_at_ms ON secret TYPE int;
    DEFINE FIELD IF NOT EXISTS sealed ON secret TYPE string;

    DEFINE TABLE IF NOT EXISTS mfa SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS user_id ON mfa TYPE string;
    DEFINE FIELD IF NOT EXISTS sealed_secret ON mfa TYPE string;
    DEFINE FIELD IF NOT EXISTS enabled ON mfa TYPE bool;
    DEFINE FIELD IF NOT EXISTS last_step ON mfa TYPE option<int>;
    DEFINE FIELD IF NOT EXISTS recovery_hashes ON mfa TYPE array<string>;
    ",
    ),
    (
        10,
        // Sessions as users see them, and per-key request limits.
        "
    DEFINE TABLE IF NOT EXISTS session SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS session_id ON session TYPE string;
    DEFINE FIELD IF NOT EXISTS user_id ON session TYPE string;
    DEFINE FIELD IF NOT EXISTS created_at_ms ON session TYPE int;
    DEFINE FIELD IF NOT EXISTS last_used_ms ON session TYPE int;
    DEFINE FIELD IF NOT EXISTS device ON session TYPE option<string>;
    DEFINE FIELD IF NOT EXISTS client_ip ON session TYPE option<string>;
    DEFINE FIELD IF NOT EXISTS revoked ON session TYPE bool;
    DEFINE INDEX IF NOT EXISTS session_user ON session FIELDS user_id;

    DEFINE FIELD IF NOT EXISTS rate_per_minute ON api_key TYPE option<int>;
    ",
    ),
    (
        11,
        // Organisations: every account and project belongs to one.
        "
    DEFINE FIELD IF NOT EXISTS org ON user TYPE string DEFAULT 'default';
    UPDATE user SET org = 'default' WHERE org = NONE;
    DEFINE FIELD IF NOT EXISTS org ON project TYPE string DEFAULT 'default';
    UPDATE project SET org = 'default' WHERE org = NONE;
    DEFINE INDEX IF NOT EXISTS project_org ON project FIELDS org;
    ",
    ),
    (
        12,
        // The execution policy: the agent kinds each project was granted.
        "
    DEFINE TABLE IF NOT EXISTS project_policy SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS project_id ON project_policy TYPE string;
    DEFINE FIELD IF NOT EXISTS allowed_kinds ON project_policy TYPE array<string>;
    DEFINE FIELD IF NOT EXISTS updated_by ON project_policy TYPE string;
    DEFINE FIELD IF NOT EXISTS updated_at_ms ON project_policy TYPE int;
    ",
    ),
    (
        13,
        // Idempotency-Keys of run starts: which run each key's request started.
        "
    DEFINE TABLE IF NOT EXISTS idempotency_key SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS fingerprint ON idempotency_key TYPE string;
    DEFINE FIELD IF NOT EXISTS run_id ON idempotency_key TYPE option<string>;
    DEFINE FIELD IF NOT EXISTS created_at_ms ON idempotency_key TYPE int;
    ",
    ),
    (
        14,
        // The execution policy's mandatory gates: kinds whose tasks must wait for a
        // second person's approval.
        "
    DEFINE FIELD IF NOT EXISTS gated_kinds ON project_policy TYPE array<string> DEFAULT [];
    UPDATE project_policy SET gated_kinds = [] WHERE gated_kinds = NONE;
    ",
    ),
    (
        15,
        // Model calls carry the project they are billed to (spend caps and cost reports
        // per project and organisation); earlier calls belong to `default`.
        "
    DEFINE FIELD IF NOT EXISTS project ON inference_call TYPE string DEFAULT 'default';
    UPDATE inference_call SET project = 'default' WHERE project = NONE;
    ",
    ),
    (
        16,
        // Networks a project's requests may reach beyond the node's.
        "
    DEFINE FIELD IF NOT EXISTS allowed_networks ON project_policy TYPE array<string> DEFAULT [];
    UPDATE project_policy SET allowed_networks = [] WHERE allowed_networks = NONE;
    ",
    ),
    (
        17,
        // Each run's owner node and epoch, and the last event appended: every append
        // writes it under an epoch check, so a node that lost the run cannot append.
        "
    DEFINE FIELD IF NOT EXISTS owner ON run TYPE string DEFAULT '';
    DEFINE FIELD IF NOT EXISTS epoch ON run TYPE int DEFAULT 0;
    DEFINE FIELD IF NOT EXISTS last_seq ON run TYPE int DEFAULT 0;
    UPDATE run SET owner = '', epoch = 0, last_seq = 0 WHERE owner = NONE;
    ",
    ),
    (
        18,
        // The nodes sharing the store, each with a lease by the database's clock.
        "
    DEFINE TABLE IF NOT EXISTS node SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS name ON node TYPE string;
    DEFINE FIELD IF NOT EXISTS incarnation ON node TYPE int;
    DEFINE FIELD IF NOT EXISTS api_address ON node TYPE string;
    DEFINE FIELD IF NOT EXISTS load ON node TYPE string;
    DEFINE FIELD IF NOT EXISTS joined_ms ON node TYPE int;
    DEFINE FIELD IF NOT EXISTS heartbeat_ms ON node TYPE int;
    DEFINE FIELD IF NOT EXISTS lease_expires_ms ON node TYPE int;
    DEFINE INDEX IF NOT EXISTS node_name ON node FIELDS name UNIQUE;
    ",
    ),
    (
        19,
        // Where the other nodes dial each node, and what each offers for placement.
        "
    DEFINE FIELD IF NOT EXISTS cluster_address ON node TYPE string DEFAULT '';
    DEFINE FIELD IF NOT EXISTS labels ON node TYPE array<string> DEFAULT [];
    UPDATE node SET cluster_address = '', labels = [] WHERE cluster_address = NONE;
    ",
    ),
    (
        20,
        // Each attempt's outcome, written by the node that ran it before its run's owner
        // is told, so that a new owner resolves the attempt instead of running it again.
        "
    DEFINE TABLE IF NOT EXISTS attempt_outcome SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS run_id ON attempt_outcome TYPE string;
    DEFINE FIELD IF NOT EXISTS idempotency_key ON attempt_outcome TYPE string;
    DEFINE FIELD IF NOT EXISTS epoch ON attempt_outcome TYPE int;
    DEFINE FIELD IF NOT EXISTS node ON attempt_outcome TYPE string;
    DEFINE FIELD IF NOT EXISTS outcome ON attempt_outcome TYPE string;
    DEFINE FIELD IF NOT EXISTS at_ms ON attempt_outcome TYPE int;
    DEFINE INDEX IF NOT EXISTS attempt_outcome_run ON attempt_outcome FIELDS run_id;
    ",
    ),
    (
        21,
        // Agent attempts invoked outside any workflow, kept so that any node can answer
        // a poll for one.
        "
    DEFINE TABLE IF NOT EXISTS invocation SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS project ON invocation TYPE string;
    DEFINE FIELD IF NOT EXISTS kind ON invocation TYPE string;
    DEFINE FIELD IF NOT EXISTS requested_by ON invocation TYPE string;
    DEFINE FIELD IF NOT EXISTS accepted_by ON invocation TYPE string;
    DEFINE FIELD IF NOT EXISTS node ON invocation TYPE option<string>;
    DEFINE FIELD IF NOT EXISTS status ON invocation TYPE string;
    DEFINE FIELD IF NOT EXISTS output ON invocation TYPE option<string>;
    DEFINE FIELD IF NOT EXISTS error ON invocation TYPE option<string>;
    DEFINE FIELD IF NOT EXISTS cost_usd ON invocation TYPE float DEFAULT 0;
    DEFINE FIELD IF NOT EXISTS created_ms ON invocation TYPE int;
    DEFINE FIELD IF NOT EXISTS finished_ms ON invocation TYPE option<int>;
    DEFINE INDEX IF NOT EXISTS invocation_accepted_by ON invocation FIELDS accepted_by, status;
    ",
    ),
    (
        22,
        // Each run's trace: its root span's `traceparent`, and the one of the request
        // that started it, so that every node and epoch puts its spans in one trace.
        "
    DEFINE FIELD IF NOT EXISTS trace ON run TYPE string DEFAULT '';
    DEFINE FIELD IF NOT EXISTS trace_parent ON run TYPE string DEFAULT '';
    UPDATE run SET trace = '', trace_parent = '' WHERE trace = NONE;
    ",
    ),
    (
        23,
        // The latest settings reload of the cluster, which every node follows.
        "
    DEFINE TABLE IF NOT EXISTS settings_reload SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS seq ON settings_reload TYPE int DEFAULT 0;
    DEFINE FIELD IF NOT EXISTS node ON settings_reload TYPE string;
    DEFINE FIELD IF NOT EXISTS at_ms ON settings_reload TYPE int;
    ",
    ),
    (
        24,
        // The schedule tick that started a run: a scheduled workflow's latest tick is
        // read from its runs.
        "
    DEFINE FIELD IF NOT EXISTS tick_ms ON run TYPE option<int>;
    DEFINE INDEX IF NOT EXISTS run_workflow_tick ON run FIELDS workflow_id, tick_ms;
    ",
    ),
    (
        25,
        // A workflow's triggers may be paused: nothing they start while paused.
        "
    DEFINE FIELD IF NOT EXISTS triggers_paused ON workflow TYPE bool DEFAULT false;
    DEFINE FIELD IF NOT EXISTS triggers_changed_at_ms ON workflow TYPE int DEFAULT 0;
    UPDATE workflow SET triggers_paused = false, triggers_changed_at_ms = 0
        WHERE triggers_paused = NONE;
    ",
    ),
    (
        26,
        // Model calls name the run and task they were for, and run budgets hold what
        // calls under way may cost (store/src/budgets.rs).
        "
    DEFINE FIELD IF NOT EXISTS run_id ON inference_call TYPE option<string>;
    DEFINE FIELD IF NOT EXISTS task ON inference_call TYPE option<string>;
    DEFINE INDEX IF NOT EXISTS inference_call_run ON inference_call FIELDS run_id;
    DEFINE TABLE IF NOT EXISTS run_budget SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS held_usd ON run_budget TYPE number DEFAULT 0;
    ",
    ),
    (
        27,
        // An answer served and then refused by the agent that asked is marked so
        // (`Store::mark_refused`), found by its request's id.
        "
    DEFINE FIELD IF NOT EXISTS refused ON inference_call TYPE option<string>;
    DEFINE INDEX IF NOT EXISTS inference_call_request ON inference_call FIELDS request_id;
    ",
    ),
];

pub async fn apply(db: &Surreal<Any>) -> Result<(), StoreError> {
    apply_up_to(db, u32::MAX).await
}

/// Applies the migrations not yet applied, up to `last` (tests stop at an old schema).
pub async fn apply_up_to(db: &Surreal<Any>, last: u32) -> Result<(), StoreError> {
    db.query(
        "DEFINE TABLE IF NOT EXISTS schema_migration SCHEMAFULL;
         DEFINE FIELD IF NOT EXISTS version ON schema_migration TYPE int;
         DEFINE FIELD IF NOT EXISTS applied_at_ms ON schema_migration TYPE int;",
    )
    .await?
    .check()?;
    let mut response = db
        .query("SELECT VALUE version FROM schema_migration ORDER BY version DESC LIMIT 1")
        .await?
        .check()?;
    let applied: Vec<Value> = response.take(0)?;
    let current = applied.first().and_then(Value::as_u64).unwrap_or(0) as u32;
    for (version, statements) in MIGRATIONS
        .iter()
        .filter(|(version, _)| *version > current && *version <= last)
    {
        let query = format!(
            "BEGIN TRANSACTION;\n{statements}\nCREATE schema_migration CONTENT {{ version: $version, applied_at_ms: $now }};\nCOMMIT TRANSACTION;"
        );
        db.query(query)
            .bind(json!({"version": version, "now": crate::clock::now_ms()}))
            .await?
            .check()
            .map_err(|source| StoreError::Migration {
                version: *version,
                source,
            })?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

/// The schema version this build expects.
#[cfg(test)]
pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}
