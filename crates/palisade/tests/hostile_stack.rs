//! Recursion that keeps calling into the host, on every engine: the stack limit holds however
//! often the host calls back into JavaScript at depth.

mod common;

use common::on_every_engine;
use palisade::{Limits, Policy, Request};

/// Recurses until the stack limit, calling `hostile` every 500 levels, catches the overflow and
/// returns how deep it got.
fn recursing(hostile: &str) -> String {
    format!(
        "let depth = 0;\n\
         function f(n) {{ depth = n; if (n % 500 === 0) {{ {hostile} }} return f(n + 1) + 1; }}\n\
         try {{ f(0) }} catch (e) {{}}\n\
         depth"
    )
}

/// rquickjs's `Function::call` and `construct` move QuickJS's stack top to the calling frame, and
/// the limit with it for the rest of the run. The native engine called back into JavaScript that
/// way from host functions a guest reaches at any depth: the console formatter (`console.log` of
/// a non-string) and the policy's denial stubs (which construct their error). Each such call at
/// depth D gave the guest D more stack, so recursing to the limit and logging there, over and
/// over, ran the native stack out and aborted the host process (found 2026-11-30). Without the
/// fix this aborts the test binary. Every engine now ends the recursion at its limit, the guest
/// catches it, and the run returns its depth.
#[test]
fn regression_host_calls_at_depth_do_not_extend_the_stack_limit() {
    let cases = [
        ("console.log of an object", "console.log({});"),
        ("a denied eval", "try { eval('1') } catch (e) {}"),
        ("a denied Function", "try { new Function('') } catch (e) {}"),
    ];
    on_every_engine(|kind, sandbox| {
        for (what, hostile) in cases {
            for stack in [None, Some(256 << 10)] {
                let req = Request::script(recursing(hostile))
                    .with_policy(Policy::default())
                    .with_limits(Limits {
                        stack,
                        ..Limits::default()
                    });
                let outcome = sandbox.run(&req);
                let depth = outcome.result.as_ref().ok().and_then(|v| v.as_u64());
                if depth.is_none_or(|d| d == 0) {
                    return Err(format!(
                        "{kind}: {what}, stack {stack:?}: {:?}",
                        outcome.to_record()
                    ));
                }
            }
        }
        Ok(())
    });
}

/// Endless recursion under every stack limit above 16 MiB the contract allows (up to 64 MiB).
/// rquickjs's `set_max_stack_size` passes 0, which QuickJS reads as no limit, for anything above
/// 16 MiB: the native engine had no stack limit at all there, recursed until the native stack
/// ran out and crashed the host process with SIGSEGV (found 2026-11-30). Without the fix this
/// crashes the test binary. An engine that cannot give that much stack refuses the limit.
#[test]
fn regression_a_stack_limit_above_16_mib_is_enforced() {
    on_every_engine(|kind, sandbox| {
        for stack in [(16 << 20) + 1, 32 << 20, 64 << 20] {
            let req =
                Request::script("function f() { return f() + 1; }\nf();").with_limits(Limits {
                    stack: Some(stack),
                    ..Limits::default()
                });
            let outcome = sandbox.run(&req);
            let refused = outcome.error_kind() == Some(palisade::ErrorKind::InvalidRequest)
                && kind != palisade::EngineKind::QuickJs;
            if outcome.error_kind() != Some(palisade::ErrorKind::StackOverflow) && !refused {
                return Err(format!("{kind}: stack {stack}: {:?}", outcome.to_record()));
            }
        }
        Ok(())
    });
}

/// The smallest stack a request may ask for still leaves the host APIs usable, and still
/// overflows on deep recursion. On `v8` the prelude's own frames count against the same stack:
/// before 2026-12-01, at 64 KiB every `crypto` call was `stack_overflow` at depth 0 there
/// (found by a helper's hunt), while the QuickJS engines returned the value.
#[test]
fn regression_host_apis_work_at_the_smallest_stack() {
    let limits = Limits {
        stack: Some(64 << 10),
        ..Limits::default()
    };
    let src = "console.log('at 64 KiB'); \
               [crypto.randomUUID().length, crypto.getRandomValues(new Uint8Array(4)).length]";
    on_every_engine(|kind, sandbox| {
        let outcome = sandbox.run(&Request::script(src).with_limits(limits.clone()));
        if outcome.result != Ok(serde_json::json!([36, 4])) || outcome.stdout != "at 64 KiB\n" {
            return Err(format!("{kind}: {:?}", outcome.to_record()));
        }
        let deep =
            Request::script("function f() { return f() + 1 } f()").with_limits(limits.clone());
        let outcome = sandbox.run(&deep);
        if outcome.error_kind() != Some(palisade::ErrorKind::StackOverflow) {
            return Err(format!("{kind}: recursion: {:?}", outcome.to_record()));
        }
        Ok(())
    });
}
