//! The result limit, on every engine: a result's size is the bytes of its JSON text in UTF-8,
//! counted exactly whether the text was kept or not, and a result far over the limit is
//! `result_limit` as long as its value fits in memory, not the memory its text would have taken.

mod common;

use common::{on_every_engine, still_runs};
use palisade::{ErrorKind, ExecError, Limit, Limits, Request};

/// Values whose JSON text holds every kind of byte count: escapes (two bytes and six), one- to
/// four-byte UTF-8, keys that need quoting, numbers, nesting, and `toJSON`.
const SHAPES: &[&str] = &[
    "'plain ascii'",
    r#"'quote " backslash \\ newline \n tab \t control \u0001 \u001f del \u007f'"#,
    r"'é ß ü two-byte, € ☃ three-byte, 😀 🎉 four-byte, a pair \ud83d\ude00'",
    "({ 'ключ': 'значение', '\"q\"': [1, -2.5, 1e21, null, true, false], e: {} })",
    "[[[[[]]]], {a: {b: {c: [1, [2, [3]]]}}}]",
    "({ toJSON() { return { made: 'by toJSON', n: 0.1 + 0.2 }; } })",
    "[new Date(0), undefined, () => 1, Symbol('s'), NaN, -0]",
];

/// The text an engine makes of `shape`, read with a limit far above it.
fn text_len(sandbox: &palisade::Sandbox, shape: &str) -> Result<u64, String> {
    let outcome = sandbox.run(&Request::script(shape));
    let value = outcome
        .result
        .map_err(|e| format!("{shape}: the unlimited run failed: {e:?}"))?;
    Ok(serde_json::to_string(&value)
        .map_err(|e| e.to_string())?
        .len() as u64)
}

/// Each shape, repeated past a limit of its own length minus one, gives `result_limit` with the
/// exact length observed (so the count a QuickJS engine makes without keeping the text is the
/// text's), and its exact length is accepted.
#[test]
fn the_result_limit_counts_every_byte_of_the_text_kept_or_not() {
    on_every_engine(|kind, sandbox| {
        for shape in SHAPES {
            // The same value three times over: the serialized text is three copies, joined.
            let one = text_len(sandbox, shape)?;
            let src = format!("{{ const v = {shape}; [v, v, v] }}");
            let len = 3 * one + 4;
            let limited = |result| {
                Request::script(&src).with_limits(Limits {
                    result,
                    ..Limits::default()
                })
            };
            let at = sandbox.run(&limited(len));
            if let Err(e) = at.result {
                return Err(format!("{kind}: {src} at its own length {len}: {e:?}"));
            }
            for limit in [len - 1, one, 1] {
                match sandbox.run(&limited(limit)).result {
                    Err(ExecError::Limit(l))
                        if l.limit == Limit::Result && l.observed == Some(len) => {}
                    other => {
                        return Err(format!(
                            "{kind}: {src} under a limit of {limit}: expected result_limit with \
                             {len} bytes observed, got {other:?}"
                        ))
                    }
                }
            }
        }
        // A lone surrogate is escaped in the text (six bytes each), which is then refused
        // (`not_serializable`) if it is within the limit; over it, the count includes them.
        let src = r"['lone \ud800 and \udfff, reversed \ude00\ud83d', 'x'.repeat(100)]";
        // `[`, the first string's 47 bytes (`"lone `, then each escape, ...), `,`, 102, `]`.
        let len = 1 + 47 + 1 + 102 + 1;
        match sandbox
            .run(&Request::script(src).with_limits(Limits {
                result: 100,
                ..Limits::default()
            }))
            .result
        {
            Err(ExecError::Limit(l)) if l.observed == Some(len) => {}
            other => {
                return Err(format!(
                    "{kind}: {src}: expected {len} bytes, got {other:?}"
                ))
            }
        }
        Ok(())
    });
}

/// Found by the 2026-12-02 sweep: a result whose value fits in memory but whose text does not fit
/// beside it was `memory_limit` on the QuickJS engines (their `JSON.stringify` built the whole
/// text, then a quoted copy of each string) and `result_limit` on V8. Every engine now keeps at
/// most the limit's bytes of text and counts the rest; V8, which builds the whole text, hands the
/// host only its size.
#[test]
fn regression_a_result_far_over_its_limit_is_result_limit_not_memory_limit() {
    let cases = [
        ("'x'.repeat(3e7)", 30_000_002u64),
        ("({ a: 'x'.repeat(2.5e7) })", 25_000_008),
        (r"'\n'.repeat(1.5e7)", 30_000_002),
        ("'é'.repeat(1.5e7)", 30_000_002),
        ("new Array(60000).fill('x'.repeat(1000))", 60_180_001),
        // A rope (a concatenation QuickJS keeps as two halves) is counted leaf by leaf: flattened
        // just to be counted, the copy was `memory_limit` (found by a review, 2026-12-02).
        ("'a'.repeat(2e7) + 'b'.repeat(2e7)", 40_000_002),
        // A surrogate pair split between a rope's two leaves is one four-byte character.
        (
            r"[('\ud83d' + 'x'.repeat(2e6)).slice(0, 1) + ('\ude00' + 'y'.repeat(2e6)), 1]",
            2_000_010,
        ),
    ];
    on_every_engine(|kind, sandbox| {
        for (src, len) in cases {
            let outcome = sandbox.run(&Request::script(src));
            match &outcome.result {
                Err(ExecError::Limit(l)) if l.limit == Limit::Result && l.observed == Some(len) => {
                }
                _ => {
                    return Err(format!(
                        "{kind}: {src}: expected result_limit with {len} bytes observed, got {:?}",
                        outcome.to_record()
                    ))
                }
            }
        }
        still_runs(kind, sandbox)
    });
}

/// Past the limit, the value is still walked to its end, as `JSON.stringify` walks it: a later
/// `toJSON` or getter runs (its output is kept) and a later error is the run's.
#[test]
fn past_the_limit_the_rest_of_the_value_is_still_converted() {
    let big = "'x'.repeat(2e6)";
    let cases = [
        (
            format!("[{big}, {{ toJSON() {{ console.log('late'); return 1; }} }}]"),
            ErrorKind::ResultLimit,
        ),
        (
            format!("({{ a: {big}, get b() {{ console.log('late'); return 2; }} }})"),
            ErrorKind::ResultLimit,
        ),
        (
            format!("[{big}, {{ toJSON() {{ console.log('late'); throw new Error('no'); }} }}]"),
            ErrorKind::NotSerializable,
        ),
        (
            format!("[{big}, {{ get x() {{ console.log('late'); return 1n; }} }}]"),
            ErrorKind::NotSerializable,
        ),
    ];
    on_every_engine(|kind, sandbox| {
        for (src, want) in &cases {
            let outcome = sandbox.run(&Request::script(src));
            if outcome.error_kind() != Some(*want) || outcome.stdout != "late\n" {
                return Err(format!(
                    "{kind}: {src}: expected {want:?} after `late`, got {:?}",
                    outcome.to_record()
                ));
            }
        }
        Ok(())
    });
}

/// Past the limit a string is counted, not copied: nothing is allocated that the deadline could
/// refuse, so a long string brings the next interrupt poll nearer by its length. Without that,
/// 20,000 references to one 10 MB string took minutes of counting on `quickjs` between two polls
/// (found by a review, 2026-12-02). V8 builds the whole text and ends at its memory limit first.
/// The same for one rope of shared halves, a billion characters in 16 MB, which the count polls
/// inside (a second review, the same day: counted between two polls, it took 2 s natively); V8
/// cannot build that string at all.
#[test]
fn counting_a_long_string_over_and_over_ends_at_the_timeout() {
    let cases = [
        (
            "const s = 'x'.repeat(1e7); new Array(20000).fill(s)",
            ErrorKind::MemoryLimit,
        ),
        (
            "let r = 'x'.repeat(1.6e7); for (let i = 0; i < 6; i++) r = r + r; r",
            ErrorKind::Exception,
        ),
    ];
    on_every_engine(|kind, sandbox| {
        for (src, on_v8) in cases {
            let timeout = std::time::Duration::from_millis(300);
            let started = std::time::Instant::now();
            let outcome = sandbox.run(&Request::script(src).with_limits(Limits {
                timeout,
                ..Limits::default()
            }));
            // Not a speed goal: the bound tells a stop at the deadline from one seconds later.
            if started.elapsed() > timeout * 4 {
                return Err(format!("{kind}: {src}: took {:?}", started.elapsed()));
            }
            let want = if kind == palisade::EngineKind::V8 {
                on_v8
            } else {
                ErrorKind::Timeout
            };
            if outcome.error_kind() != Some(want) {
                return Err(format!("{kind}: {src}: {:?}", outcome.to_record()));
            }
        }
        still_runs(kind, sandbox)
    });
}

/// A value with 2^60 paths through it (an array holding the one before it twice, sixty times
/// over) takes a few hundred bytes of memory and has a text no engine could ever finish counting.
/// Nothing it allocates stops the walk once the text is over the limit, so the QuickJS engines
/// poll their interrupt handler in it: the run ends at its timeout, and the host goes on. (Before
/// the text was bounded, its growth ran into the memory limit.)
#[test]
fn a_result_with_endless_paths_ends_at_its_timeout() {
    let src = "let o = ['x']; for (let i = 0; i < 60; i++) o = [o, o]; o";
    on_every_engine(|kind, sandbox| {
        let outcome = sandbox.run(&Request::script(src).with_limits(Limits {
            timeout: std::time::Duration::from_millis(300),
            ..Limits::default()
        }));
        if outcome.error_kind() != Some(ErrorKind::Timeout) {
            return Err(format!("{kind}: {:?}", outcome.to_record()));
        }
        still_runs(kind, sandbox)
    });
}
