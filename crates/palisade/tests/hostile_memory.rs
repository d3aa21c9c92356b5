//! Hostile allocation sizes, on every engine: a size past any limit is `memory_limit`.

mod common;

use common::{on_every_engine, still_runs};
use palisade::{ErrorKind, Request};

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
