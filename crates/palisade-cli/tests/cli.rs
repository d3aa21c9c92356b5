//! The `palisade` binary against the contract: flags, the `--json` shape, exit statuses.

use std::process::{Command, Output};

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("palisade starts")
}

fn json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "exactly one JSON line: {text}");
    serde_json::from_str(&text).expect("stdout is one JSON object")
}

#[test]
fn ok_run_prints_the_contract_shape() {
    let out = palisade(&[
        "run",
        "-e",
        "console.log('hi'); input.a + 1",
        "--input",
        r#"{"a": 2}"#,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["value"], 3);
    assert_eq!(v["error"], serde_json::Value::Null);
    assert_eq!(v["stdout"], "hi\n");
    assert_eq!(v["stderr"], "");
    assert_eq!(v["truncated"], false);
    assert_eq!(v["metrics"]["engine"], "quickjs");
    assert!(v["metrics"]["wall_us"].is_u64());
    assert!(v["metrics"]["memory_bytes"].as_u64().is_some_and(|m| m > 0));
    assert_eq!(v["metrics"]["fuel_used"], serde_json::Value::Null);
    let keys: Vec<_> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "error",
            "metrics",
            "status",
            "stderr",
            "stdout",
            "truncated",
            "value"
        ]
    );
}

#[test]
fn failed_script_exits_1_with_a_typed_error() {
    let out = palisade(&["run", "-e", "\n\n  null.x", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"]["kind"], "exception");
    assert_eq!(v["error"]["name"], "TypeError");
    assert_eq!(v["error"]["line"], 3);
    let out = palisade(&["run", "-e", "for(;;){}", "--timeout", "100ms", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "timeout");
    let out = palisade(&[
        "run",
        "-e",
        "let a=[]; for(;;) a.push(new Array(1000).fill(1))",
        "--memory",
        "8MiB",
        "--json",
    ]);
    assert_eq!(json(&out)["error"]["kind"], "memory_limit");
}

#[test]
fn human_output_prints_value_and_guest_streams() {
    let out = palisade(&["run", "-e", "console.error('warned'); ({a: [1]})"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\n  \"a\": [\n    1\n  ]\n}\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "warned\n");
    let out = palisade(&["run", "-e", "throw new RangeError('nope')"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("error[exception]: uncaught RangeError: nope"));
}

/// Code given with `-e` may start with `-`: until 2026-12-02 `-e -0` was a usage error
/// ("unexpected argument '-0'").
#[test]
fn eval_code_may_start_with_a_dash() {
    for (code, value) in [
        ("-0", serde_json::json!(0)),
        ("-1 - 1", serde_json::json!(-2)),
    ] {
        let out = palisade(&["run", "--json", "-e", code]);
        assert_eq!(out.status.code(), Some(0), "{code}: {out:?}");
        assert_eq!(json(&out)["value"], value, "{code}");
    }
}

/// Found by a sweep (2026-12-02): `--input -1` was a usage error (clap took `-1` for a flag),
/// and `--timeout 1h` or `1.5s` an unknown unit, though the timeout's range reads `1ms..=1h`.
#[test]
fn a_negative_input_and_hours_or_fractions_of_a_timeout_are_read() {
    let out = palisade(&[
        "run",
        "--json",
        "--input",
        "-1.5",
        "--timeout",
        "1h",
        "-e",
        "input * 2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json(&out)["value"], serde_json::json!(-3));
    let out = palisade(&["run", "--json", "--timeout", "0.2s", "-e", "for (;;) {}"]);
    let record = json(&out);
    assert_eq!(record["error"]["kind"], "timeout", "{record}");
    assert!(
        record["error"]["message"]
            .as_str()
            .unwrap()
            .contains("200 ms"),
        "{record}"
    );
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    for args in [
        &["run", "-e", "1", "--bogus"][..],
        &["run", "-e", "1", "--memory", "lots"],
        &["run", "-e", "1", "--timeout", "2 fortnights"],
        &["run", "-e", "1", "--input", "{not json"],
        &["run", "/nonexistent/file.js"],
        &["run", "-e", "1", "--engine", "spidermonkey"],
    ] {
        let out = palisade(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("palisade: "), "{err}");
    }
}

#[test]
fn unenforceable_limit_is_a_usage_error() {
    let out = palisade(&["run", "-e", "1", "--fuel", "1000", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out)["error"]["kind"], "invalid_request");
    // The outcome still names the engine the command line chose.
    assert_eq!(json(&out)["metrics"]["engine"], "quickjs");
}

#[test]
fn unavailable_engine_exits_3() {
    for engine in ["wasm", "v8"] {
        let listed = palisade(&["engines", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json list");
        let available = list
            .as_array()
            .and_then(|a| a.iter().find(|e| e["name"] == engine))
            .map(|e| e["available"] == true)
            .expect("engine listed");
        if available {
            continue;
        }
        let out = palisade(&["run", "-e", "1", "--engine", engine, "--json"]);
        assert_eq!(out.status.code(), Some(3), "{engine}");
        assert_eq!(json(&out)["error"]["kind"], "engine_unavailable");
    }
}

#[test]
fn module_files_and_stdin() {
    let dir = std::env::temp_dir().join(format!("palisade-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("double.mjs");
    std::fs::write(&file, "export default (input) => input * 2;").expect("write");
    let out = palisade(&[
        "run",
        file.to_str().expect("utf-8 path"),
        "--input",
        "21",
        "--json",
    ]);
    assert_eq!(json(&out)["value"], 42);
    let _ = std::fs::remove_dir_all(&dir);

    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["run", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"6 * 7")
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(json(&out)["value"], 42);
}

#[test]
fn engines_lists_all_three() {
    let out = palisade(&["engines"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["quickjs", "wasm", "v8"] {
        assert!(text.contains(name), "{text}");
    }
    assert!(text.contains("available"));
}

#[test]
fn issue_4_policy_file_and_flags() {
    let dir = std::env::temp_dir().join(format!("palisade-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "allow_eval = true\nallow_evil = true\n").expect("write");
    let out = palisade(&["run", "-e", "1", "--policy", bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("allow_evil"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let good = dir.join("good.json");
    std::fs::write(&good, r#"{"allow_eval": true, "globals": ["console"]}"#).expect("write");
    let out = palisade(&[
        "run",
        "-e",
        "[eval('2'), typeof input]",
        "--policy",
        good.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(json(&out)["value"], serde_json::json!([2, "undefined"]));
    let _ = std::fs::remove_dir_all(&dir);

    let out = palisade(&["run", "-e", "eval('1')", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "policy_denied");
    let out = palisade(&["run", "-e", "eval('1')", "--allow-eval", "--json"]);
    assert_eq!(json(&out)["value"], 1);
}

#[test]
fn issue_4_secrets_store_audit_log_and_fetch_flags() {
    let dir = std::env::temp_dir().join(format!("palisade-cli-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let store = dir.join("secrets.json");
    let audit = dir.join("audit.jsonl");
    let keygen = palisade(&["secrets", "keygen"]);
    assert_eq!(keygen.status.code(), Some(0));
    let key = String::from_utf8_lossy(&keygen.stdout).trim().to_owned();
    assert_eq!(key.len(), 44, "32 bytes in base64: {key}");

    let set = |value: &str, key: Option<&str>| {
        use std::io::Write;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
        cmd.args(["secrets", "set", "--store"])
            .arg(&store)
            .args(["--tenant", "acme", "API_TOKEN"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .env_remove("PALISADE_MASTER_KEY");
        if let Some(k) = key {
            cmd.env("PALISADE_MASTER_KEY", k);
        }
        let mut child = cmd.spawn().expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(value.as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    let no_key = set("tok-123456789\n", None);
    assert_eq!(no_key.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("PALISADE_MASTER_KEY"));
    assert_eq!(
        set("abc", Some(&key)).status.code(),
        Some(2),
        "too short to redact"
    );
    assert_eq!(set("tok-123456789\n", Some(&key)).status.code(), Some(0));
    assert!(!std::fs::read_to_string(&store)
        .expect("store")
        .contains("tok-123456789"));

    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "run",
            "-e",
            "console.log(secrets.get('API_TOKEN')); secrets.get('API_TOKEN').length",
        ])
        .args([
            "--allow-secret",
            "API_TOKEN",
            "--tenant",
            "acme",
            "--json",
            "--secrets",
        ])
        .arg(&store)
        .arg("--audit-log")
        .arg(&audit)
        .env("PALISADE_MASTER_KEY", &key)
        .output()
        .expect("run");
    let v = json(&out);
    assert_eq!(v["value"], 13);
    assert_eq!(v["stdout"], "[REDACTED]\n");
    let log = std::fs::read_to_string(&audit).expect("audit log");
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log
        .lines()
        .all(|l| l.contains("\"result\":\"granted\"") && l.contains("\"tenant\":\"acme\"")));
    assert!(!log.contains("tok-123456789"));

    // --secrets needs an audit log; bad fetch patterns are usage errors.
    let out = palisade(&["run", "-e", "1", "--secrets", "x.json"]);
    assert_eq!(out.status.code(), Some(2));
    let out = palisade(&["run", "-e", "1", "--allow-fetch", "https://*.example.com/"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("wildcards are not supported"), "{err}");
    let out = palisade(&[
        "run",
        "-e",
        "typeof fetch",
        "--allow-fetch",
        "https://api.example.com/v1/",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"function\"");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn issue_3_wasm_engine_runs_and_meters_fuel() {
    let out = palisade(&["run", "--engine", "wasm", "-e", "1+1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["value"], 2);
    assert_eq!(v["metrics"]["engine"], "wasm");
    assert_eq!(v["metrics"]["fuel_used"], serde_json::Value::Null);

    let out = palisade(&[
        "run",
        "--engine",
        "wasm",
        "--fuel",
        "1000",
        "-e",
        "for(;;){}",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = json(&out);
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"]["kind"], "fuel_exhausted");
    assert_eq!(v["metrics"]["engine"], "wasm");
    assert!(
        v["metrics"]["fuel_used"].as_u64().is_some_and(|f| f > 0),
        "{v}"
    );
}

/// Native builtin calls that each take milliseconds without a poll: the native quickjs engine
/// sees its deadline only after 10,000 of its polls (tens of seconds here), so before 2026-11-30
/// `palisade run` ran on that long. The CLI's watchdog ends the process with the `timeout`
/// outcome 2 s after the deadline; the other engines stop it at the deadline themselves. (Until
/// 2026-12-02 the case was one `new Array(2 ** 32 - 1).join('')`, which now polls at every
/// index and stops at the deadline.)
#[test]
fn regression_a_native_builtin_past_the_deadline_ends_as_timeout() {
    let start = std::time::Instant::now();
    let out = palisade(&[
        "run",
        "--json",
        "--timeout",
        "500ms",
        "-e",
        "const a = new Array(2e6).fill(0); for (;;) a.indexOf(1)",
    ]);
    let elapsed = start.elapsed();
    let v = json(&out);
    assert_eq!(v["error"]["kind"], "timeout", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the process was ended")),
        "{v}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        elapsed < std::time::Duration::from_secs(30),
        "took {elapsed:?}"
    );
}

/// Found by a service review (2026-11-30): `--input` used serde_json's own limit of 128 levels,
/// while the contract converts values nested up to 1,000.
#[test]
fn issue_2_regression_input_nested_as_deep_as_the_contract_allows() {
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let src = "let d = 0, v = input; while (Array.isArray(v)) { v = v[0]; d++ } d";
    let out = palisade(&["run", "--json", "-e", src, "--input", &deep(1000)]);
    assert_eq!(json(&out)["value"], 1000);
    let out = palisade(&["run", "--json", "-e", src, "--input", &deep(1001)]);
    assert_eq!(out.status.code(), Some(2));
    let error = &json(&out)["error"];
    assert_eq!(error["kind"], "invalid_request");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("deeper than the 1000 allowed"),
        "{message}"
    );
}

/// With `--json`, stdout is exactly one JSON object (DESIGN.md) for a request the CLI cannot
/// make once its flags parse: an `invalid_request` outcome, exit 2. Found by a helper's hunt
/// (2026-12-01): a bad `--input`, an unreadable file or a bad policy printed only a line on
/// stderr, and a bad `--input` echoed the whole value back in it (up to 128 KB).
#[test]
fn regression_requests_the_cli_cannot_make_are_invalid_request_under_json() {
    let long_bad = format!("{{\"k\": \"{}\"", "x".repeat(100_000));
    for args in [
        &["run", "--json", "-e", "1", "--input", "{not json"][..],
        &["run", "--json", "-e", "1", "--input", &long_bad],
        &["run", "--json", "/nonexistent/file.js"],
        &[
            "run",
            "--json",
            "-e",
            "1",
            "--policy",
            "/nonexistent/policy.toml",
        ],
    ] {
        let out = palisade(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let error = &json(&out)["error"];
        assert_eq!(error["kind"], "invalid_request", "{args:?}");
        assert!(error["message"].as_str().unwrap().len() < 200, "{error}");
        assert!(out.stderr.len() < 200, "{args:?}");
    }
    let out = palisade(&["run", "-e", "1", "--input", &long_bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.len() < 200, "the input was echoed back");
}

/// Guest code runs in UTC on every engine, whatever the host's zone: the native engine's
/// QuickJS asked the C library, which read the host's `TZ`, so a guest there saw the host's zone
/// and a different `Date` than on the wasm engine (UTC always). Issue 3: the same outcome on
/// quickjs and wasm.
#[test]
fn issue_3_guest_dates_are_utc_whatever_the_hosts_zone() {
    let src = "[new Date(2020, 6, 1, 12).getTime(), new Date(0).getTimezoneOffset(), \
               new Date(2020, 6, 1, 12).getHours()]";
    for engine in ["quickjs", "wasm", "v8"] {
        let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["run", "--engine", engine, "--json", "-e", src])
            // A POSIX rule (UTC-5, daylight time from March to November): needs no tzdata.
            .env("TZ", "XST5XDT,M3.2.0,M11.1.0")
            .output()
            .expect("palisade starts");
        let v = json(&out);
        if engine == "v8" && v["error"]["kind"] == "engine_unavailable" {
            continue;
        }
        assert_eq!(
            v["value"],
            serde_json::json!([1_593_604_800_000_i64, 0, 12]),
            "{engine}: {v}"
        );
    }
}

/// A guest that catches its policy denials and asks again, with a new 30 MB name each time,
/// made the host keep every denial message (to tell `policy_denied` from the guest's own
/// errors): 1.3 GB after forty imports, outside the guest's 256 MiB limit. The host keeps at
/// most 1 MiB of them per run now (`palisade_core::policy::Denials`). Under a 700 MB data limit
/// the process aborted before; it now finishes. (The native engine: the wasm pool reserves
/// address space a data limit refuses.)
#[test]
fn issue_4_caught_policy_denials_keep_the_hosts_memory_bounded() {
    let dir = std::env::temp_dir().join(format!("palisade-denials-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("deny.mjs");
    std::fs::write(
        &file,
        "const s = './' + 'a'.repeat(30e6); let n = 0;\n\
         for (let i = 0; i < 40; i++) { try { await import(s + i) } catch (e) { n++ } }\n\
         export default n;\n",
    )
    .expect("write the script");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -d 700000; exec '{}' run --json --engine quickjs --memory 256MiB \
             --timeout 30s '{}'",
            env!("CARGO_BIN_EXE_palisade"),
            file.display()
        ))
        .output()
        .expect("sh starts");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["value"], 40);
}
