//! Regression tests for issue 3 that hold on every engine: the outcome of an error thrown inside
//! Palisade's own scripts.

mod common;

use common::on_every_engine;
use palisade::{ErrorKind, Request};

/// An uncaught error thrown by a host API (inside the host prelude) is reported with the guest's
/// frames only, on every engine: the prelude is the host's, and its frames differed from engine
/// to engine (`eval_script:62` on quickjs, `eval_script:63` on wasm, none on v8).
#[test]
fn issue_3_uncaught_host_api_errors_show_only_guest_frames() {
    let src = "function f() {\n  crypto.getRandomValues(5);\n}\nf();\n";
    on_every_engine(|kind, sandbox| {
        let o = sandbox.run(&Request::script(src));
        if o.error_kind() != Some(ErrorKind::Exception) {
            return Err(format!("{kind}: {}", o.to_json()));
        }
        let rec = o.error().map(|e| e.to_record()).expect("an error");
        let stack = rec.stack.unwrap_or_default();
        let frames: Vec<&str> = stack
            .lines()
            .filter(|l| l.trim().starts_with("at "))
            .collect();
        if rec.line != Some(2)
            || frames.len() != 2
            || !frames.iter().all(|f| f.contains("script.js:"))
        {
            return Err(format!("{kind}: line {:?}, stack {stack:?}", rec.line));
        }
        Ok(())
    });
}
