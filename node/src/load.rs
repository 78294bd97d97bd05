//! What this node tells the others of its load with each lease renewal, beyond its task
//! slots: free memory, the local models it serves with their queues, and the free memory
//! of the GPU they run on. Read by placement (`troupe_cluster::models` places model
//! requests by it) and shown by `troupe cluster status` and the dashboard.

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use troupe_cluster::membership::LoadReport;
use troupe_cluster::models::{ModelLoad, ServedModel};
use troupe_inference::serve::{InferenceService, WorkerKind};

pub(crate) struct NodeLoad {
    pub inference: Option<InferenceService>,
}

impl LoadReport for NodeLoad {
    fn report(&self) -> BoxFuture<'static, Map<String, Value>> {
        let inference = self.inference.clone();
        Box::pin(async move {
            let mut load = served_models(inference.as_ref()).await;
            load.free_memory_bytes = available_memory_bytes();
            if inference
                .as_ref()
                .and_then(InferenceService::generation_model)
                .is_some_and(|model| model.weights().device().is_cuda())
            {
                load.gpu_free_bytes = gpu_free_bytes().await;
            }
            let names: Vec<&str> = [&load.generation, &load.embedding]
                .into_iter()
                .flatten()
                .map(|served| served.model.as_str())
                .collect();
            let mut report = match serde_json::to_value(&load) {
                Ok(Value::Object(report)) => report,
                _ => Map::new(),
            };
            report.insert("models".into(), json!(names));
            report
        })
    }
}

/// This node's models with their queues now (one call to the model router): what a
/// model request placed here needs to know, without the memory figures that only the
/// lease report carries.
pub(crate) async fn served_models(inference: Option<&InferenceService>) -> ModelLoad {
    let mut load = ModelLoad::default();
    let Some(service) = inference else {
        return load;
    };
    let workers = service.workers().await.unwrap_or_default();
    let served = |model: String, kind: WorkerKind| {
        let of_kind = || workers.iter().filter(move |worker| worker.kind == kind);
        ServedModel {
            model,
            queue: of_kind().map(|worker| worker.load).sum(),
            capacity: of_kind().map(|worker| worker.capacity).sum(),
        }
    };
    load.generation = service
        .generation_model()
        .map(|model| served(model.id(), WorkerKind::Generation));
    load.embedding = service
        .embedding_model_id()
        .map(|id| served(id.to_string(), WorkerKind::Embedding));
    load
}

/// Free memory of the first GPU, as `nvidia-smi` reports it (the driver's own count,
/// which sees every process's allocations, not only candle's).
async fn gpu_free_bytes() -> Option<u64> {
    let output = tokio::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=memory.free",
            "--format=csv,noheader,nounits",
            "-i",
            "0",
        ])
        .kill_on_drop(true)
        .output()
        .await
        .ok()?;
    parse_gpu_free(&String::from_utf8_lossy(&output.stdout))
}

/// `nvidia-smi`'s free memory, in MiB, as bytes.
fn parse_gpu_free(stdout: &str) -> Option<u64> {
    let mib: u64 = stdout.lines().next()?.trim().parse().ok()?;
    mib.checked_mul(1 << 20)
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

    #[test]
    fn free_gpu_memory_is_read_from_nvidia_smi() {
        assert_eq!(parse_gpu_free("79232\n"), Some(79_232 << 20));
        assert_eq!(parse_gpu_free("[N/A]\n"), None);
        assert_eq!(parse_gpu_free(""), None);
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
        assert!(!load.contains_key("generation"), "{load:?}");
        assert_eq!(
            ModelLoad::of(&Value::Object(load))
                .free_memory_bytes
                .map(|_| ()),
            Some(())
        );
    }
}
