//! Each thread's sealed runtime: built once in an arena, restored after every run.
//!
//! A run starts from the same bytes a freshly built runtime has, so it sees exactly what a
//! fresh runtime would show it, and nothing a run did survives into the next. That holds
//! because everything a run can change lives in the arena, which is restored, or in state the
//! run resets when it starts (`run::run`: output, denials, host slot, module table, seeds,
//! meter and guard). The rules that keep Rust-side state out of a run, each kept where it
//! applies:
//!
//! - every Rust-backed JS function is made while the runtime is built and pinned
//!   (`run::pin`), so QuickJS never finalizes one during a run;
//! - a run makes no Rust-backed JS object (host bytes are copied into the heap) and stores
//!   nothing in rquickjs's Rust-side runtime data (the console formatter is built up front);
//! - no JS value a run obtained outlives it: they are all scoped to `Context::with`.

use std::cell::RefCell;

use crate::ffi::arena::Arena;
use crate::Fresh;

/// The sealed runtime and the arena it lives in. Fields drop in order: the runtime (freed into
/// the arena) before the arena (unmapped).
struct Snapshot {
    fresh: Fresh,
    /// Bytes in use in the sealed heap.
    baseline: usize,
    arena: Arena,
}

enum Slot {
    Empty,
    Ready(Box<Snapshot>),
    /// The arena could not be reserved, or a run panicked: this thread builds runtimes instead.
    Unavailable,
}

thread_local! {
    static SLOT: RefCell<Slot> = const { RefCell::new(Slot::Empty) };
}

impl Snapshot {
    fn build() -> Option<Snapshot> {
        let mut arena = Arena::reserve()?;
        let meter = crate::ffi::Meter::new();
        let fresh = Fresh::build(arena.allocator(meter.clone()), meter).ok()?;
        // Nothing the build left unreachable is worth copying on every restore.
        fresh.rt.run_gc();
        arena.seal();
        let baseline = fresh.meter.used();
        Some(Snapshot {
            fresh,
            baseline,
            arena,
        })
    }
}

/// Runs `f` on this thread's sealed runtime and restores it afterwards; `None` when the thread
/// has none to offer (then the caller builds a runtime for the run).
pub(crate) fn with<R>(f: impl FnOnce(&Fresh) -> R) -> Option<R> {
    SLOT.try_with(|slot| {
        // Already borrowed: a run started from inside a run's host call on this thread.
        let mut slot = slot.try_borrow_mut().ok()?;
        if matches!(*slot, Slot::Empty) {
            *slot = match Snapshot::build() {
                Some(s) => Slot::Ready(Box::new(s)),
                None => Slot::Unavailable,
            };
        }
        let Slot::Ready(snap) = &mut *slot else {
            return None;
        };
        let Snapshot {
            fresh,
            baseline,
            arena,
        } = &mut **snap;
        fresh.meter.reset(*baseline);
        fresh.guard.reset();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(fresh)));
        arena.restore();
        match result {
            Ok(r) => Some(r),
            Err(panic) => {
                // rquickjs's Rust-side state may be mid-operation: never touch this runtime again
                // (not even to free it).
                if let Slot::Ready(snap) = std::mem::replace(&mut *slot, Slot::Unavailable) {
                    std::mem::forget(snap);
                }
                std::panic::resume_unwind(panic)
            }
        }
    })
    .ok()
    .flatten()
}
