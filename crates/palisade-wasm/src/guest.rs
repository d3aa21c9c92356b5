//! The guest module: snapshotting it with `wasmtime-wizer`, compiling it once per process, the
//! on-disk cache of compiled snapshots.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use palisade_core::policy::{
    code_generation_denied, shared_memory_denied, wasm_denied, Policy, ATOMICS_METHODS,
    QUICKJS_EXTRAS, WASM_MEMBERS,
};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, InstancePre, Module, OptLevel,
    PoolingAllocationConfig, Store,
};

use crate::error::WasmError;
use crate::run::{self, HostState};
use crate::WasmOptions;

/// The Wasmtime version this crate is built against.
pub(crate) const WASMTIME_VERSION: &str = "48.0.8";

/// The committed guest: QuickJS-NG + `guest/glue.c` for wasm32-wasi.
pub(crate) const GUEST: &[u8] = include_bytes!("../guest/palisade-guest.wasm");

const PREPARE_JS: &str = include_str!("js/prepare.js");

/// Wasmtime's native stack per byte of the JS (shadow) stack budget. QuickJS's check measures
/// the shadow stack; its C frames use more native stack than that. At 4× the shadow check fires
/// first for JS calls, getters, proxies and `toString` recursion. C-only recursion (the parser
/// on deeply nested source, `JSON.stringify` or `JSON.parse` of deeply nested values) uses
/// native stack faster: for it the guest's stack checks also ask the host (`stack_low`, every
/// 128 checks) whether the run has used its share of native stack (this ratio times its budget,
/// at most [`MAX_WASM_STACK`] less [`NATIVE_MARGIN`]), and fail if so. Either way QuickJS throws
/// its catchable `RangeError`, as on the native engine. A native-stack trap remains the backstop
/// (reported as `stack_overflow`, or `not_serializable` while the guest converts the result).
pub(crate) const NATIVE_PER_SHADOW: usize = 4;

/// Native stack kept free below the guest's share for the frames between two probes (128 stack
/// checks, a few hundred bytes of native stack per level of C recursion, a few KiB per JS call)
/// and for throwing the `RangeError`.
pub(crate) const NATIVE_MARGIN: usize = 512 << 10;

/// Wasmtime's native stack for guest code: the largest JS budget times the ratio above.
pub(crate) const MAX_WASM_STACK: usize = crate::DEFAULT_STACK as usize * NATIVE_PER_SHADOW;

/// Instances (and memories, tables, fiber stacks) the pool holds: the most executions that can
/// run at once in one process. A caller beyond them waits for a slot ([`Slots`]).
pub(crate) const POOL_SIZE: u32 = 256;

/// Linear memory kept resident in a pool slot between instances (reset from the image instead
/// of being unmapped): it covers the shadow stack and the snapshot's heap, so a fresh instance
/// takes no page faults there. Which pages are reset is found with Linux's `PAGEMAP_SCAN`
/// ([`engine_config`]); without it Wasmtime resets all of the first `KEEP_RESIDENT` bytes of
/// the accessible memory (the whole 1.8 MB snapshot) after every run, however few pages the run
/// wrote.
const KEEP_RESIDENT: usize = 8 << 20;

/// A compiled snapshot, ready to instantiate.
pub(crate) struct Compiled {
    pub(crate) engine: Engine,
    pub(crate) pre: InstancePre<HostState>,
    /// The snapshot's initial linear memory, in bytes.
    pub(crate) base_memory: u64,
    /// Where the guest's memory meter lives in linear memory.
    pub(crate) meter: u32,
    /// Guest heap bytes in use in the snapshot, before any run.
    pub(crate) heap_base: u64,
    /// The pool's free slots: every execution holds one while its store lives.
    pub(crate) slots: Slots,
}

/// The pool slots not in use. Wasmtime's pool has a fixed number of instances and refuses one
/// more at once with an error; a caller instead waits here for a slot to come free, until its
/// own deadline: the wait is part of its run's wall-clock time, as it is of the caller's (the
/// host's `fetch` deadline and `performance.now` count from the call too). A caller whose
/// deadline passes first gets `timeout` without running. So no caller waits past its timeout,
/// whatever holds the slots (a run blocked in a host call, or a host call that runs another
/// execution on the same engine). Waiters are served in order of arrival: a freed slot goes to
/// the one that has waited longest, so under sustained overload a caller is not passed over
/// (until 2026-12-01 one condition variable woke whichever waiter the OS chose, and one could
/// time out while later ones ran). Each waiter sleeps on its own condition variable and is woken
/// only when it is first in line and a slot is free: no herd of wake-ups per freed slot.
#[derive(Debug)]
pub(crate) struct Slots {
    state: Mutex<SlotState>,
}

#[derive(Debug)]
struct SlotState {
    free: u32,
    /// Waiting callers, oldest first, each with the condition variable it sleeps on.
    queue: std::collections::VecDeque<(u64, Arc<Condvar>)>,
    /// The next waiter's number.
    next: u64,
}

impl SlotState {
    /// Wakes the oldest waiter if a slot is free for it.
    fn wake_first(&self) {
        if self.free > 0 {
            if let Some((_, first)) = self.queue.front() {
                first.notify_one();
            }
        }
    }
}

/// One slot, taken from [`Slots`]; handed back when dropped (after the run's store).
#[derive(Debug)]
pub(crate) struct Permit<'a>(&'a Slots);

impl Slots {
    pub(crate) fn new(n: u32) -> Slots {
        Slots {
            state: Mutex::new(SlotState {
                free: n,
                queue: Default::default(),
                next: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        // Every update is made in single statements: a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot, waiting until `deadline` for one if all are in use or others wait before
    /// this caller; `None` if none came free for it by then.
    pub(crate) fn take(&self, deadline: Instant) -> Option<Permit<'_>> {
        let mut state = self.lock();
        if state.free > 0 && state.queue.is_empty() {
            state.free -= 1;
            return Some(Permit(self));
        }
        let me = state.next;
        state.next += 1;
        let woken = Arc::new(Condvar::new());
        state.queue.push_back((me, woken.clone()));
        loop {
            if state.free > 0 && state.queue.front().is_some_and(|(id, _)| *id == me) {
                state.queue.pop_front();
                state.free -= 1;
                // Two slots may have come free at once: the next in line may take the other.
                state.wake_first();
                return Some(Permit(self));
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                state.queue.retain(|(id, _)| *id != me);
                // Had this caller been first with a slot free, the next one is now.
                state.wake_first();
                return None;
            };
            state = woken
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Hands back `permits` as if each were dropped, all before any waiter can wake (what two
    /// runs ending at once can do).
    #[cfg(test)]
    fn free_together(&self, permits: Vec<Permit<'_>>) {
        let mut state = self.lock();
        for permit in permits {
            std::mem::forget(permit);
            state.free += 1;
            state.wake_first();
        }
    }

    /// Callers waiting for a slot now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().queue.len()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.free += 1;
        state.wake_first();
    }
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("base_memory", &self.base_memory)
            .finish_non_exhaustive()
    }
}

type Slot = OnceLock<Result<Arc<Compiled>, WasmError>>;

/// The process-wide compiled snapshot, without (`fuel == false`) or with fuel metering.
pub(crate) fn compiled(fuel: bool, options: &WasmOptions) -> Result<Arc<Compiled>, WasmError> {
    static PLAIN: Slot = OnceLock::new();
    static FUEL: Slot = OnceLock::new();
    let slot = if fuel { &FUEL } else { &PLAIN };
    slot.get_or_init(|| build(fuel, options).map(Arc::new))
        .clone()
}

/// The texts the guest's `wizer-initialize` evaluates, by field number (see `glue.c`).
#[derive(Debug, Clone)]
pub(crate) struct InitTexts {
    pub(crate) capture: String,
    pub(crate) console: &'static str,
    pub(crate) host: &'static str,
    pub(crate) host_fetch: &'static str,
    pub(crate) prepare: String,
    pub(crate) deterministic: &'static str,
}

impl InitTexts {
    pub(crate) fn new() -> Self {
        InitTexts {
            capture: palisade_core::primordials::capture_js(),
            console: palisade_core::CONSOLE_JS,
            host: palisade_core::HOST_JS,
            host_fetch: palisade_core::HOST_FETCH_JS,
            prepare: prepare_js(),
            deterministic: palisade_core::DETERMINISTIC_JS,
        }
    }

    fn hash(&self, h: &mut impl Hasher) {
        self.capture.hash(h);
        self.console.hash(h);
        self.host.hash(h);
        self.host_fetch.hash(h);
        self.prepare.hash(h);
        self.deterministic.hash(h);
    }
}

/// The policy preparation with its messages (the same as the native engine's).
fn prepare_js() -> String {
    let messages = serde_json::json!({
        "hostGlobals": Policy::HOST_PRELUDE_GLOBALS,
        "extras": QUICKJS_EXTRAS,
        "code": code_generation_denied(),
        "shared": shared_memory_denied(),
        "wasmDenied": wasm_denied(),
        "atomics": ATOMICS_METHODS,
        "wasm": WASM_MEMBERS,
        "defaultRemoved": Policy::default().removed_globals(),
    });
    format!("{}({messages})", PREPARE_JS.trim_end())
}

/// The pool's slot count: [`POOL_SIZE`], unless [`crate::POOL_SLOTS_VAR`] asks for fewer. A
/// process that runs one execution at a time needs one (`palisade run` sets it): making each
/// slot's fiber stack costs a system call. Each slot also reserves 4 GiB of address space, more
/// in all than valgrind can map, so instruction counts of the guest under callgrind or
/// cachegrind need a small pool (see benches/README.md). A value that is not a number from 1 to
/// [`POOL_SIZE`] is an error.
fn pool_slots(var: Option<&str>) -> Result<u32, WasmError> {
    match var {
        // Empty is unset, as for the cache directory's variables.
        None | Some("") => Ok(POOL_SIZE),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=POOL_SIZE).contains(&n) => Ok(n),
            _ => Err(WasmError::Config(format!(
                "{}={v}: expected a number from 1 to {POOL_SIZE}",
                crate::POOL_SLOTS_VAR
            ))),
        },
    }
}

/// The pool's slot count, from the environment (see [`pool_slots`]): read once per process, so
/// the plain and the fuel-counting pools have the same size however late the second starts.
fn slot_count() -> Result<u32, WasmError> {
    static COUNT: OnceLock<Result<u32, WasmError>> = OnceLock::new();
    COUNT
        .get_or_init(|| pool_slots(std::env::var(crate::POOL_SLOTS_VAR).ok().as_deref()))
        .clone()
}

fn engine_config(fuel: bool, slots: u32) -> Result<Config, WasmError> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(slots)
        .total_component_instances(0)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(64 << 10)
        // Reset only the pages present and written since they were mapped (kernel 6.7+; older
        // kernels fall back to resetting the whole kept-resident prefix). A `1+1` run writes
        // about 35 of the snapshot's 448 pages; resetting all of them was ~40% of its time.
        .pagemap_scan(Enabled::Auto);
    let mut cfg = Config::new();
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(false)
        .consume_fuel(fuel)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(MAX_WASM_STACK + (2 << 20))
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true)
        .memory_init_cow(true);
    // For profiling only: `perf` then names the guest's functions (see benches/README.md).
    if std::env::var_os("PALISADE_WASM_PERFMAP").is_some() {
        cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Ok(cfg)
}

fn build(fuel: bool, options: &WasmOptions) -> Result<Compiled, WasmError> {
    let slots = slot_count()?;
    let cfg = engine_config(fuel, slots)?;
    let engine = Engine::new(&cfg).map_err(|e| WasmError::Config(e.to_string()))?;
    let texts = InitTexts::new();
    let key = cache_key(&engine, &texts);
    let dir = if options.no_disk_cache {
        None
    } else {
        cache_dir(options)
    };
    let path = dir.map(|d| d.join(format!("palisade-wasm-{key}.cwasm")));
    let module = match path.as_deref().and_then(|p| load_cached(&engine, p)) {
        Some(m) => m,
        None => {
            let snapshot = snapshot(&texts)?;
            let module = Module::new(&engine, &snapshot)
                .map_err(|e| WasmError::Compile(format!("{e:?}")))?;
            if let Some(p) = &path {
                // The cache is an optimisation: a failure to write it is not an error.
                let _ = store_cached(&module, p);
            }
            module
        }
    };
    let base_memory = module
        .exports()
        .find_map(|e| e.ty().memory().map(|m| m.minimum() * m.page_size()))
        .unwrap_or(0);
    let linker = run::linker(&engine)?;
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| WasmError::Compile(format!("{e:?}")))?;
    let (meter, heap_base) = run::meter_address(&engine, &pre)?;
    Ok(Compiled {
        engine,
        pre,
        base_memory,
        meter,
        heap_base,
        slots: Slots::new(slots),
    })
}

/// Runs the guest's `wizer-initialize` and snapshots the initialised instance.
pub(crate) fn snapshot(texts: &InitTexts) -> Result<Vec<u8>, WasmError> {
    let mut cfg = Config::new();
    // Initialisation runs once: compile it fast rather than well.
    cfg.cranelift_opt_level(OptLevel::None)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(MAX_WASM_STACK + (2 << 20));
    let engine = Engine::new(&cfg).map_err(|e| WasmError::Config(e.to_string()))?;
    let linker = run::linker(&engine)?;
    let mut store = Store::new(&engine, HostState::for_init(texts.clone()));
    let wizer = wasmtime_wizer::Wizer::new();
    let fail = |store: &Store<HostState>, e: String| {
        WasmError::Snapshot(format!("{e}{}", store.data().init_error()))
    };
    let (cx, instrumented) = wizer
        .instrument(GUEST)
        .map_err(|e| WasmError::Snapshot(format!("{e:?}")))?;
    let module =
        Module::new(&engine, &instrumented).map_err(|e| WasmError::Compile(format!("{e:?}")))?;
    let instance = run::block_on(linker.instantiate_async(&mut store, &module))
        .map_err(|e| fail(&store, format!("{e:?}")))?;
    for name in ["_initialize", wizer.get_init_func()] {
        let Ok(f) = instance.get_typed_func::<(), ()>(&mut store, name) else {
            continue;
        };
        run::block_on(f.call_async(&mut store, ())).map_err(|e| fail(&store, format!("{e:?}")))?;
    }
    let mut state = Snapshotting {
        store: &mut store,
        instance,
    };
    run::block_on(wizer.snapshot(&cx, &mut state))
        .map_err(|e| WasmError::Snapshot(format!("{e:?}")))
}

/// Reads an initialised instance's state for `wasmtime-wizer`.
struct Snapshotting<'a> {
    store: &'a mut Store<HostState>,
    instance: wasmtime::Instance,
}

impl wasmtime_wizer::InstanceState for Snapshotting<'_> {
    async fn global_get(
        &mut self,
        name: &str,
        _hint: wasmtime_wizer::ValType,
    ) -> wasmtime_wizer::SnapshotVal {
        use wasmtime_wizer::SnapshotVal;
        let Some(global) = self.instance.get_global(&mut *self.store, name) else {
            return SnapshotVal::I32(0);
        };
        match global.get(&mut *self.store) {
            wasmtime::Val::I32(x) => SnapshotVal::I32(x),
            wasmtime::Val::I64(x) => SnapshotVal::I64(x),
            wasmtime::Val::F32(x) => SnapshotVal::F32(x),
            wasmtime::Val::F64(x) => SnapshotVal::F64(x),
            wasmtime::Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            _ => SnapshotVal::I32(0),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        match self.instance.get_memory(&mut *self.store, name) {
            Some(memory) => contents(memory.data(&*self.store)),
            None => contents(&[]),
        }
    }
}

fn cache_key(engine: &Engine, texts: &InitTexts) -> String {
    let mut parts = [0u64; 2];
    for (i, part) in parts.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        i.hash(&mut h);
        // The guest's bytes, digested at build time (build.rs).
        env!("PALISADE_GUEST_DIGEST").hash(&mut h);
        texts.hash(&mut h);
        WASMTIME_VERSION.hash(&mut h);
        MAX_WASM_STACK.hash(&mut h);
        engine.precompile_compatibility_hash().hash(&mut h);
        *part = h.finish();
    }
    format!("{:016x}{:016x}", parts[0], parts[1])
}

fn cache_dir(options: &WasmOptions) -> Option<PathBuf> {
    if let Some(d) = &options.cache_dir {
        return Some(d.clone());
    }
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("PALISADE_CACHE_DIR")
        .map(|d| d.join("wasm"))
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("palisade").join("wasm")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("palisade").join("wasm")))
}

fn checksum(bytes: &[u8]) -> [u8; 16] {
    let mut crc = crc32fast::Hasher::new();
    crc.update(bytes);
    checksum_of(crc, bytes.len() as u64)
}

/// The 16-byte trailer of a cache file: CRC-32 (hardware-accelerated: two SipHash passes over
/// the 3.5 MB file were a tenth of a warm first run) with the length. The file is ours, so this
/// guards against truncation and corruption, not against a writer who could put any file there.
fn checksum_of(crc: crc32fast::Hasher, len: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&crc.finalize().to_le_bytes());
    out[4..12].copy_from_slice(&len.to_le_bytes());
    out[12..].copy_from_slice(b"pal1");
    out
}

/// A cached module, if the file exists, is intact and loads; a bad file is removed.
///
/// On a local filesystem the file is checked through a read-only mapping of its own
/// (`ffi::crc_mapped`; through a small buffer where that fails) and then mapped by
/// Wasmtime (`ffi::deserialize_file`), not read into memory and copied: reading the 3.5 MB into
/// a fresh buffer and copying it into Wasmtime's own mapping (and its memory image into a memfd)
/// were about half of a one-shot `palisade run --engine wasm` (perf, 2026-12-01). Elsewhere
/// (NFS, SMB, FUSE, ...: another host can replace or remove the file under a mapping, and the
/// pages not yet read then fault) it is read and copied as before (`ffi::deserialize`).
fn load_cached(engine: &Engine, path: &Path) -> Option<Module> {
    let file = std::fs::File::open(path).ok()?;
    let module = if crate::ffi::on_local_filesystem(&file) {
        load_mapped(engine, file, path)
    } else {
        load_copied(engine, file, path)
    };
    if module.is_none() {
        let _ = std::fs::remove_file(path);
    }
    module
}

/// The module in an open cache file, mapped, if the file is intact.
fn load_mapped(engine: &Engine, mut file: std::fs::File, path: &Path) -> Option<Module> {
    if !intact(&mut file) {
        return None;
    }
    crate::ffi::deserialize_file(engine, file, path).ok()
}

/// The module in an open cache file, read into memory and copied, if the file is intact.
fn load_copied(engine: &Engine, mut file: std::fs::File, path: &Path) -> Option<Module> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let body_len = bytes.len().checked_sub(16)?;
    let (body, sum) = bytes.split_at(body_len);
    if checksum(body) != sum {
        return None;
    }
    crate::ffi::deserialize(engine, body, path).ok()
}

/// Whether an open cache file on a local filesystem ends with the checksum of everything before
/// it. The body is checked through a mapping (`ffi::crc_mapped`), or read if it cannot be mapped.
fn intact(file: &mut std::fs::File) -> bool {
    use std::os::unix::fs::FileExt;
    let Some(body_len) = file.metadata().ok().and_then(|m| m.len().checked_sub(16)) else {
        return false;
    };
    let Some(crc) = crate::ffi::crc_mapped(file, body_len).or_else(|| crc_read(file, body_len))
    else {
        return false;
    };
    let mut sum = [0u8; 16];
    file.read_exact_at(&mut sum, body_len).is_ok() && checksum_of(crc, body_len) == sum
}

/// The CRC-32 of the first `body_len` bytes of `file`, read through a small buffer.
fn crc_read(file: &mut std::fs::File, body_len: u64) -> Option<crc32fast::Hasher> {
    use std::io::Read;
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut left = body_len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        match file.read(&mut buf[..want]) {
            Ok(0) | Err(_) => return None,
            Ok(n) => {
                crc.update(&buf[..n]);
                left -= n as u64;
            }
        }
    }
    Some(crc)
}

fn store_cached(module: &Module, path: &Path) -> Result<(), WasmError> {
    let err = |message: String| WasmError::Cache {
        path: path.to_owned(),
        message,
    };
    let mut bytes = module.serialize().map_err(|e| err(e.to_string()))?;
    let sum = checksum(&bytes);
    bytes.extend_from_slice(&sum);
    let dir = path
        .parent()
        .ok_or_else(|| err("no parent directory".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    // A name no other writer has (processes in containers sharing the directory can have the
    // same pid), created new: no two writers ever write one inode, which someone may map once it
    // is renamed into place.
    let tmp = dir.join(format!(
        ".{}.{}.{:016x}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cache"),
        std::process::id(),
        palisade_core::rng::unpredictable_u64()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| err(e.to_string()))?;
    if let Err(e) = std::io::Write::write_all(&mut file, &bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e.to_string()));
    }
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e.to_string())
    })?;
    prune(dir, path, KEEP_CACHED);
    Ok(())
}

/// Compiled snapshots a cache directory keeps: every guest, init text or Wasmtime change makes
/// a new 3.5 MB file under a new name, and without pruning each upgrade left its files behind
/// for good. Six is three versions' plain and fuel-counting compilations, so processes of a few
/// versions sharing a directory do not evict each other's.
const KEEP_CACHED: usize = 6;

/// Removes all but the `keep` most recently written compiled snapshots in `dir` (never `current`),
/// and temporary files a writer left there over an hour ago. Best effort: a file another process
/// has mapped stays valid once unlinked, and one it needs again is compiled again.
fn prune(dir: &Path, current: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let mut cached = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        let path = entry.path();
        if name.starts_with(".palisade-wasm-") && name.ends_with(".tmp") {
            let old = now
                .duration_since(modified)
                .is_ok_and(|age| age > Duration::from_secs(3600));
            if old {
                let _ = std::fs::remove_file(&path);
            }
        } else if name.starts_with("palisade-wasm-") && name.ends_with(".cwasm") && path != current
        {
            cached.push((modified, path));
        }
    }
    // Newest first; `current` is one of the kept.
    cached.sort_by_key(|c| std::cmp::Reverse(c.0));
    for (_, path) in cached.into_iter().skip(keep.saturating_sub(1)) {
        let _ = std::fs::remove_file(path);
    }
}

/// The guest's code, parsed, for the unit tests that read it (`watch`'s too).
#[cfg(test)]
pub(crate) struct GuestCode<'a> {
    /// Imported functions: defined function `i` has index `imported + i`.
    pub(crate) imported: u32,
    pub(crate) bodies: Vec<wasmparser::FunctionBody<'a>>,
    /// Function names by index, from the name section.
    pub(crate) names: std::collections::HashMap<u32, String>,
}

#[cfg(test)]
impl<'a> GuestCode<'a> {
    pub(crate) fn parse(module: &'a [u8]) -> Self {
        use wasmparser::{KnownCustom, Name, Parser, Payload};
        let mut code = GuestCode {
            imported: 0,
            bodies: Vec::new(),
            names: Default::default(),
        };
        for payload in Parser::new(0).parse_all(module) {
            match payload.expect("the guest parses") {
                Payload::ImportSection(imports) => {
                    for import in imports.into_imports() {
                        if matches!(import.expect("an import").ty, wasmparser::TypeRef::Func(_)) {
                            code.imported += 1;
                        }
                    }
                }
                Payload::CodeSectionEntry(body) => code.bodies.push(body),
                Payload::CustomSection(c) => {
                    if let KnownCustom::Name(reader) = c.as_known() {
                        for name in reader {
                            if let Ok(Name::Function(map)) = name {
                                for n in map.into_iter().flatten() {
                                    code.names.insert(n.index, n.name.to_owned());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        code
    }

    /// The name of defined function `i` (the `i`th body), or `#index` without one.
    pub(crate) fn name(&self, i: usize) -> String {
        let index = self.imported + u32::try_from(i).expect("a function index");
        self.names
            .get(&index)
            .cloned()
            .unwrap_or(format!("#{index}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A freed pool slot goes to the caller that has waited longest (before 2026-12-01, to
    /// whichever waiter the OS woke).
    #[test]
    fn issue_3_pool_slots_go_to_waiters_in_order_of_arrival() {
        let slots = Slots::new(1);
        let far = Instant::now() + Duration::from_secs(60);
        let held = slots.take(far).expect("a free slot");
        let order = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for i in 0..4 {
                let (slots, order) = (&slots, &order);
                s.spawn(move || {
                    let permit = slots.take(far).expect("a slot in time");
                    order.lock().unwrap().push(i);
                    std::thread::sleep(Duration::from_millis(5));
                    drop(permit);
                });
                // The next caller comes only once this one waits.
                while slots.waiting() < i + 1 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            drop(held);
        });
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
        assert_eq!(slots.waiting(), 0);
    }

    /// A waiter whose deadline passes leaves the line without holding up those behind it (it
    /// was first in line), and slots freed together reach every waiter, not only the first.
    #[test]
    fn issue_3_a_pool_waiter_that_gives_up_or_two_freed_slots_leave_no_one_stranded() {
        let slots = Slots::new(2);
        let far = Instant::now() + Duration::from_secs(60);
        let (a, b) = (slots.take(far).unwrap(), slots.take(far).unwrap());
        let barrier = std::sync::Barrier::new(3);
        std::thread::scope(|s| {
            let early = s.spawn(|| {
                slots
                    .take(Instant::now() + Duration::from_millis(50))
                    .is_none()
            });
            while slots.waiting() < 1 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let (slots, barrier) = (&slots, &barrier);
            let late: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(move || {
                        let permit = slots.take(Instant::now() + Duration::from_secs(10));
                        // Both hold their slot at once: each got one of the two freed.
                        barrier.wait();
                        permit.is_some()
                    })
                })
                .collect();
            assert!(
                early.join().unwrap(),
                "the first waiter gave up at its deadline"
            );
            while slots.waiting() < 2 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let freed = Instant::now();
            slots.free_together(vec![a, b]);
            barrier.wait();
            // Not by waking at its own deadline: the second of the two is woken in turn.
            assert!(freed.elapsed() < Duration::from_secs(5));
            for t in late {
                assert!(t.join().unwrap());
            }
        });
        assert_eq!(slots.waiting(), 0);
    }

    /// Wasmtime runs a `memory.copy` or `memory.fill` as a call into host code, which would
    /// fault, and crash the host, in memory the deadline revoked (`watch`). So no function of
    /// the guest holds one: memcpy, memmove and memset are mem.c's loops (before 2026-12-02 they
    /// were chunked bulk copies, interrupted between chunks by the epoch).
    #[test]
    fn issue_3_the_guest_has_no_bulk_memory_instructions() {
        use std::collections::{BTreeMap, BTreeSet, HashMap};
        use wasmparser::Operator;
        let code = GuestCode::parse(GUEST);
        assert!(!code.names.is_empty(), "the guest keeps its name section");
        let mem = ["memcpy", "memmove", "memset"];
        // Per function: whether it copies or fills in one instruction, loops, calls a mem one.
        let mut found: BTreeMap<String, (bool, bool, bool)> = BTreeMap::new();
        let index_of: HashMap<&str, u32> =
            code.names.iter().map(|(i, n)| (n.as_str(), *i)).collect();
        let mem_indices: BTreeSet<u32> = mem
            .iter()
            .filter_map(|n| index_of.get(n).copied())
            .collect();
        for (i, body) in code.bodies.iter().enumerate() {
            let name = code.name(i);
            let (mut bulk, mut loops, mut calls_mem) = (false, false, false);
            let mut ops = body.get_operators_reader().expect("a body");
            while !ops.eof() {
                match ops.read().expect("an operator") {
                    Operator::MemoryCopy { .. } | Operator::MemoryFill { .. } => bulk = true,
                    Operator::Loop { .. } => loops = true,
                    Operator::Call { function_index } => {
                        calls_mem |= mem_indices.contains(&function_index)
                    }
                    _ => {}
                }
            }
            if bulk || mem.contains(&name.as_str()) {
                found.insert(name, (bulk, loops, calls_mem));
            }
        }
        let holders: BTreeSet<&str> = found
            .iter()
            .filter(|(_, (bulk, _, _))| *bulk)
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(
            holders.is_empty(),
            "functions with memory.copy/fill: {holders:?}"
        );
        for name in mem {
            // Each is a loop of its own and calls none of the three (nor itself): loop idiom
            // recognition could otherwise make one call memcpy.
            assert_eq!(found[name], (false, true, false), "{name}: {found:?}");
        }
    }

    #[test]
    fn pool_slots_default_to_the_full_pool_and_reject_what_it_cannot_hold() {
        assert_eq!(pool_slots(None).unwrap(), POOL_SIZE);
        assert_eq!(pool_slots(Some("")).unwrap(), POOL_SIZE, "empty is unset");
        assert_eq!(pool_slots(Some("4")).unwrap(), 4);
        assert_eq!(pool_slots(Some("256")).unwrap(), POOL_SIZE);
        for bad in ["0", "257", "-1", "four", " "] {
            assert!(
                matches!(pool_slots(Some(bad)), Err(WasmError::Config(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn cache_key_depends_on_fuel() {
        let texts = InitTexts::new();
        let a = Engine::new(&engine_config(false, POOL_SIZE).unwrap()).unwrap();
        let b = Engine::new(&engine_config(true, POOL_SIZE).unwrap()).unwrap();
        assert_ne!(cache_key(&a, &texts), cache_key(&b, &texts));
        assert_eq!(cache_key(&a, &texts), cache_key(&a, &texts));
    }

    #[test]
    fn checksum_detects_changes() {
        assert_ne!(checksum(b"abc"), checksum(b"abd"));
    }

    /// A directory keeps the newest compiled snapshots (the one just written among them), drops
    /// older ones and stale temporary files, and leaves everything else alone.
    #[test]
    fn pruning_keeps_the_newest_snapshots_and_nothing_else_goes() {
        let dir = std::env::temp_dir().join(format!("palisade-prune-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = std::time::SystemTime::now() - Duration::from_secs(10 * 3600);
        let touch = |name: &str, hours: u64| {
            let path = dir.join(name);
            let f = std::fs::File::create(&path).unwrap();
            f.set_modified(base + Duration::from_secs(hours * 3600))
                .unwrap();
            path
        };
        let names: Vec<String> = (0..8).map(|i| format!("palisade-wasm-{i}.cwasm")).collect();
        for (i, name) in names.iter().enumerate() {
            touch(name, i as u64);
        }
        // The file just written is kept even if its clock reads older than the others.
        let current = touch("palisade-wasm-current.cwasm", 0);
        touch(".palisade-wasm-x.cwasm.1.tmp", 0);
        touch(".palisade-wasm-y.cwasm.2.tmp", 10);
        touch("unrelated.txt", 0);
        prune(&dir, &current, 3);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".palisade-wasm-y.cwasm.2.tmp",
                "palisade-wasm-6.cwasm",
                "palisade-wasm-7.cwasm",
                "palisade-wasm-current.cwasm",
                "unrelated.txt"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A cache file is mapped only once the checksum over the open file matches; a changed or
    /// cut file is refused and removed, so the next run compiles afresh.
    #[test]
    fn a_cache_file_loads_only_while_intact() {
        let engine = Engine::new(&engine_config(false, POOL_SIZE).unwrap()).unwrap();
        let module = Module::new(&engine, b"\0asm\x01\0\0\0").unwrap();
        let dir = std::env::temp_dir().join(format!("palisade-cache-test-{}", std::process::id()));
        let path = dir.join("m.cwasm");
        store_cached(&module, &path).unwrap();
        assert!(
            load_cached(&engine, &path).is_some(),
            "an intact file loads"
        );
        // Both ways of loading, whichever filesystem this is.
        let open = || std::fs::File::open(&path).unwrap();
        assert!(load_mapped(&engine, open(), &path).is_some());
        assert!(load_copied(&engine, open(), &path).is_some());
        let good = std::fs::read(&path).unwrap();
        // The mapped and the buffered checks see the same bytes, at every length.
        assert!(good.len() > 4097, "a file of {} bytes", good.len());
        for len in [0, 1, 4095, 4096, 4097, good.len() as u64] {
            let read = crc_read(&mut open(), len).expect("reads").finalize();
            // Not mapped off a local filesystem (a temporary directory may be on any).
            if let Some(mapped) = crate::ffi::crc_mapped(&open(), len) {
                assert_eq!(mapped.finalize(), read, "{len} bytes");
            }
        }
        // Never past the end of the file, where a mapping would fault.
        assert!(crate::ffi::crc_mapped(&open(), good.len() as u64 + 1).is_none());
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 1;
        let cut = &good[..good.len() - 1];
        for bad in [&flipped[..], cut, &good[..10]] {
            std::fs::write(&path, bad).unwrap();
            assert!(load_mapped(&engine, open(), &path).is_none());
            assert!(load_copied(&engine, open(), &path).is_none());
            assert!(
                load_cached(&engine, &path).is_none(),
                "{} bytes loaded",
                bad.len()
            );
            assert!(!path.exists(), "a bad file is removed");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
