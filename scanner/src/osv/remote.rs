//! An OSV-compatible endpoint (osv.dev or a mirror): `POST {url}/v1/querybatch` with
//! the dependencies, then `GET {url}/v1/vulns/{id}` for each advisory the batch names
//! without its details. Every failure is a warning: a scan without the endpoint's
//! answer is still a scan.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::config::ScannerConfig;
use crate::deps::Dependency;
use crate::osv::{Advisory, AdvisoryDb};

/// Queries the endpoint for `dependencies` and adds what it knows to `db`. The caller
/// gives the `client`: where it may connect, and its timeout (`config.osv_timeout`), are
/// the caller's policy.
pub async fn query(
    client: &reqwest::Client,
    url: &str,
    dependencies: &[Dependency],
    config: &ScannerConfig,
    db: &mut AdvisoryDb,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let base = url.trim_end_matches('/');
    let mut to_fetch = BTreeSet::new();
    for batch in dependencies.chunks(config.osv_batch_size.max(1)) {
        let queries: Vec<Value> = batch
            .iter()
            .map(|dependency| {
                json!({"package": {"name": dependency.name, "ecosystem": dependency.ecosystem}, "version": dependency.version})
            })
            .collect();
        let answer = match post_json(
            client,
            &format!("{base}/v1/querybatch"),
            &json!({ "queries": queries }),
            config,
        )
        .await
        {
            Ok(answer) => answer,
            Err(error) => {
                warnings.push(format!(
                    "OSV endpoint {base}: {error}; dependency advisories from it are missing"
                ));
                return warnings;
            }
        };
        let results = answer
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for vuln in results
            .iter()
            .filter_map(|result| result.get("vulns"))
            .filter_map(Value::as_array)
            .flatten()
        {
            // Some servers answer with whole records; osv.dev answers with ids only.
            if vuln.get("affected").is_some() {
                if let Ok(advisory) = serde_json::from_value::<Advisory>(vuln.clone()) {
                    db.insert(advisory);
                }
            } else if let Some(id) = vuln.get("id").and_then(Value::as_str) {
                to_fetch.insert(id.to_string());
            }
        }
    }
    if to_fetch.len() > config.max_osv_advisories {
        warnings.push(format!(
            "OSV endpoint named {} advisories; only the first {} were fetched",
            to_fetch.len(),
            config.max_osv_advisories
        ));
    }
    for id in to_fetch.into_iter().take(config.max_osv_advisories) {
        let record = get_json(client, &format!("{base}/v1/vulns/{id}"), config).await;
        match record.and_then(|record| {
            serde_json::from_value::<Advisory>(record).map_err(|error| error.to_string())
        }) {
            Ok(advisory) => db.insert(advisory),
            Err(error) => warnings.push(format!("OSV endpoint {base}: advisory {id}: {error}")),
        }
    }
    warnings
}

/// `error` and its causes: reqwest's own message names only the URL.
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        text.push_str(": ");
        text.push_str(&current.to_string());
        cause = current.source();
    }
    text
}

async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    config: &ScannerConfig,
) -> Result<Value, String> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|error| with_causes(&error))?;
    read_json(response, config).await
}

async fn get_json(
    client: &reqwest::Client,
    url: &str,
    config: &ScannerConfig,
) -> Result<Value, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| with_causes(&error))?;
    read_json(response, config).await
}

async fn read_json(
    mut response: reqwest::Response,
    config: &ScannerConfig,
) -> Result<Value, String> {
    if !response.status().is_success() {
        return Err(format!("answered HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > config.max_osv_response_bytes {
            return Err(format!(
                "answer larger than {} bytes",
                config.max_osv_response_bytes
            ));
        }
    }
    serde_json::from_slice(&body).map_err(|error| format!("answer is not JSON: {error}"))
}
