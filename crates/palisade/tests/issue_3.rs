//! Regression tests for issue 3 that hold on every engine: the outcome of an error thrown inside
//! Palisade's own scripts.

mod common;

use common::on_every_engine;
use palisade::{EngineKind, ErrorKind, Outcome, Request};

const SRC: &str = "function f() {\n  crypto.getRandomValues(5);\n}\nf();\n";

/// An uncaught error thrown by a host API (inside the host prelude) is reported with the guest's
/// frames only, on every engine: the prelude is the host's, and its frames differed from engine
/// to engine (`eval_script:62` on quickjs, `eval_script:63` on wasm, none on v8).
#[test]
fn issue_3_uncaught_host_api_errors_show_only_guest_frames() {
    on_every_engine(|kind, sandbox| {
        guest_frames_only(kind, &sandbox.run(&Request::script(SRC)), "script.js")
    });
}

/// The error's position is found in the guest's own frames, however its file is named: a file
/// named `host` or `fetch` matched inside the host prelude's frames (`palisade:host:62:27`) on
/// the QuickJS engines, which reported line 62 where V8 reported 2.
#[test]
fn issue_3_error_positions_never_come_from_palisades_own_frames() {
    on_every_engine(|kind, sandbox| {
        for file in ["host", "fetch", "palisade", "prelude"] {
            let o = sandbox.run(&Request::script(SRC).with_filename(file));
            guest_frames_only(kind, &o, file)?;
        }
        Ok(())
    });
}

/// `o` is the exception `SRC` throws, at line 2 of `file`, with two frames, both in `file`.
fn guest_frames_only(kind: EngineKind, o: &Outcome, file: &str) -> Result<(), String> {
    if o.error_kind() != Some(ErrorKind::Exception) {
        return Err(format!("{kind}: {}", o.to_json()));
    }
    let rec = o.error().map(|e| e.to_record()).expect("an error");
    let stack = rec.stack.unwrap_or_default();
    let frames: Vec<&str> = stack
        .lines()
        .filter(|l| l.trim().starts_with("at "))
        .collect();
    let in_file = format!("{file}:");
    if rec.line != Some(2) || frames.len() != 2 || !frames.iter().all(|f| f.contains(&in_file)) {
        return Err(format!(
            "{kind} ({file}): line {:?}, stack {stack:?}",
            rec.line
        ));
    }
    Ok(())
}
