//! The cross-engine conformance suite: every case in `tests/conformance` (a `.js`/`.mjs` file and
//! its expected outcome in a `.json` file beside it) runs on every available engine, with the
//! same expectation everywhere.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How far past its deadline a timed-out case may end (see `check`).
const TIMEOUT_SLACK: Duration = Duration::from_secs(2);

use palisade::{ErrorKind, Limits, Mode, Outcome, Request};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    input: serde_json::Value,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    policy: Option<palisade::Policy>,
    #[serde(default)]
    modules: std::collections::BTreeMap<String, String>,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: String,
    #[serde(default, deserialize_with = "value_or_null")]
    value: Option<serde_json::Value>,
    #[serde(default)]
    kind: Option<ErrorKind>,
    #[serde(default, deserialize_with = "some_or_null")]
    name: Option<Option<String>>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    message_contains: Option<String>,
    #[serde(default)]
    line: Option<u32>,
    #[serde(default)]
    column: Option<u32>,
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    stderr: Option<String>,
    #[serde(default)]
    stdout_contains: Option<String>,
    #[serde(default)]
    truncated: Option<bool>,
}

/// Distinguishes `"name": null` (expect no name) from an absent field (don't compare).
fn some_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `"value": null` means "expect null", so it must not collapse into an absent field.
fn value_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if matches!(p.extension().and_then(|x| x.to_str()), Some("js" | "mjs")) {
            out.push(p);
        }
    }
}

fn check(case: &Case, o: &Outcome) -> Vec<String> {
    let e = &case.expect;
    let mut bad = Vec::new();
    let status = if o.is_ok() { "ok" } else { "error" };
    if status != e.status {
        bad.push(format!("status {status}, expected {}", e.status));
    }
    if let Some(v) = &e.value {
        match &o.result {
            Ok(got) if got == v => {}
            Ok(got) => bad.push(format!("value {got}, expected {v}")),
            Err(_) => bad.push(format!("no value, expected {v}")),
        }
    }
    let rec = o.error().map(|err| err.to_record());
    if let Some(kind) = e.kind {
        if o.error_kind() != Some(kind) {
            bad.push(format!("kind {:?}, expected {kind}", o.error_kind()));
        }
    }
    if let Some(rec) = &rec {
        if let Some(name) = &e.name {
            if &rec.name != name {
                bad.push(format!("name {:?}, expected {name:?}", rec.name));
            }
        }
        if let Some(m) = &e.message {
            if &rec.message != m {
                bad.push(format!("message {:?}, expected {m:?}", rec.message));
            }
        }
        if let Some(m) = &e.message_contains {
            if !rec.message.contains(m.as_str()) {
                bad.push(format!("message {:?} lacks {m:?}", rec.message));
            }
        }
        if e.line.is_some() && rec.line != e.line {
            bad.push(format!("line {:?}, expected {:?}", rec.line, e.line));
        }
        if e.column.is_some() && rec.column != e.column {
            bad.push(format!("column {:?}, expected {:?}", rec.column, e.column));
        }
    }
    if let Some(s) = &e.stdout {
        if &o.stdout != s {
            bad.push(format!("stdout {:?}, expected {s:?}", o.stdout));
        }
    }
    if let Some(s) = &e.stderr {
        if &o.stderr != s {
            bad.push(format!("stderr {:?}, expected {s:?}", o.stderr));
        }
    }
    if let Some(s) = &e.stdout_contains {
        if !o.stdout.contains(s.as_str()) {
            bad.push(format!("stdout lacks {s:?}"));
        }
    }
    if let Some(t) = e.truncated {
        if o.truncated != t {
            bad.push(format!("truncated {}, expected {t}", o.truncated));
        }
    }
    // A hostile case that times out must be stopped by the deadline, not run on until something
    // else ends it. The slack is generous on purpose: CI shares two cores between this suite,
    // V8 worker processes and Wasmtime, and a descheduled thread can overrun by hundreds of
    // milliseconds (CI saw 416 ms for a 200 ms deadline). Promptness is for benchmarks to
    // measure, not for a timed assertion.
    if o.error_kind() == Some(ErrorKind::Timeout) {
        let timeout = case
            .limits
            .as_ref()
            .map_or(Limits::default().timeout, |l| l.timeout);
        let wall = Duration::from_micros(o.metrics.wall_us);
        if wall > timeout + TIMEOUT_SLACK {
            bad.push(format!(
                "timed out after {wall:?}, over {timeout:?} + {TIMEOUT_SLACK:?}"
            ));
        }
    }
    if bad.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "{} ({})\n    got: {}",
            bad.join("; "),
            case.description,
            o.to_json()
        )]
    }
}

#[test]
fn conformance_suite_passes_on_every_engine() {
    let mut files = Vec::new();
    collect(&cases_dir(), &mut files);
    files.sort();
    assert!(
        files.len() >= 80,
        "only {} conformance cases found",
        files.len()
    );
    common::on_every_engine(|_kind, sandbox| {
        let mut failures = Vec::new();
        for file in &files {
            let rel = file
                .strip_prefix(cases_dir())
                .unwrap_or(file)
                .display()
                .to_string();
            let spec = file.with_extension("json");
            let case: Case = match std::fs::read_to_string(&spec)
                .map_err(|e| e.to_string())
                .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
            {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{rel}: bad expectation file: {e}"));
                    continue;
                }
            };
            let source = std::fs::read_to_string(file).unwrap_or_default();
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("case.js");
            let mode = case.mode.unwrap_or_else(|| Mode::from_file_name(name));
            let request = Request {
                source,
                mode,
                filename: Some(name.to_owned()),
                input: case.input.clone(),
                limits: case.limits.clone().unwrap_or_default(),
                modules: case.modules.clone(),
                policy: case.policy.clone().unwrap_or_default(),
            };
            let outcome = sandbox.run(&request);
            for f in check(&case, &outcome) {
                failures.push(format!("{rel}: {f}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} of {} cases failed:\n{}",
                failures.len(),
                files.len(),
                failures.join("\n")
            ))
        }
    });
}
