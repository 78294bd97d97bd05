//! The process behind one plugin kind or MCP server, supervised: started lazily,
//! handshaken, health-checked after idling, killed on any fault and started again on next
//! use, with the restart rule of `troupe_supervision::RestartLog` (too many failures in
//! the period and calls are refused until it has passed).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use troupe_supervision::{RestartLog, RestartPolicy, Verdict};

use super::child::{Call, CancelNotice, RpcChild};
use super::{Fault, ProcessConfig};
use crate::errors::AgentError;
use crate::process::tail_chars;

/// An idle process is asked for its health before it is given work again after this
/// long: a hung one is replaced before it can waste an attempt's timeout.
const HEALTH_CHECK_AFTER_IDLE: Duration = Duration::from_secs(30);
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of the stderr tail an error message quotes.
const STDERR_CHARS_IN_ERRORS: usize = 1000;

/// What differs between the plugin protocol and MCP on the same transport.
pub(crate) struct Dialect {
    /// "plugin" or "MCP server", for messages.
    pub host: &'static str,
    pub initialize_params: Value,
    /// Sent after a successful `initialize` (MCP's `notifications/initialized`).
    pub initialized_notification: Option<&'static str>,
    /// Refuses an `initialize` result we cannot work with.
    pub check_initialize: fn(&Value) -> Result<(), String>,
    pub health_method: &'static str,
    pub cancel: CancelNotice,
}

pub(crate) struct Supervised {
    name: String,
    config: ProcessConfig,
    dialect: Dialect,
    /// One call at a time: an attempt holds the lock for its whole call.
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// `None` between a fault and the next use. Taken out during a call, so that a call
    /// dropped halfway drops (and kills) the process instead of leaving it mid-message.
    child: Option<RpcChild>,
    idle_since: Option<Instant>,
    /// What the running process answered to `initialize`.
    info: Option<Value>,
    restarts: RestartLog,
    refused_until: Option<Instant>,
    last_failure: String,
}

impl Supervised {
    pub(crate) fn new(name: String, config: ProcessConfig, dialect: Dialect) -> Self {
        Self {
            name,
            config,
            dialect,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    pub(crate) fn default_timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_secs)
    }

    /// Calls `method`, starting the process first if it is not running.
    pub(crate) async fn call(
        &self,
        method: &str,
        params: &Value,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Value, AgentError> {
        let mut state = tokio::select! {
            state = self.state.lock() => state,
            () = cancel.cancelled() => return Err(AgentError::Cancelled),
        };
        let mut child = self.ready_child(&mut state, cancel).await?;
        let call = Call {
            method,
            params,
            timeout,
            cancel,
        };
        let outcome = child.call(&call, Some(self.dialect.cancel)).await;
        self.settle(&mut state, child, method, outcome).await
    }

    /// The health method of the running process (started if needed).
    pub(crate) async fn health(&self, cancel: &CancellationToken) -> Result<Value, AgentError> {
        let timeout = self.default_timeout().min(HEALTH_CHECK_TIMEOUT);
        self.call(self.dialect.health_method, &json!({}), timeout, cancel)
            .await
    }

    /// What the running process answered to `initialize`, if one is running.
    pub(crate) async fn info(&self) -> Option<Value> {
        let state = self.state.lock().await;
        state.child.as_ref().and(state.info.clone())
    }

    async fn settle(
        &self,
        state: &mut State,
        child: RpcChild,
        method: &str,
        outcome: Result<Value, Fault>,
    ) -> Result<Value, AgentError> {
        match outcome {
            Ok(value) => {
                state.keep(child);
                Ok(value)
            }
            Err(Fault::Remote { code, message }) => {
                state.keep(child);
                Err(AgentError::ExternalRefused {
                    host: self.dialect.host,
                    name: self.name.clone(),
                    method: method.into(),
                    code,
                    message,
                })
            }
            Err(Fault::Cancelled { clean }) => {
                if clean {
                    state.keep(child);
                } else {
                    child.kill().await;
                }
                Err(AgentError::Cancelled)
            }
            Err(fault) => {
                let stderr = child.kill().await;
                Err(self.fail(state, describe(&fault, method, &stderr)))
            }
        }
    }

    /// The running process if it is usable, else a new one.
    async fn ready_child(
        &self,
        state: &mut State,
        cancel: &CancellationToken,
    ) -> Result<RpcChild, AgentError> {
        self.check_refused(state)?;
        if let Some(mut child) = state.child.take() {
            if let Some(status) = child.has_exited() {
                let stderr = child.kill().await;
                let reason = describe(&Fault::Exited { status }, "nothing (it was idle)", &stderr);
                tracing::warn!(host = self.dialect.host, name = %self.name, %reason, "external process died; starting it again");
                self.record_failure(state, reason);
                self.check_refused(state)?;
            } else if state
                .idle_since
                .is_some_and(|since| since.elapsed() >= HEALTH_CHECK_AFTER_IDLE)
            {
                let timeout = self.default_timeout().min(HEALTH_CHECK_TIMEOUT);
                let ping = Call {
                    method: self.dialect.health_method,
                    params: &json!({}),
                    timeout,
                    cancel,
                };
                match child.call(&ping, None).await {
                    Ok(_) => return Ok(child),
                    Err(Fault::Cancelled { .. }) => return Err(AgentError::Cancelled),
                    Err(fault) => {
                        let stderr = child.kill().await;
                        let reason = describe(&fault, self.dialect.health_method, &stderr);
                        self.record_failure(state, reason);
                        self.check_refused(state)?;
                    }
                }
            } else {
                return Ok(child);
            }
        }
        self.start(state, cancel).await
    }

    /// Spawns the process and runs the handshake; any failure counts as a restart.
    async fn start(
        &self,
        state: &mut State,
        cancel: &CancellationToken,
    ) -> Result<RpcChild, AgentError> {
        let mut child = match RpcChild::spawn(&self.config).await {
            Ok(child) => child,
            Err(fault) => return Err(self.fail(state, describe(&fault, "start", ""))),
        };
        let handshake = Call {
            method: "initialize",
            params: &self.dialect.initialize_params,
            timeout: self.default_timeout(),
            cancel,
        };
        let answered = match child.call(&handshake, None).await {
            Ok(info) => (self.dialect.check_initialize)(&info)
                .map(|()| info)
                .map_err(|reason| Fault::Protocol(format!("its `initialize` answer {reason}"))),
            Err(fault) => Err(fault),
        };
        let notified = match (&answered, self.dialect.initialized_notification) {
            (Ok(_), Some(method)) => child.notify(method, &json!({})).await,
            _ => Ok(()),
        };
        match (answered, notified) {
            (Ok(info), Ok(())) => {
                tracing::info!(host = self.dialect.host, name = %self.name, pid = ?child.id(), %info, "external process started");
                state.info = Some(info);
                Ok(child)
            }
            (Err(Fault::Cancelled { .. }), _) => {
                child.kill().await;
                Err(AgentError::Cancelled)
            }
            (Err(fault), _) | (Ok(_), Err(fault)) => {
                let stderr = child.kill().await;
                let reason = format!(
                    "failed its handshake: {}",
                    describe(&fault, "initialize", &stderr)
                );
                Err(self.fail(state, reason))
            }
        }
    }

    fn check_refused(&self, state: &mut State) -> Result<(), AgentError> {
        let Some(until) = state.refused_until else {
            return Ok(());
        };
        let now = Instant::now();
        if now >= until {
            state.refused_until = None;
            return Ok(());
        }
        Err(AgentError::RestartLimit {
            host: self.dialect.host,
            name: self.name.clone(),
            failures: state.restarts.recent_failures(),
            max_restarts: self.config.max_restarts,
            period_secs: self.config.restart_period_secs,
            retry_in_secs: (until - now).as_secs() + 1,
            last_failure: state.last_failure.clone(),
        })
    }

    /// Records a failure and tells it as the call's error, saying so when it was one too
    /// many.
    fn fail(&self, state: &mut State, reason: String) -> AgentError {
        let refused = self.record_failure(state, reason.clone());
        let reason = if refused {
            format!(
                "{reason} (restart limit reached: not started again for {} s)",
                self.config.restart_period_secs
            )
        } else {
            reason
        };
        AgentError::External {
            host: self.dialect.host,
            name: self.name.clone(),
            reason,
        }
    }

    /// Whether calls are now refused for a period.
    fn record_failure(&self, state: &mut State, reason: String) -> bool {
        let policy = RestartPolicy {
            max_restarts: self.config.max_restarts,
            period: Duration::from_secs(self.config.restart_period_secs),
        };
        let now = Instant::now();
        state.last_failure = reason;
        state.info = None;
        if state.restarts.record_failure(now, policy) == Verdict::Escalate {
            tracing::warn!(host = self.dialect.host, name = %self.name, last_failure = %state.last_failure, "restart limit reached");
            state.refused_until = Some(now + policy.period);
            return true;
        }
        false
    }
}

impl State {
    fn keep(&mut self, child: RpcChild) {
        self.child = Some(child);
        self.idle_since = Some(Instant::now());
    }
}

/// A fault as a sentence about the process, with the end of its stderr.
fn describe(fault: &Fault, method: &str, stderr: &str) -> String {
    let what = match fault {
        Fault::Spawn(reason) => reason.clone(),
        Fault::Exited { status } => format!("exited ({status}) while answering `{method}`"),
        Fault::LineTooLong { limit } => {
            format!("answered `{method}` with a line over max_output_bytes ({limit} bytes); killed")
        }
        Fault::NotJson { excerpt } => format!(
            "wrote a line that is not JSON while answering `{method}`: `{excerpt}` (stdout \
             carries one JSON-RPC message per line; logs belong on stderr)"
        ),
        Fault::Protocol(reason) => format!("broke the protocol during `{method}`: {reason}"),
        Fault::TimedOut { secs } => format!("did not answer `{method}` within {secs} s; killed"),
        Fault::Cancelled { .. } => "cancelled".into(),
        Fault::Remote { code, message } => format!("answered error {code}: {message}"),
    };
    if stderr.is_empty() {
        what
    } else {
        format!(
            "{what}; stderr: {}",
            tail_chars(stderr, STDERR_CHARS_IN_ERRORS)
        )
    }
}
