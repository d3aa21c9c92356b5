//! Digests the committed guest once, at build time, for the on-disk compile cache's key
//! (`guest::cache_key`): hashing its 1.1 MB at run time was a tenth of a warm first run.

use std::hash::{Hash, Hasher};

fn main() {
    let path = "guest/palisade-guest.wasm";
    println!("cargo:rerun-if-changed={path}");
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    // SipHash with fixed keys: the same digest on every build of the same bytes.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    println!("cargo:rustc-env=PALISADE_GUEST_DIGEST={:016x}", h.finish());
}
