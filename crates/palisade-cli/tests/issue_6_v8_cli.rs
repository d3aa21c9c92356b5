//! Issue 6 through the CLI: without the library, `engines` says why `v8` is unavailable and the
//! one command that installs it, and `--engine v8` is `engine_unavailable` (exit 3), never a
//! crash; fuel on v8 is a configuration error (exit 2). The first two hold whether or not the
//! library is installed here: `PALISADE_V8_LIB` pointing nowhere makes it missing.

use std::process::{Command, Output};

const NOWHERE: &str = "/nonexistent/palisade-test/libmini_racer.so";

fn palisade(args: &[&str], lib: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.args(args);
    if let Some(lib) = lib {
        cmd.env("PALISADE_V8_LIB", lib);
    }
    cmd.output().expect("palisade starts")
}

fn json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}"))
}

#[test]
fn issue_6_engines_says_why_v8_is_missing_and_how_to_install_it() {
    let out = palisade(&["engines"], Some(NOWHERE));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let v8: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("v8"))
        .take(2)
        .collect();
    let v8 = v8.join("\n");
    assert!(v8.contains("unavailable"), "{text}");
    assert!(v8.contains(NOWHERE), "{text}");
    assert!(v8.contains("scripts/fetch-v8"), "{text}");
}

#[test]
fn issue_6_engine_v8_without_the_library_is_engine_unavailable() {
    let out = palisade(
        &["run", "--engine", "v8", "-e", "1", "--json"],
        Some(NOWHERE),
    );
    assert_eq!(out.status.code(), Some(3));
    let v = json(&out);
    assert_eq!(v["error"]["kind"], "engine_unavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("scripts/fetch-v8")),
        "{v}"
    );
    // Without --json: one line on stderr, same exit status.
    let out = palisade(&["run", "--engine", "v8", "-e", "1"], Some(NOWHERE));
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("engine_unavailable"));
}

#[test]
fn issue_6_fuel_on_v8_is_a_configuration_error() {
    // Where the library is installed (CI fetches it): refused before any worker runs code.
    let out = palisade(
        &[
            "run", "--engine", "v8", "--fuel", "1000", "-e", "1", "--json",
        ],
        None,
    );
    let v = json(&out);
    if v["error"]["kind"] == "engine_unavailable" {
        // No library on this machine: unavailability is reported first (exit 3).
        assert_eq!(out.status.code(), Some(3), "{v}");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{v}");
    assert_eq!(v["error"]["kind"], "invalid_request", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("fuel")),
        "{v}"
    );
}
