//! Compile once, run many: the bytecode of recently run guest code, one cache per engine
//! instance (the `quickjs` and `wasm` engines each keep their own: their bytecode differs).
//!
//! A fresh runtime per run is the isolation contract; parsing the same source again for each one
//! is not. A run compiles its source in its own runtime and may keep the bytecode
//! (`JS_WriteObject`); later runs read that bytecode into their fresh runtime instead of parsing
//! (`JS_ReadObject`). Nothing else is shared: the bytecode is an immutable byte string, and each
//! run builds its own function objects from it.
//!
//! The key ([`Key`]) is the whole of what compiling depends on, compared exactly: mode, file
//! name and source text, so a crafted source can never be served another source's bytecode,
//! and the stack and memory limits, because compiling costs stack (the parser recurses) and
//! memory that reading bytecode does not: a run whose limits the compilation fitted in reads
//! bytecode kept under the same limits, and so ends as it would have compiling. Only bytecode
//! the same engine wrote for that key is ever read back. A source that does not compile is not
//! cached (each run reports its own syntax error), and neither is a module whose run supplies a
//! module under its own name: reading a module resolves its imports while the module is only
//! half read, and an import cycle back into it then fails where compiling succeeds.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use crate::modules::normalize_key;
use crate::{Mode, Request};

/// Entries kept at most (oldest out first).
const ENTRIES: usize = 256;
/// Bytes of source and bytecode kept at most.
const BYTES: usize = 64 << 20;
/// A source larger than this is compiled every time rather than evicting everything else.
const LARGEST: usize = 4 << 20;
/// The largest entry (file name, source and bytecode) kept; a larger one is not.
pub const LARGEST_ENTRY: usize = 2 * LARGEST;
/// Sources remembered as seen once ([`Inner::seen_before`]) at most.
const SIGHTINGS: usize = 4 * ENTRIES;

/// What, besides the file name and source, a compilation depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Variant {
    module: bool,
    stack: Option<u64>,
    memory: u64,
}

impl Variant {
    fn of(req: &Request) -> Variant {
        Variant {
            module: req.mode == Mode::Module,
            stack: req.limits.stack,
            memory: req.limits.memory,
        }
    }
}

/// Whether `req`'s code may be read from, or kept as, bytecode at all.
fn cacheable(req: &Request) -> bool {
    if req.source.len() > LARGEST {
        return false;
    }
    // QuickJS resolves a module's imports while it is still reading the module's bytecode, so
    // an import cycle back into it (a module importing itself, which is valid) fails from
    // bytecode where compiling succeeds. Imports resolve only to supplied modules, so a cycle
    // can reach the run's own module only when the run supplies a module under its name.
    if req.mode == Mode::Module && !req.modules.is_empty() {
        let own = normalize_key(req.file_name());
        if req.modules.keys().any(|k| normalize_key(k) == own) {
            return false;
        }
    }
    true
}

/// What a run does with its code ([`CodeCache::lookup`]).
#[derive(Debug)]
pub enum Lookup {
    /// Read this bytecode, kept for the run's key.
    Read(Arc<Vec<u8>>),
    /// Compile, and keep the bytecode under this key ([`CodeCache::put`]): the source's
    /// second run.
    Keep(Key),
    /// Compile, and keep nothing.
    Compile,
}

/// What compiled bytecode depends on: a cache entry's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    variant: Variant,
    filename: String,
    source: String,
}

impl Key {
    /// The key of `req`'s code, which must be [`cacheable`].
    fn of(req: &Request) -> Key {
        Key {
            variant: Variant::of(req),
            filename: req.file_name().to_owned(),
            source: req.source.clone(),
        }
    }

    fn size(&self) -> usize {
        self.filename.len() + self.source.len()
    }
}

/// The cache. Cheap to share between threads: lookups copy an `Arc`.
#[derive(Debug, Default)]
pub struct CodeCache {
    inner: Mutex<Inner>,
}

/// (variant, file name, bytecode) of one source.
type Compiled = (Variant, String, Arc<Vec<u8>>);

#[derive(Debug, Default)]
struct Inner {
    /// By source text first, so that a lookup borrows the request's source instead of copying
    /// it; then by variant and file name (almost always one entry per source).
    map: HashMap<String, Vec<Compiled>>,
    order: VecDeque<Key>,
    bytes: usize,
    hits: u64,
    /// Requests seen once and not kept ([`Inner::seen_before`]): hash -> sequence number
    /// of the sighting, and the sightings oldest first (an entry whose number no longer matches
    /// the map's is stale, left by a second sighting or a newer first one).
    seen: HashMap<u64, u64>,
    seen_order: VecDeque<(u64, u64)>,
    sightings: u64,
    /// Keyed per cache: nobody outside can aim a source at another's hash (a collision would
    /// only keep a source one run early anyway).
    hasher: RandomState,
}

impl Inner {
    /// The bytecode kept for `req`'s key, if any.
    fn find(&self, req: &Request) -> Option<Arc<Vec<u8>>> {
        let (variant, filename) = (Variant::of(req), req.file_name());
        self.map
            .get(&req.source)?
            .iter()
            .find(|(v, f, _)| *v == variant && f == filename)
            .map(|(_, _, code)| code.clone())
    }

    /// Whether `req`'s key was seen before without being kept, recording this sighting (and
    /// forgetting it when answering yes: the caller keeps the bytecode then).
    fn seen_before(&mut self, req: &Request) -> bool {
        let hash = self
            .hasher
            .hash_one((Variant::of(req), req.file_name(), &req.source));
        if self.seen.remove(&hash).is_some() {
            return true;
        }
        while self.seen_order.len() >= SIGHTINGS {
            let Some((old, n)) = self.seen_order.pop_front() else {
                break;
            };
            if self.seen.get(&old) == Some(&n) {
                self.seen.remove(&old);
            }
        }
        self.sightings += 1;
        let n = self.sightings;
        self.seen.insert(hash, n);
        self.seen_order.push_back((hash, n));
        false
    }
}

impl CodeCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What a run of `req` does with its code: read the bytecode kept for its key; compile
    /// and keep the bytecode, on the key's second sighting (a one-off source then costs nothing
    /// more than it did without the cache); or just compile. Never cached: a source too large
    /// (compiled every time), a module whose run supplies a module under its own name. Copies
    /// the source only for [`Lookup::Keep`].
    pub fn lookup(&self, req: &Request) -> Lookup {
        if !cacheable(req) {
            return Lookup::Compile;
        }
        let mut inner = self.lock();
        if let Some(code) = inner.find(req) {
            inner.hits += 1;
            return Lookup::Read(code);
        }
        if inner.seen_before(req) {
            Lookup::Keep(Key::of(req))
        } else {
            Lookup::Compile
        }
    }

    /// Keeps `bytecode` under `key`, evicting the oldest entries past the bounds. An entry
    /// already kept under the key is left as it is.
    pub fn put(&self, key: Key, bytecode: Vec<u8>) {
        let size = key.size() + bytecode.len();
        if size > LARGEST_ENTRY {
            return;
        }
        let mut inner = self.lock();
        if inner.map.get(&key.source).is_some_and(|v| {
            v.iter()
                .any(|(m, f, _)| *m == key.variant && *f == key.filename)
        }) {
            return;
        }
        while inner.order.len() >= ENTRIES || inner.bytes + size > BYTES {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            let Some(entries) = inner.map.get_mut(&old.source) else {
                continue;
            };
            if let Some(i) = entries
                .iter()
                .position(|(m, f, _)| *m == old.variant && *f == old.filename)
            {
                let (_, _, code) = entries.swap_remove(i);
                inner.bytes -= old.size() + code.len();
            }
            if inner.map.get(&old.source).is_some_and(Vec::is_empty) {
                inner.map.remove(&old.source);
            }
        }
        inner.bytes += size;
        inner.order.push_back(key.clone());
        inner.map.entry(key.source).or_default().push((
            key.variant,
            key.filename,
            Arc::new(bytecode),
        ));
    }

    /// (entries kept, lookups that found bytecode): for tests and metrics.
    pub fn stats(&self) -> (usize, u64) {
        let inner = self.lock();
        (inner.order.len(), inner.hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    fn script(s: &str) -> Request {
        Request::script(s).with_filename("a.js")
    }

    /// The bytecode a run of `req` would read, if any.
    fn read(cache: &CodeCache, req: &Request) -> Option<Arc<Vec<u8>>> {
        match cache.lookup(req) {
            Lookup::Read(code) => Some(code),
            _ => None,
        }
    }

    /// Whether a run of `req` would keep its bytecode: the key's second sighting.
    fn keeps(cache: &CodeCache, req: &Request) -> bool {
        matches!(cache.lookup(req), Lookup::Keep(_))
    }

    #[test]
    fn keys_compare_whole_sources_and_eviction_is_bounded() {
        let cache = CodeCache::default();
        let k = |s: &str| Key::of(&script(s));
        cache.put(k("1"), vec![1]);
        assert_eq!(read(&cache, &script("1")).as_deref(), Some(&vec![1]));
        assert!(read(&cache, &script("2")).is_none());
        assert!(read(&cache, &Request::module("1").with_filename("a.js")).is_none());
        assert!(read(&cache, &Request::script("1").with_filename("b.js")).is_none());
        // Compiling costs stack and memory: other limits, another entry.
        let stack = script("1").with_limits(Limits {
            stack: Some(64 << 10),
            ..Limits::default()
        });
        assert!(read(&cache, &stack).is_none());
        let memory = script("1").with_limits(Limits {
            memory: 1 << 20,
            ..Limits::default()
        });
        assert!(read(&cache, &memory).is_none());
        for i in 0..ENTRIES + 10 {
            cache.put(k(&i.to_string()), vec![0; 8]);
        }
        assert_eq!(cache.stats().0, ENTRIES);
        assert!(!cacheable(&script(&"x".repeat(LARGEST + 1))));
    }

    #[test]
    fn a_module_its_run_supplies_under_its_own_name_is_never_cached() {
        let own = Request::module("export default 1;")
            .with_filename("main.js")
            .with_module("./main.js", "export default 2;");
        assert!(!cacheable(&own));
        let cache = CodeCache::default();
        assert!(!keeps(&cache, &own) && !keeps(&cache, &own));
        let other = Request::module("export default 1;")
            .with_filename("main.js")
            .with_module("./k.js", "export default 2;");
        assert!(cacheable(&other));
    }

    #[test]
    fn a_source_is_seen_before_on_its_second_sighting_only() {
        let cache = CodeCache::default();
        let seen = |s: &str| keeps(&cache, &script(s));
        assert!(!seen("1"));
        assert!(!keeps(&cache, &Request::module("1").with_filename("a.js")));
        assert!(!keeps(&cache, &Request::script("1").with_filename("b.js")));
        assert!(seen("1"));
        // Forgotten once answered: the caller keeps the bytecode then.
        assert!(!seen("1"));
        // Bounded: the oldest sightings go first, and a stale one never evicts a newer
        // sighting of the same source.
        for i in 0..SIGHTINGS - 1 {
            seen(&format!("x{i}"));
        }
        assert!(seen("1"), "within the bound");
        assert!(!seen("1"));
        for i in SIGHTINGS..2 * SIGHTINGS {
            seen(&format!("x{i}"));
        }
        assert!(!seen("1"), "past the bound");
        assert!(seen(&format!("x{}", 2 * SIGHTINGS - 1)));
        assert!(!seen(&"x".repeat(LARGEST + 1)));
        assert!(!seen(&"x".repeat(LARGEST + 1)));
    }
}
