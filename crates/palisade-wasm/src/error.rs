//! The engine's own failures (the guest's are [`palisade_core::ExecError`]s).

use std::path::PathBuf;

/// Why the engine could not start or serve a run.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// Wasmtime refused the configuration.
    #[error("cannot configure Wasmtime: {0}")]
    Config(String),
    /// Compiling or instantiating the guest failed.
    #[error("cannot compile the wasm guest: {0}")]
    Compile(String),
    /// Pre-initialising the guest (its `wizer-initialize`) failed.
    #[error("cannot pre-initialise the wasm guest: {0}")]
    Snapshot(String),
    /// A cache file could not be used (never fatal: the engine compiles instead).
    #[error("cannot use the compile cache at {path}: {message}")]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Creating a fresh instance failed (e.g. the instance pool is exhausted).
    #[error("cannot create a wasm instance: {0}")]
    Instantiate(String),
}
