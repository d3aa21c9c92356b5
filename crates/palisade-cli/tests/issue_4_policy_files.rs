//! Issue 4, bad input: a policy file with an invalid URL pattern or an unknown key is rejected
//! with the offending line, in TOML and in JSON, as a one-line usage error (exit 2).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("palisade starts")
}

fn policy_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-issue-4-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the policy file");
    path
}

/// Runs `1` under the policy file and returns the one-line error it must fail with.
fn rejected(path: &Path) -> String {
    let out = palisade(&["run", "-e", "1", "--policy", path.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn issue_4_bad_url_pattern_in_a_toml_policy_names_its_line() {
    let path = policy_file(
        "bad-pattern.toml",
        "allow_eval = false\n\n[fetch]\nallow = [\n  \"https://api.example.com/\",\n  \"https://*.example.com/\",\n]\n",
    );
    let err = rejected(&path);
    assert!(err.contains("line 6"), "{err}");
    assert!(err.contains("*.example.com"), "{err}");
}

#[test]
fn issue_4_bad_url_pattern_in_a_json_policy_names_its_line() {
    let path = policy_file(
        "bad-pattern.json",
        "{\n  \"fetch\": {\n    \"allow\": [\"https://user:pw@api.example.com/\"]\n  }\n}\n",
    );
    let err = rejected(&path);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("api.example.com"), "{err}");
}

#[test]
fn issue_4_unknown_key_in_a_json_policy_names_its_line() {
    let path = policy_file(
        "unknown.json",
        "{\n  \"allow_eval\": true,\n  \"allow_everything\": true\n}\n",
    );
    let err = rejected(&path);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("allow_everything"), "{err}");
}

#[test]
fn issue_4_performance_global_from_a_policy_file() {
    let path = policy_file(
        "performance.toml",
        "globals = [\"console\", \"input\", \"performance\"]\n\n[deterministic]\nclock = \"virtual\"\n",
    );
    let out = palisade(&[
        "run",
        "-e",
        "[performance.now(), performance.now(), typeof crypto]",
        "--policy",
        path.to_str().expect("utf-8"),
        "--json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
    assert_eq!(v["value"], serde_json::json!([0, 1, "undefined"]), "{text}");
}
