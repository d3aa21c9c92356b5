//! Compile once, run many: the bytecode of recently run guest code, one cache per engine
//! instance (the `quickjs` and `wasm` engines each keep their own: their bytecode differs).
//!
//! A fresh runtime per run is the isolation contract; parsing the same source again for each one
//! is not. The first run of a source compiles it in its own runtime and keeps the bytecode
//! (`JS_WriteObject`); later runs read that bytecode into their fresh runtime instead of parsing
//! (`JS_ReadObject`). Nothing else is shared: the bytecode is an immutable byte string, and each
//! run builds its own function objects from it.
//!
//! The key is the whole of what compilation depends on (mode, file name, source text), compared
//! exactly, so a crafted source can never be served another source's bytecode. Only bytecode
//! the same engine wrote for that key is ever read back. A source that does not compile is not
//! cached (each run reports its own syntax error).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use crate::Mode;

/// Entries kept at most (oldest out first).
const ENTRIES: usize = 256;
/// Bytes of source and bytecode kept at most.
const BYTES: usize = 64 << 20;
/// A source larger than this is compiled every time rather than evicting everything else.
const LARGEST: usize = 4 << 20;
/// The largest entry (source and bytecode) kept; a larger one is not.
pub const LARGEST_ENTRY: usize = 2 * LARGEST;
/// Sources remembered as seen once ([`CodeCache::seen_before`]) at most.
const SIGHTINGS: usize = 4 * ENTRIES;

/// What compiled bytecode depends on: a cache entry's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    module: bool,
    filename: String,
    source: String,
}

impl Key {
    /// The key of `source` compiled as `mode` under `filename`; `None` for a source too large
    /// to keep (it is compiled every time).
    pub fn new(mode: Mode, filename: &str, source: &str) -> Option<Key> {
        (source.len() <= LARGEST).then(|| Key {
            module: mode == Mode::Module,
            filename: filename.to_owned(),
            source: source.to_owned(),
        })
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

/// (module?, file name, bytecode) of one source.
type Compiled = (bool, String, Arc<Vec<u8>>);

#[derive(Debug, Default)]
struct Inner {
    /// By source text first, so that a lookup borrows the request's source instead of copying
    /// it; then by mode and file name (almost always one entry per source).
    map: HashMap<String, Vec<Compiled>>,
    order: VecDeque<Key>,
    bytes: usize,
    hits: u64,
    /// Hashes of sources seen once and not kept, oldest first ([`CodeCache::seen_before`]).
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
    /// Keyed per cache: nobody outside can aim a source at another's hash (a collision would
    /// only keep a source one run early anyway).
    hasher: RandomState,
}

impl CodeCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The bytecode of `source` compiled as `mode` under `filename`, if kept. Copies nothing
    /// of the source.
    pub fn get(&self, mode: Mode, filename: &str, source: &str) -> Option<Arc<Vec<u8>>> {
        if source.len() > LARGEST {
            return None;
        }
        let module = mode == Mode::Module;
        let mut inner = self.lock();
        let found = inner
            .map
            .get(source)?
            .iter()
            .find(|(m, f, _)| *m == module && f == filename)
            .map(|(_, _, code)| code.clone());
        if found.is_some() {
            inner.hits += 1;
        }
        found
    }

    /// Keeps `bytecode` under `key`, evicting the oldest entries past the bounds. An entry
    /// already kept under the key is left as it is.
    /// Whether `source` (as `mode` under `filename`) was seen here before without being kept,
    /// recording this sighting. For an engine that keeps bytecode only from a source's second
    /// run on: a one-off source then costs nothing more than it did without the cache.
    pub fn seen_before(&self, mode: Mode, filename: &str, source: &str) -> bool {
        if source.len() > LARGEST {
            return false;
        }
        let mut inner = self.lock();
        let hash = inner
            .hasher
            .hash_one((mode == Mode::Module, filename, source));
        if inner.seen.remove(&hash) {
            return true;
        }
        if inner.seen_order.len() >= SIGHTINGS {
            if let Some(old) = inner.seen_order.pop_front() {
                inner.seen.remove(&old);
            }
        }
        inner.seen.insert(hash);
        inner.seen_order.push_back(hash);
        false
    }

    pub fn put(&self, key: Key, bytecode: Vec<u8>) {
        let size = key.size() + bytecode.len();
        if size > LARGEST_ENTRY {
            return;
        }
        let mut inner = self.lock();
        if inner.map.get(&key.source).is_some_and(|v| {
            v.iter()
                .any(|(m, f, _)| *m == key.module && *f == key.filename)
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
                .position(|(m, f, _)| *m == old.module && *f == old.filename)
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
            key.module,
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

    #[test]
    fn keys_compare_whole_sources_and_eviction_is_bounded() {
        let cache = CodeCache::default();
        let k = |s: &str| Key::new(Mode::Script, "a.js", s).unwrap();
        cache.put(k("1"), vec![1]);
        assert_eq!(
            cache.get(Mode::Script, "a.js", "1").as_deref(),
            Some(&vec![1])
        );
        assert!(cache.get(Mode::Script, "a.js", "2").is_none());
        assert!(cache.get(Mode::Module, "a.js", "1").is_none());
        assert!(cache.get(Mode::Script, "b.js", "1").is_none());
        for i in 0..ENTRIES + 10 {
            cache.put(k(&i.to_string()), vec![0; 8]);
        }
        assert_eq!(cache.stats().0, ENTRIES);
        assert!(Key::new(Mode::Script, "a.js", &"x".repeat(LARGEST + 1)).is_none());
    }

    #[test]
    fn a_source_is_seen_before_on_its_second_sighting_only() {
        let cache = CodeCache::default();
        let seen = |s: &str| cache.seen_before(Mode::Script, "a.js", s);
        assert!(!seen("1"));
        assert!(!cache.seen_before(Mode::Module, "a.js", "1"));
        assert!(!cache.seen_before(Mode::Script, "b.js", "1"));
        assert!(seen("1"));
        // Forgotten once answered: the caller keeps the bytecode then.
        assert!(!seen("1"));
        // Bounded: the oldest sightings go first.
        for i in 0..SIGHTINGS {
            seen(&format!("x{i}"));
        }
        assert!(!seen("1"));
        assert!(seen(&format!("x{}", SIGHTINGS - 1)));
        assert!(!seen(&"x".repeat(LARGEST + 1)));
        assert!(!seen(&"x".repeat(LARGEST + 1)));
    }
}
