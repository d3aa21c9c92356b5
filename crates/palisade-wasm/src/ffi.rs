//! Every `unsafe` line of the wasm engine: loading a precompiled module from the disk cache, and
//! handing a finished instance's memory pages back to the kernel.

use std::path::Path;

use wasmtime::{Engine, Module};

/// Loads a module Wasmtime serialized into our on-disk cache, mapping the file (Wasmtime keeps the
/// mapping, and uses it as the memory image's copy-on-write source).
///
/// The file is one of ours: it lives in Palisade's cache directory, is named by a hash of the
/// guest, the init texts and the engine's compatibility hash, and its contents were checked
/// against the checksum stored after them, through this same open file, before this is called.
/// Cache files are never changed in place: each is written whole to a temporary file and renamed
/// over the old name (`guest::store_cached`), and a bad one is unlinked, so the inode mapped
/// here keeps its contents for as long as the module lives.
pub(crate) fn deserialize_file(
    engine: &Engine,
    checked: std::fs::File,
    path: &Path,
) -> Result<Module, String> {
    // SAFETY: `Module::deserialize_open_file` trusts the file to be a module Wasmtime itself
    // serialized, left unchanged while the module lives. The file holds exactly the bytes this
    // engine's `Module::serialize` produced, followed by our 16-byte checksum trailer, which the
    // caller verified over this open file; Wasmtime still rejects bytes from an incompatible
    // engine configuration or version by their header. Our files are only ever replaced by
    // rename or unlinked, never written in place (see above).
    unsafe { Module::deserialize_open_file(engine, checked) }
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether [`discard`] helps here: only where Wasmtime resets a pool slot by its written pages
/// (`PAGEMAP_SCAN`, Linux 6.7+, which `guest::engine_config` asks for where available), asked of
/// Wasmtime itself. Elsewhere Wasmtime copies the whole kept-resident prefix back after every
/// run, and copying into discarded pages would fault on every one of them (slower, not wrong).
pub(crate) fn can_discard() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(wasmtime::PoolingAllocationConfig::is_pagemap_scan_available)
}

/// Hands the pages of a finished instance's linear memory back to the kernel, so that the pool
/// slot holds the copy-on-write image again instead of written copies of it
/// (`run::wrote_much` says when). Taking the store mutably means no borrow of the memory's
/// bytes can be alive across the call.
pub(crate) fn discard(
    memory: &wasmtime::Memory,
    store: &mut wasmtime::Store<crate::run::HostState>,
) {
    let (ptr, len) = (memory.data_ptr(&*store), memory.data_size(&*store));
    // SAFETY: `ptr..ptr + len` is the instance's accessible linear memory: mapped readable and
    // writable by Wasmtime (the pool slot's anonymous private mapping, with the module's memory
    // image mapped copy-on-write, MAP_PRIVATE, over part of it) for as long as `store` lives. We
    // hold `store` exclusively, so it is not dropped, grown or run meanwhile, and no Rust
    // reference into the bytes is alive; `madvise` reads or writes none through one.
    // MADV_DONTNEED on private mappings drops their written copies: afterwards each page reads as
    // the mapping it came from, the image or zeros (before and after the image, or everywhere
    // when there is no image), which is the state Wasmtime's reset restores anyway (its own
    // decommit is this same call), and Wasmtime still resets whatever is left. Nothing reads the
    // memory before the store is dropped. On failure some pages may stay as they were, which that
    // reset then copies back as usual, so the result is ignored.
    let _ = unsafe { libc::madvise(ptr.cast(), len, libc::MADV_DONTNEED) };
}
