//! Hostile allocation sizes, on every engine: a size past any limit is `memory_limit`, and an
//! outcome stays bounded.

mod common;

use common::{on_every_engine, still_runs};
use palisade::{ErrorKind, Limits, Request};

/// Arrays of 2^29 - 1 and 2^29 + 1 elements made at once. On the `wasm` engine QuickJS-NG runs
/// with a 32-bit `size_t`: `expand_fast_array`'s `sizeof(JSValue) * new_size` wraps from 2^29
/// elements, and its arena allocator's rounding plus block header wraps for sizes within 23
/// bytes of 4 GiB. Either way QuickJS got a tiny block and wrote past it: the guest trapped and
/// the run was `internal` where the other engines say `memory_limit` (found 2026-11-30 by a
/// hunt for crash vectors; the host was never at risk). The guest build patches both
/// (scripts/build-wasm-guest), and the refused size closes the memory latch as on the native
/// engine, so even a guest that catches the error ends as `memory_limit`.
#[test]
fn regression_an_array_of_2_pow_29_elements_is_memory_limit() {
    let cases = [
        "Array.prototype.toReversed.call({ length: 2 ** 29 + 1 })",
        "Array.prototype.toReversed.call({ length: 2 ** 29 - 1 })",
        "Array.prototype.with.call({ length: 2 ** 29 + 1 }, 0, 1)",
        "Array.prototype.toSorted.call({ length: 2 ** 29 + 1 })",
        "Array.prototype.toSpliced.call({ length: 2 ** 29 + 1 })",
        "try { Array.prototype.toReversed.call({ length: 2 ** 29 + 1 }) } catch (e) { 'caught' }",
    ];
    on_every_engine(|kind, sandbox| {
        for src in cases {
            let outcome = sandbox.run(&Request::script(src));
            if outcome.error_kind() != Some(ErrorKind::MemoryLimit) {
                return Err(format!("{kind}: {src}: {:?}", outcome.to_record()));
            }
        }
        still_runs(kind, sandbox)
    });
}

/// Found by a service review (2026-12-01): nothing bounded an error's text, so a guest could
/// end with a 300 MB message past the result and output caps. Every engine's outcome cuts it.
#[test]
fn regression_an_errors_text_is_cut_to_max_error_text() {
    let max = palisade::MAX_ERROR_TEXT;
    on_every_engine(|kind, sandbox| {
        let o = sandbox.run(&Request::script(
            "const e = new Error('x'.repeat(3e6)); e.name = 'N'.repeat(1e5); throw e",
        ));
        let record = o.to_record();
        let e = record.error.ok_or_else(|| format!("{kind}: no error"))?;
        let cut = |s: &str, more: usize| {
            s.len() == max + format!("\u{2026} [{more} more bytes]").len()
                && s.ends_with(&format!("[{more} more bytes]"))
        };
        if !cut(&e.message, 3_000_000 - max) || !cut(e.name.as_deref().unwrap_or(""), 100_000 - max)
        {
            return Err(format!(
                "{kind}: name {} bytes, message {} bytes",
                e.name.map_or(0, |n| n.len()),
                e.message.len()
            ));
        }
        if e.stack.as_deref().is_some_and(|s| s.len() > max + 64) {
            return Err(format!("{kind}: stack not cut"));
        }
        still_runs(kind, sandbox)
    });
}

/// A run's memory limit does not depend on what ran before it in the same sandbox. On `v8` the
/// memory watch read only the worker's data segment, whose address space V8 keeps after it frees
/// ArrayBuffers and hands to later ones: before 2026-12-01, 100 MB of buffers held live under a
/// 16 MiB limit ended `ok` with a receipt of 0 bytes after a run that had used 400 MB in the
/// same worker (found by a helper's leak hunt), and `memory_limit` in a fresh one.
#[test]
fn regression_a_memory_limit_holds_after_a_bigger_run() {
    let hold = |n: u32| {
        format!(
            "const keep = []; \
             for (let i = 0; i < {n}; i++) {{ const b = new Uint8Array(204800); b.fill(1); keep.push(b) }} \
             keep.length"
        )
    };
    on_every_engine(|kind, sandbox| {
        for _ in 0..2 {
            let big = Request::script(hold(2000)).with_limits(Limits {
                memory: 1 << 30,
                ..Limits::default()
            });
            let outcome = sandbox.run(&big);
            if !outcome.is_ok() {
                return Err(format!("{kind}: the big run: {:?}", outcome.to_record()));
            }
            let small = Request::script(hold(500)).with_limits(Limits {
                memory: 16 << 20,
                ..Limits::default()
            });
            let outcome = sandbox.run(&small);
            if outcome.error_kind() != Some(ErrorKind::MemoryLimit) {
                return Err(format!("{kind}: after it: {:?}", outcome.to_record()));
            }
        }
        still_runs(kind, sandbox)
    });
}

/// A guest that catches its out-of-memory error and goes on is stopped at its next console or
/// host call, as `memory_limit`, with nothing more printed. QuickJS asks its interrupt handler
/// (which ends the run on the memory latch) only once every 10,000 polls: until 2026-12-01 the
/// `wasm` engine went on printing and calling the host after the latch, and a loop there ended
/// as `timeout` (or `fuel_exhausted`), where `quickjs` said `memory_limit` with no output (found
/// by a helper's wasm hunt). `v8` watches its memory from outside, every millisecond, so it too
/// ends as `memory_limit`, but may print a few lines first.
#[test]
fn regression_a_caught_memory_limit_stops_at_the_next_console_or_host_call() {
    let cases = [
        "try { new ArrayBuffer(300e6) } catch (e) { for (let i = 0; ; i++) console.log('after', i) }",
        "try { new ArrayBuffer(300e6) } catch (e) { for (;;) crypto.getRandomValues(new Uint8Array(4)) }",
        "const s = 'x'.repeat(4e6); let n = 0; \
         try { new ArrayBuffer(300e6) } catch (e) { console.log('caught'); for (;;) n += s.indexOf('y') }",
    ];
    on_every_engine(|kind, sandbox| {
        for src in cases {
            let limits = Limits {
                memory: 8 << 20,
                timeout: std::time::Duration::from_secs(3),
                ..Limits::default()
            };
            let outcome = sandbox.run(&Request::script(src).with_limits(limits));
            let quiet = kind == palisade::EngineKind::V8 || outcome.stdout.is_empty();
            if outcome.error_kind() != Some(ErrorKind::MemoryLimit) || !quiet {
                return Err(format!("{kind}: {src}: {:?}", outcome.to_record()));
            }
        }
        still_runs(kind, sandbox)
    });
}

/// Found by a review of the wasm guest's memory-free loops (2026-12-02): QuickJS-NG's
/// `unicode_script`, which compiles a regexp's `\p{Script=...}` or `\p{Script_Extensions=...}`,
/// ended its failure path with `goto fail` to its own label. A guest whose memory limit fell
/// inside it crashed the host on the native engine (SIGSEGV: the compiler made the endless loop
/// a jump to address 0; paddings 0, 9000 and 10000 here, among others), spun on `wasm` until
/// the deadline (7000, 8000: a loop that touches no memory), and freed the same ranges again
/// and again with script extensions. QuickJS-NG is now vendored with the
/// failure path returning (vendor/rquickjs-sys/PALISADE.md), for both engines.
#[test]
fn regression_a_script_property_regexp_at_the_memory_limit_ends_the_run() {
    let limits = Limits {
        memory: 16 << 20,
        timeout: std::time::Duration::from_secs(2),
        ..Limits::default()
    };
    on_every_engine(|kind, sandbox| {
        for property in ["Script=Unknown", "Script_Extensions=Latin"] {
            for pad in [0, 7000, 8000, 9000, 10000] {
                let src = format!(
                    "const pat = '\\\\p{{{property}}}';
                     let hold = [new ArrayBuffer({pad})];
                     for (;;) {{ new RegExp(pat, 'u'); hold = [hold, new ArrayBuffer(10000)]; }}"
                );
                let o = sandbox.run(&Request::script(src).with_limits(limits.clone()));
                if !matches!(
                    o.error_kind(),
                    Some(ErrorKind::MemoryLimit | ErrorKind::Timeout)
                ) {
                    return Err(format!("{kind}: {property}, {pad}: {:?}", o.to_record()));
                }
            }
        }
        still_runs(kind, sandbox)
    });
}

/// Found by a sweep (2026-12-02): a regexp of 20,000 nested capture groups runs V8's regexp
/// compiler out of memory, which aborts the worker with "Fatal process out of memory:
/// RegExpCompiler" and then 40 frames of C stack trace. Only the last 4 KiB of the worker's
/// stderr was kept, so the fatal line was gone and the run was `internal`, a host failure made
/// by the guest. It is the guest's memory use: `memory_limit`, as for V8's other fatal OOMs.
/// The QuickJS engines refuse the pattern (more than 255 captures) with a catchable
/// `SyntaxError`, and the script's own answer is `ok` there.
#[test]
fn regression_a_regexp_that_runs_v8s_compiler_out_of_memory_is_memory_limit() {
    let src = "try { new RegExp('('.repeat(20000) + 'a' + ')'.repeat(20000)).test('a') } \
               catch (e) { e.name + ': ' + e.message }";
    on_every_engine(|kind, sandbox| {
        let outcome = sandbox.run(&Request::script(src));
        let expected = match kind {
            palisade::EngineKind::V8 => outcome.error_kind() == Some(ErrorKind::MemoryLimit),
            _ => outcome.result == Ok(serde_json::json!("SyntaxError: too many captures")),
        };
        if !expected {
            return Err(format!("{kind}: {:?}", outcome.to_record()));
        }
        still_runs(kind, sandbox)
    });
}

/// Found on 2026-12-02: V8 ends some runs by aborting its worker process (a fatal out-of-memory:
/// its regexp compiler's, or a sort's work array for 2^40 elements). The worker kept the run's
/// output until it answered, so the outcome lost everything the run had printed before, where
/// the QuickJS engines keep it (`limits/memory_output_kept`). The worker now also copies the
/// output it accepts into memory the parent maps (`ffi::OutputLog`), which the parent clears
/// before each run: the next run, which aborts before printing, shows nothing of this one.
#[test]
fn regression_output_written_before_v8_aborts_its_worker_is_kept() {
    let abort = "Array.prototype.sort.call({ length: 2 ** 40 })";
    on_every_engine(|kind, sandbox| {
        if kind != palisade::EngineKind::V8 {
            return Ok(());
        }
        let src = format!("console.log('before'); console.error('err'); {abort}");
        let outcome = sandbox.run(&Request::script(src));
        if outcome.error_kind() != Some(ErrorKind::MemoryLimit)
            || outcome.stdout != "before\n"
            || outcome.stderr != "err\n"
        {
            return Err(format!("{kind}: {:?}", outcome.to_record()));
        }
        let first = sandbox.run(&Request::script("console.log('an earlier run'); 1"));
        let silent = sandbox.run(&Request::script(abort));
        if first.stdout != "an earlier run\n" || !silent.stdout.is_empty() {
            return Err(format!(
                "{kind}: {:?} then {:?}",
                first.to_record(),
                silent.to_record()
            ));
        }
        still_runs(kind, sandbox)
    });
}
