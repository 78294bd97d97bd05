//! From settings to a running service: which files, which device, how many workers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use troupe_config::ModelSettings;
use troupe_supervision::RestartPolicy;

use crate::batch::Drafting;
use crate::catalog::{MINILM, SMOLLM2};
use crate::embedding::Embedder;
use crate::errors::InferenceError;
use crate::fetch;
use crate::generation::LocalModel;
use crate::serve::{EmbeddingPool, GenerationPool, ServiceConfig};

/// The GGUF the settings name, or the default model's in the models directory.
pub fn generation_path(settings: &ModelSettings) -> Result<PathBuf, InferenceError> {
    if settings.generation.is_empty() {
        fetch::require(Path::new(&settings.dir), &SMOLLM2, &SMOLLM2.files[0])
    } else {
        existing(PathBuf::from(&settings.generation))
    }
}

/// The embedding model directory the settings name, or the default one.
pub fn embedding_dir(settings: &ModelSettings) -> Result<PathBuf, InferenceError> {
    if settings.embedding.is_empty() {
        for file in MINILM.files {
            fetch::require(Path::new(&settings.dir), &MINILM, file)?;
        }
        Ok(fetch::model_dir(Path::new(&settings.dir), &MINILM))
    } else {
        existing(PathBuf::from(&settings.embedding))
    }
}

fn existing(path: PathBuf) -> Result<PathBuf, InferenceError> {
    if path.exists() {
        Ok(path)
    } else {
        Err(InferenceError::ModelMissing { path })
    }
}

/// Loads both models (blocking: call from a blocking thread) and sizes the pools.
pub fn load(
    settings: &ModelSettings,
    policy: RestartPolicy,
) -> Result<ServiceConfig, InferenceError> {
    let device = crate::device::select(settings.device)?;
    let mut model = LocalModel::load_on(&generation_path(settings)?, &device)?;
    if settings.context_tokens > 0 {
        model.limit_context(settings.context_tokens as usize);
    }
    model.cache_prefixes(settings.prefix_cache_mb as usize);
    let embedder = Embedder::load(&embedding_dir(settings)?)?;
    Ok(ServiceConfig {
        generation: Some(GenerationPool {
            model,
            workers: settings.generation_workers as usize,
            max_running: settings.max_batch_sequences as usize,
            queue: settings.queue_per_worker as usize,
            max_step_tokens: settings.max_step_tokens as usize,
            drafting: Drafting {
                max_tokens: settings.draft_tokens as usize,
                max_streams: settings.draft_max_streams as usize,
            },
        }),
        embedding: Some(EmbeddingPool {
            model: Arc::new(embedder),
            workers: settings.embedding_workers as usize,
            queue: settings.queue_per_worker as usize,
        }),
        policy,
    })
}
