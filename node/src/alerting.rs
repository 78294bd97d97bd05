//! The alert loop: every `alerts.evaluate_every_secs` the node reads its own metrics (as
//! a scrape would), the rules of `troupe-alerts` judge them, and each alert that fires or
//! resolves is written to the audit log, to the node's log and, when set, to a webhook
//! in Alertmanager's format. What is pending and firing now is on the [`AlertBoard`],
//! for `GET /api/v1/alerts`, `troupe alerts` and the dashboard.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics::counter;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use troupe_alerts::{Alert, AlertState, Evaluator, Notification, Transition, fingerprint};
use troupe_config::{AlertSettings, AlertWebhookSettings};
use troupe_security::audit::{AuditAction, AuditLog};

use crate::reload::RunningSettings;
use crate::vitals::Vitals;

const NOTIFICATIONS: &str = "troupe_alert_notifications_total";

pub(crate) fn describe() {
    metrics::describe_counter!(
        NOTIFICATIONS,
        "Alert notifications sent to alerts.webhook.url, by outcome (sent, failed)."
    );
}

/// The alerts pending and firing at the last evaluation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertsNow {
    /// Whether the node evaluates its rules (`alerts.enabled`, and its own metrics
    /// recorder).
    pub evaluating: bool,
    pub evaluated_at_ms: Option<i64>,
    /// The rules evaluated.
    pub rules: Vec<String>,
    /// Firing first, then the most severe.
    pub alerts: Vec<AlertView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertView {
    pub name: String,
    /// critical, warning or info.
    pub severity: String,
    /// pending (its condition holds, not yet for its `for`) or firing.
    pub state: String,
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    pub description: String,
    /// The rule expression's value at the last evaluation.
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    /// The same while the alert lasts, and in its audit entries and notifications.
    pub fingerprint: String,
}

impl From<&Alert> for AlertView {
    fn from(alert: &Alert) -> Self {
        Self {
            name: alert.name.into(),
            severity: alert.severity.as_str().into(),
            state: match alert.state {
                AlertState::Pending => "pending",
                AlertState::Firing => "firing",
            }
            .into(),
            labels: alert.labels.clone(),
            summary: alert.summary.clone(),
            description: alert.description.into(),
            value: alert.value,
            active_at_ms: alert.active_at,
            fired_at_ms: alert.fired_at,
            fingerprint: fingerprint(&alert.labels),
        }
    }
}

/// The alerts now; subscribe to be told of each evaluation.
pub type AlertBoard = watch::Receiver<AlertsNow>;

pub(crate) struct AlertLoop {
    pub(crate) vitals: Vitals,
    pub(crate) audit: Arc<AuditLog>,
    /// `alerts.*` is read from here at each evaluation: a reload applies at the next.
    pub(crate) settings: watch::Receiver<RunningSettings>,
    /// The `instance` label, as a scrape of this node would carry: its name.
    pub(crate) instance: String,
    /// Where a notification's reader finds the node (`externalURL`).
    pub(crate) node_url: String,
}

impl AlertLoop {
    /// Starts evaluating; the board is empty (and says so) while alerts are off, and
    /// always when the program that embeds the node exports metrics itself.
    pub(crate) fn start(self) -> (AlertBoard, Option<JoinHandle<()>>) {
        let (board, watching) = watch::channel(AlertsNow::default());
        if crate::metrics::recorder().is_none() {
            return (watching, None);
        }
        let task = tokio::spawn(async move {
            let mut running = Running {
                client: reqwest::Client::new(),
                evaluator: None,
                board,
                setup: self,
            };
            loop {
                let next = running.tick().await;
                tokio::time::sleep(next).await;
            }
        });
        (watching, Some(task))
    }
}

struct Running {
    setup: AlertLoop,
    /// With the settings it was last given; none while alerts are off.
    evaluator: Option<(Evaluator, AlertSettings)>,
    board: watch::Sender<AlertsNow>,
    client: reqwest::Client,
}

impl Running {
    /// Evaluates once with `alerts.*` as they are now; the wait until the next time.
    async fn tick(&mut self) -> Duration {
        let settings = self.setup.settings.borrow().settings.alerts.clone();
        let next = Duration::from_secs(settings.evaluate_every_secs);
        if !settings.enabled {
            self.evaluator = None;
            self.board.send_replace(AlertsNow::default());
            return next;
        }
        match &mut self.evaluator {
            Some((evaluator, applied)) if *applied != settings => {
                evaluator.reconfigure(&settings);
                *applied = settings;
            }
            Some(_) => {}
            None => self.evaluator = Some((Evaluator::new(&settings), settings)),
        }
        self.evaluate().await;
        next
    }

    async fn evaluate(&mut self) {
        let Some(text) = self.setup.vitals.metrics_text().await else {
            return;
        };
        let at = self.setup.vitals.context.clock.now_ms();
        let mut samples = match troupe_alerts::parse_exposition(&text) {
            Ok(samples) => samples,
            Err(error) => {
                tracing::error!(%error, "alerts: cannot read the node's own metrics");
                return;
            }
        };
        for sample in &mut samples {
            let instance = self.setup.instance.clone();
            sample.labels.entry("instance".into()).or_insert(instance);
        }
        let Some((evaluator, settings)) = &mut self.evaluator else {
            return;
        };
        evaluator.observe(at, samples);
        let transitions = evaluator.evaluate(at);
        let now = AlertsNow {
            evaluating: true,
            evaluated_at_ms: Some(at),
            rules: evaluator.rule_names().into_iter().map(Into::into).collect(),
            alerts: evaluator.alerts().iter().map(AlertView::from).collect(),
        };
        let webhook = settings.webhook.clone();
        for transition in &transitions {
            self.tell(transition, &webhook).await;
        }
        self.board.send_replace(now);
    }

    async fn tell(&self, transition: &Transition, webhook: &AlertWebhookSettings) {
        let (action, alert) = match transition {
            Transition::Fired(alert) => {
                tracing::warn!(alert = alert.name, summary = %alert.summary, "alert firing");
                let action = AuditAction::AlertFiring {
                    alert: alert.name.into(),
                    severity: alert.severity.as_str().into(),
                    labels: alert.labels.clone(),
                    summary: alert.summary.clone(),
                };
                (action, alert)
            }
            Transition::Resolved { alert, .. } => {
                tracing::info!(alert = alert.name, summary = %alert.summary, "alert resolved");
                let action = AuditAction::AlertResolved {
                    alert: alert.name.into(),
                    labels: alert.labels.clone(),
                    fired_at_ms: alert.fired_at.unwrap_or(alert.active_at),
                };
                (action, alert)
            }
        };
        let target = fingerprint(&alert.labels);
        if let Err(error) = self.setup.audit.record("system", action, &target).await {
            tracing::error!(%error, alert = alert.name, "alerts: cannot write the audit entry");
        }
        if !webhook.url.is_empty() {
            let notification = Notification::of(transition, &self.setup.node_url);
            tokio::spawn(notify(self.client.clone(), webhook.clone(), notification));
        }
    }
}

/// Sends one notification; a receiver that is down or slow costs it, never the loop.
async fn notify(
    client: reqwest::Client,
    webhook: AlertWebhookSettings,
    notification: Notification,
) {
    let mut request = client
        .post(&webhook.url)
        .timeout(Duration::from_millis(webhook.timeout_ms))
        .json(&notification);
    for (name, value) in &webhook.headers {
        request = request.header(name, value);
    }
    let outcome = match request.send().await.and_then(|r| r.error_for_status()) {
        Ok(_) => "sent",
        Err(error) => {
            tracing::warn!(%error, url = %webhook.url, "alerts: the webhook did not take a notification");
            "failed"
        }
    };
    counter!(NOTIFICATIONS, "outcome" => outcome).increment(1);
}
