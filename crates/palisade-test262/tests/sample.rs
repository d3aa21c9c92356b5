//! Runs the shared test262 sample through the runner binary and requires it to match the
//! checked-in known-failure lists exactly: a regression or a newly passing test fails here
//! until the list is updated (`cargo run --release -p palisade-test262 -- --update-known-failures`).

use std::process::Command;

#[test]
fn test262_sample_matches_known_failures() {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade-test262"))
        .output()
        .expect("the runner starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "test262 differs from the known-failure lists (exit {:?}); see the output above",
        out.status.code()
    );
}
