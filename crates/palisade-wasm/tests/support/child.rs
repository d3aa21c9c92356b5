//! Runs one test of the current test binary again in a child process, with a pool size of its
//! own: the pool's size is read once per process (`PALISADE_WASM_POOL_SLOTS`), so a test that
//! needs a small pool cannot share the test process. Included by path from `tests/` and from
//! the crate's unit tests, which cannot share a module any other way.

/// In the parent: runs the test `name` (its full path in the binary) in a child with `slots`
/// pool slots, asserts it passed, and returns `true`: the caller returns at once. In the child
/// (where `marker` is set): returns `false`, and the caller runs the test itself.
pub fn rerun_with_pool_slots(name: &str, marker: &str, slots: u32) -> bool {
    if std::env::var_os(marker).is_some() {
        return false;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(marker, "1")
        .env("PALISADE_WASM_POOL_SLOTS", slots.to_string())
        .output()
        .expect("the child test process runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed: {text}");
    assert!(text.contains("1 passed"), "the child ran no test: {text}");
    true
}
