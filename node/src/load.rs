//! What this node tells the others of its load with each lease renewal, beyond its task
//! slots: free memory, the local models it serves and their queue. Read by placement
//! and shown by `troupe cluster status` and the dashboard.

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use troupe_cluster::membership::LoadReport;
use troupe_inference::serve::InferenceService;

pub(crate) struct NodeLoad {
    pub inference: Option<InferenceService>,
}

impl LoadReport for NodeLoad {
    fn report(&self) -> BoxFuture<'static, Map<String, Value>> {
        let inference = self.inference.clone();
        Box::pin(async move {
            let mut load = Map::new();
            if let Some(bytes) = available_memory_bytes() {
                load.insert("free_memory_bytes".into(), json!(bytes));
            }
            let (models, queued, capacity) = match &inference {
                Some(service) => models_of(service).await,
                None => (Vec::new(), 0, 0),
            };
            load.insert("models".into(), json!(models));
            load.insert("model_queue".into(), json!(queued));
            load.insert("model_capacity".into(), json!(capacity));
            load
        })
    }
}

/// The models `service` serves by name, and its workers' requests admitted and places.
async fn models_of(service: &InferenceService) -> (Vec<String>, usize, usize) {
    let mut models = Vec::new();
    if let Some(model) = service.generation_model() {
        models.push(model.id());
    }
    if let Some(id) = service.embedding_model_id() {
        models.push(id.to_string());
    }
    let workers = service.workers().await.unwrap_or_default();
    let queued = workers.iter().map(|worker| worker.load).sum();
    let capacity = workers.iter().map(|worker| worker.capacity).sum();
    (models, queued, capacity)
}

/// `MemAvailable` of `/proc/meminfo`: what the kernel could give without swapping.
fn available_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_available(&meminfo)
}

fn parse_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_is_read_from_meminfo() {
        let meminfo =
            "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   20480000 kB\n";
        assert_eq!(parse_available(meminfo), Some(20_480_000 * 1024));
        assert_eq!(parse_available("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_available("MemAvailable: lots kB\n"), None);
    }

    #[tokio::test]
    async fn a_node_without_models_reports_its_memory_and_no_models() {
        let load = NodeLoad { inference: None }.report().await;
        assert!(
            load["free_memory_bytes"]
                .as_u64()
                .is_some_and(|bytes| bytes > 0),
            "{load:?}"
        );
        assert_eq!(load["models"], json!([]));
        assert_eq!(load["model_queue"], json!(0));
    }
}
