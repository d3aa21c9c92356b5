//! Every `unsafe` line of the wasm engine: checking and loading a precompiled module from the
//! disk cache, and handing a finished instance's memory pages back to the kernel.

use std::path::Path;

use wasmtime::{Engine, Module};

/// Loads a module that [`wasmtime::Module::serialize`] wrote to `path`, from its bytes (copied
/// into Wasmtime's own memory): for a cache on a filesystem where mapping it is not safe
/// ([`on_local_filesystem`]).
///
/// The file is one of ours: it lives in Palisade's cache directory, is written atomically
/// (temp file + rename), is named by a hash of the guest, the init texts and the engine's
/// compatibility hash, and its contents were checked against the checksum stored after them
/// before this is called (`checked` is the verified bytes).
pub(crate) fn deserialize(engine: &Engine, checked: &[u8], path: &Path) -> Result<Module, String> {
    // SAFETY: `Module::deserialize` trusts its input to be a module Wasmtime itself serialized.
    // `checked` is exactly the bytes this engine's `Module::serialize` produced and we wrote to
    // our cache (the caller verified a checksum over them), and Wasmtime still rejects bytes
    // from an incompatible engine configuration or version by their header.
    unsafe { Module::deserialize(engine, checked) }.map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether `file` is on a local filesystem, where a mapping of it keeps the contents of the
/// inode it mapped for as long as it lives (our cache files are only ever replaced by rename or
/// unlinked). Not so on network or user-space filesystems (NFS, SMB, FUSE, ...): another host can
/// replace or remove the file, and pages not yet read then fault (`SIGBUS`). Anything not on
/// this list, or a failed `fstatfs`, counts as not local.
pub(crate) fn on_local_filesystem(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    const LOCAL: [u32; 9] = [
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0x0102_1994, // tmpfs
        0x8584_58F6, // ramfs
        0x794C_7630, // overlayfs
        0x2FC1_2FC2, // zfs
        0xF2F5_2010, // f2fs
        0xCA45_1A4E, // bcachefs
    ];
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `fstatfs` fills the struct it is given, for a descriptor we own and keep open.
    let rc = unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: `fstatfs` returned 0, so it initialised the struct (zeroed before in any case).
    let kind = unsafe { st.assume_init() }.f_type;
    // Magic numbers are 32-bit; `f_type`'s integer type varies by platform.
    #[allow(clippy::unnecessary_cast)]
    let kind = kind as u32;
    LOCAL.contains(&kind)
}

/// Loads a module Wasmtime serialized into our on-disk cache, mapping the file (Wasmtime keeps the
/// mapping, and uses it as the memory image's copy-on-write source).
///
/// The file is one of ours: it lives in Palisade's cache directory, is named by a hash of the
/// guest, the init texts and the engine's compatibility hash, and its contents were checked
/// against the checksum stored after them, through this same open file, before this is called.
/// Cache files are never changed in place: each is written whole to a temporary file and renamed
/// over the old name (`guest::store_cached`), and a bad or old one is unlinked; and the caller
/// maps only files on a local filesystem ([`on_local_filesystem`]), where the inode mapped here
/// then keeps its contents for as long as the module lives. (Someone else writing into
/// Palisade's private cache in place is outside this: as with its binary, they could do
/// anything.)
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

/// The CRC-32 of the first `len` bytes of a cache file, read through a read-only mapping rather
/// than copied into a buffer (copying the 3.5 MB file was a sixth of a one-shot
/// `palisade run --engine wasm`; its pages are in the page cache, where Wasmtime's own mapping
/// of the same file then finds them). `None` if the file is not on a local filesystem, is
/// shorter than `len`, cannot be mapped, or cannot be read in whole (a disk error): the caller
/// then reads it, which reports such an error instead of faulting.
///
/// Only for our cache files, which are never written or truncated in place (see
/// [`deserialize_file`]).
pub(crate) fn crc_mapped(file: &std::fs::File, len: u64) -> Option<crc32fast::Hasher> {
    use std::os::fd::AsRawFd;
    let mut crc = crc32fast::Hasher::new();
    if !on_local_filesystem(file) || file.metadata().ok()?.len() < len {
        return None;
    }
    let len = usize::try_from(len).ok()?;
    if len == 0 {
        return Some(crc);
    }
    // SAFETY: a new private read-only mapping of `len` bytes of an open file; the kernel picks
    // the address, so no existing mapping is touched.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return None;
    }
    // Read every page in now, and learn of a read error here rather than by SIGBUS below
    // (MADV_POPULATE_READ, Linux 5.14+; older kernels refuse it, and the caller reads instead).
    // SAFETY: `ptr..ptr + len` is the mapping made above.
    let populated = unsafe { libc::madvise(ptr, len, libc::MADV_POPULATE_READ) } == 0;
    if populated {
        // SAFETY: `ptr..ptr + len` was mapped readable above and stays mapped until the
        // `munmap` below, after the last use of `bytes`; nothing writes through it (PROT_READ).
        // Its pages are all present (populated just above, without error) and stay so: the file
        // is at least `len` bytes long (checked above) and is only ever replaced by rename or
        // unlinked, never written or truncated in place, on a local filesystem (checked above),
        // where the mapped inode keeps its contents (see `deserialize_file`).
        let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
        crc.update(bytes);
    }
    // SAFETY: unmaps exactly the mapping made above, no longer borrowed.
    unsafe { libc::munmap(ptr, len) };
    populated.then_some(crc)
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

/// Revokes (`allow == false`) or restores all access to `len` bytes of a run's linear memory at
/// `base`: the deadline's stop ([`crate::watch`]). `false` if the kernel refused.
///
/// Only [`crate::watch`] calls this, with the base and accessible length of the linear memory
/// of a store that lives throughout: the watchdog revokes only while the run's thread is in
/// guest code, and that thread waits for the revocation to finish and restores access before
/// the store can be read or dropped.
pub(crate) fn set_access(base: usize, len: usize, allow: bool) -> bool {
    if len == 0 {
        return true;
    }
    let prot = if allow {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_NONE
    };
    // SAFETY: `base..base + len` is the accessible part of a live instance's linear memory:
    // page-aligned (a pool slot's start; a length in whole 64 KiB wasm pages), mapped by
    // Wasmtime readable and writable, and not unmapped while the store lives, which it does
    // until after access is restored (see above). `mprotect` changes only the protection of
    // pages in that range, never their contents or mapping, so memory outside it, the host's
    // included, is untouched. While access is revoked, nothing on the host side reads or writes
    // the range: host functions and fallible libcalls do not start, or are not in progress
    // (Wasmtime's call hooks; `watch::Watch::hook`), the guest has no bulk-memory instructions
    // (whose libcalls would copy in host code), and the run's thread restores access before it
    // reads the memory after the call. The guest's own loads and stores fault, which Wasmtime's
    // signal handler turns into a trap; and PROT_READ | PROT_WRITE is exactly what Wasmtime gave
    // these pages.
    unsafe { libc::mprotect(base as *mut libc::c_void, len, prot) == 0 }
}
