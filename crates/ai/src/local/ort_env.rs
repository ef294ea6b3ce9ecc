//! Process-wide ONNX Runtime: the shared library comes from the models directory (fetched from
//! the `onnxruntime` PyPI wheel), loaded once at run time.

use std::path::Path;
use std::sync::OnceLock;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::models::ModelPaths;
use crate::{AiError, Result};

static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Loads onnxruntime from `paths` (idempotent).
pub fn init(paths: &ModelPaths) -> Result<()> {
    let lib = paths.onnxruntime()?;
    INIT.get_or_init(|| {
        ort::init_from(lib.display().to_string()).with_name("callfunnel").commit().map(|_| ()).map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|e| AiError::inference("onnxruntime", format!("cannot load {}: {e}", lib.display())))
}

/// A session with `threads` intra-op threads (1: many calls share few cores).
pub fn session(provider: &'static str, model: &Path, threads: usize) -> Result<Session> {
    let err = |e: ort::Error| AiError::inference(provider, format!("{}: {e}", model.display()));
    Session::builder()
        .map_err(err)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(err)?
        .with_intra_threads(threads)
        .map_err(err)?
        .with_inter_threads(1)
        .map_err(err)?
        .commit_from_file(model)
        .map_err(err)
}

/// A free session of `pool` if there is one, else a wait on the first.
pub fn any_free(pool: &[parking_lot::Mutex<Session>]) -> parking_lot::MutexGuard<'_, Session> {
    pool.iter().find_map(|s| s.try_lock()).unwrap_or_else(|| pool[0].lock())
}

/// Number of sessions to keep for a model shared by many calls.
pub fn pool_size() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8)
}
