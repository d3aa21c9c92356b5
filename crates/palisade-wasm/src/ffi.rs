//! Every `unsafe` line of the wasm engine: loading a precompiled module from the disk cache.

use std::path::Path;

use wasmtime::{Engine, Module};

/// Loads a module that [`wasmtime::Module::serialize`] wrote to `path`.
///
/// The file is one of ours: it lives in Palisade's cache directory, is written atomically
/// (temp file + rename), is named by a hash of the guest, the init texts and the engine's
/// compatibility hash, and its contents were checked against the checksum stored beside them
/// before this is called (`checked` is the verified bytes).
pub(crate) fn deserialize(engine: &Engine, checked: &[u8], path: &Path) -> Result<Module, String> {
    // SAFETY: `Module::deserialize` trusts its input to be a module Wasmtime itself serialized.
    // `checked` is exactly the bytes this engine's `Module::serialize` produced and we wrote to
    // our cache (the caller verified a checksum over them), and Wasmtime still rejects bytes
    // from an incompatible engine configuration or version by their header.
    unsafe { Module::deserialize(engine, checked) }.map_err(|e| format!("{}: {e}", path.display()))
}
