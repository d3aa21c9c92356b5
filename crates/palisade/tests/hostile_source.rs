//! Hostile source text, on every engine: nesting deeper than the stack is `stack_overflow`,
//! whatever the parser was doing when it ran out, and a real syntax error stays `syntax_error`.

mod common;

use common::{on_every_engine, still_runs};
use palisade::{ErrorKind, Limits, Request};
use serde_json::json;

/// Sources nested 20,000 levels deep, each in a shape QuickJS's parser once reported as a
/// `SyntaxError` when it ran out of stack: a lookahead dropped the stack-overflow error, and the
/// parse failed later with "missing formal parameter" or "invalid property name"
/// (bellard/quickjs#118). Before 2026-11-30 the nested functions were `syntax_error` on `quickjs`
/// and `wasm` at every stack limit and `stack_overflow` on `v8`; the object literals were
/// `syntax_error` on `quickjs` at its default 4 MiB and some other limits.
fn too_deep() -> Vec<(&'static str, String)> {
    const N: usize = 20_000;
    vec![
        (
            "nested functions",
            "function f(){".repeat(N) + &"}".repeat(N),
        ),
        (
            "nested object literals",
            format!("x = {}1{};", "{a:".repeat(N), "}".repeat(N)),
        ),
        (
            "objects of arrays",
            format!("x = {}1{};", "{a:[".repeat(N), "]}".repeat(N)),
        ),
        (
            "nested arrays",
            format!("x = {}{};", "[".repeat(N), "]".repeat(N)),
        ),
    ]
}

/// The stack limits tried: the engine's default and two explicit ones every engine accepts.
fn stacks() -> [Option<u64>; 3] {
    [None, Some(256 << 10), Some(1 << 20)]
}

fn limits(stack: Option<u64>) -> Limits {
    Limits {
        stack,
        ..Limits::default()
    }
}

#[test]
fn regression_source_nested_deeper_than_the_stack_is_stack_overflow_not_syntax_error() {
    on_every_engine(|kind, sandbox| {
        for (shape, src) in too_deep() {
            for stack in stacks() {
                let outcome = sandbox.run(&Request::script(&src).with_limits(limits(stack)));
                if outcome.error_kind() != Some(ErrorKind::StackOverflow) {
                    return Err(format!(
                        "{kind}: {shape}, stack {stack:?}: {:?}",
                        outcome.to_record()
                    ));
                }
            }
        }
        Ok(())
    });
}

/// The same in modules: the main module, and a module it imports (compiled by the loader).
#[test]
fn regression_a_module_nested_deeper_than_the_stack_is_stack_overflow() {
    on_every_engine(|kind, sandbox| {
        for (shape, src) in too_deep() {
            let src = src.replace("x = ", "export const x = ");
            let main = Request::module(format!("{src}\nexport default 1;"));
            let dependency = Request::module("import { x } from './deep.js';\nexport default 1;")
                .with_filename("main.mjs")
                .with_module("./deep.js", src.clone());
            for (which, req) in [("main", main), ("imported", dependency)] {
                let outcome = sandbox.run(&req);
                if outcome.error_kind() != Some(ErrorKind::StackOverflow) {
                    return Err(format!(
                        "{kind}: {shape} in the {which} module: {:?}",
                        outcome.to_record()
                    ));
                }
            }
        }
        Ok(())
    });
}

/// A real syntax error deep inside nesting the stack can hold is still `syntax_error`, at its
/// own line, and the sandbox goes on working.
#[test]
fn a_syntax_error_inside_deep_nesting_is_still_a_syntax_error() {
    const N: usize = 100;
    let cases = [
        "function f(){".repeat(N) + "\nlet let = 1;\n" + &"}".repeat(N),
        format!("x = {}\n1 1\n{};", "{a:".repeat(N), "}".repeat(N)),
    ];
    on_every_engine(|kind, sandbox| {
        for src in &cases {
            for stack in stacks() {
                let outcome = sandbox.run(&Request::script(src).with_limits(limits(stack)));
                let line = outcome
                    .result
                    .as_ref()
                    .err()
                    .and_then(|e| e.guest())
                    .and_then(|g| g.line);
                if outcome.error_kind() != Some(ErrorKind::SyntaxError) || line != Some(2) {
                    return Err(format!(
                        "{kind}: stack {stack:?}: {:?}",
                        outcome.to_record()
                    ));
                }
            }
        }
        still_runs(kind, sandbox)
    });
}

/// A regexp literal nested deeper than QuickJS's regexp compiler's stack: the compiler throws
/// `SyntaxError: stack overflow` while the source compiles, which was `syntax_error` on `quickjs`
/// (and, once `wasm` told its stack checks apart, `stack_overflow` there). V8's regexp parser
/// takes the nesting. Every engine either compiles it or ends as `stack_overflow`.
#[test]
fn a_regexp_literal_too_deep_to_compile_is_stack_overflow_or_compiles() {
    const N: usize = 100_000;
    let src = format!("/{}a{}/.test('a')", "(?:".repeat(N), ")".repeat(N));
    on_every_engine(|kind, sandbox| {
        for stack in stacks() {
            let outcome = sandbox.run(&Request::script(&src).with_limits(limits(stack)));
            match (&outcome.result, outcome.error_kind()) {
                (Ok(v), _) if *v == json!(true) => {}
                (Err(_), Some(ErrorKind::StackOverflow)) => {}
                _ => {
                    return Err(format!(
                        "{kind}: stack {stack:?}: {:?}",
                        outcome.to_record()
                    ))
                }
            }
        }
        Ok(())
    });
}

/// A source that takes far longer to parse than the run's timeout, and then fails to parse.
/// QuickJS polls nothing while it parses, so the native engine saw no deadline and reported
/// `syntax_error` (at ~270 ms against a 20 ms timeout, 2026-11-30), where wasm's memory
/// revocation and v8's watch stop the parse at the deadline: `timeout`. The native engine now checks the deadline
/// itself when a run fails, and when both the deadline and the memory limit were passed, the
/// one passed first wins.
#[test]
fn regression_a_parse_that_outlasts_the_deadline_is_timeout() {
    let src = format!("x = {}1;\n)", "1+\n".repeat(1_500_000));
    let req = Request::script(&src).with_limits(Limits {
        timeout: std::time::Duration::from_millis(20),
        ..Limits::default()
    });
    on_every_engine(|kind, sandbox| {
        let outcome = sandbox.run(&req);
        if outcome.error_kind() != Some(ErrorKind::Timeout) {
            return Err(format!("{kind}: {:?}", outcome.to_record()));
        }
        still_runs(kind, sandbox)
    });
}

/// A filename is metadata: no character of it runs. v8 names the guest's code with a
/// `//# sourceURL=` comment, which ended at `\n` and `\r` only, so before 2026-12-01 U+2028 or
/// U+2029 in a filename ended it and the rest ran (`a.js\u{2028}+1` made `1` evaluate to 2, and
/// `;throw ...` threw), in scripts and in modules, the request's `modules` keys included.
#[test]
fn regression_a_filename_cannot_inject_code() {
    let names = [
        "a.js\u{2028}+1",
        "a.js\u{2029};throw new Error('from filename')",
        "a.mjs\n;throw 1",
    ];
    on_every_engine(|kind, sandbox| {
        for name in names {
            let script = Request::script("1").with_filename(name);
            let module = Request::module("export default 1").with_filename(name);
            let dependency =
                Request::module("import x from './d\u{2028};throw 2'; export default x")
                    .with_module("./d\u{2028};throw 2", "export default 1");
            for request in [script, module, dependency] {
                let outcome = sandbox.run(&request);
                if outcome.result != Ok(json!(1)) {
                    return Err(format!("{kind}: {name:?}: {:?}", outcome.to_record()));
                }
            }
        }
        still_runs(kind, sandbox)
    });
}

/// Found by a review of the day's work (2026-12-02): the QuickJS engines convert the columns of
/// the outcome's stack to UTF-16 with the source's text, and a guest can throw any `stack`.
/// 100,000 frames naming column 900,000 of a line of 2-byte characters made the host scan the
/// line once per frame, 90 GB, on its own time past the deadline (a 4 MB source of this shape
/// held `palisade run` until its watchdog ended it). Only the first 64 frames are converted,
/// and no column past 2^20.
#[test]
fn regression_a_guest_written_stack_cannot_hold_the_host() {
    let src = format!(
        "// {}\nthrow {{ name: 'E', message: 'm', stack: 'at f (script.js:1:900000)\\n'.repeat(100000) }};",
        "é".repeat(1 << 20)
    );
    on_every_engine(|kind, sandbox| {
        let started = std::time::Instant::now();
        let outcome = sandbox.run(&Request::script(src.as_str()));
        let took = started.elapsed();
        if outcome.error_kind() != Some(ErrorKind::Exception) || took.as_secs() >= 10 {
            return Err(format!("{kind}: {took:?} {:?}", outcome.error_kind()));
        }
        still_runs(kind, sandbox)
    });
}
