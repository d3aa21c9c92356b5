//! The deadline: a watchdog thread that stops a run by revoking access to its linear memory.
//!
//! Wasmtime's epoch interruption puts a check of the epoch counter at every function entry and
//! loop header of the guest. In QuickJS's interpreter that is one check per bytecode
//! dispatched, and it cost 13–15% of the V8 v7 score. The guest is compiled without it.
//! Instead, once a run's deadline passes, this module's watchdog thread makes the run's whole
//! linear memory inaccessible (`mprotect(PROT_NONE)`, [`crate::ffi::set_access`]). The
//! guest's next load or store faults; Wasmtime's signal handler finds the faulting instruction
//! in the guest's code and the address inside the instance's memory reservation, and turns
//! the fault into a trap that ends the call. After the call the run's thread gives the memory
//! its access back, before anything reads it and before Wasmtime resets the pool slot.
//!
//! Only guest instructions may touch memory while it can be revoked: a fault in host code
//! would be a crash. So:
//! - the guest is built without bulk memory (`memory.copy` and `memory.fill` run as host code
//!   in Wasmtime; the unit tests check the module has neither instruction);
//! - every host function and every libcall that can fail (`memory.grow` among them) runs
//!   between Wasmtime's `CallingHost` and `ReturningFromHost` call hooks, which move the run's
//!   [`Phase`] to [`IN_HOST`] and back. The watchdog revokes memory only in [`IN_GUEST`]; in
//!   [`IN_HOST`] it marks the run [`LATE`] instead, and the return to the guest then traps. A
//!   host call that the guest makes after its memory was revoked traps before it starts.
//!
//! A guest loop that touches no linear memory at all is not stopped this way. QuickJS's
//! interpreter reads its bytecode and stack from linear memory at every instruction, and its C
//! loops walk memory, so no such loop in the guest runs long; see ARCHITECTURE.md.
//!
//! Every change of phase that both threads may attempt is one atomic compare-and-swap (the
//! others, out of `STOPPING` and `STOPPED`, are made by the one side that may act there), so a
//! run that ends just as its deadline passes is either stopped (and its memory restored) or
//! left alone, never both.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::{CallHook, Trap};

/// How often the watchdog looks for runs past their deadline.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// Where a run is: running guest code ([`IN_GUEST`]), in a host call ([`IN_HOST`]), in a host call
/// past its deadline ([`LATE`]), being stopped ([`STOPPING`]: the watchdog is revoking its
/// memory), stopped ([`STOPPED`]), or over ([`DONE`]).
type Phase = u8;
const IN_GUEST: Phase = 0;
const IN_HOST: Phase = 1;
const LATE: Phase = 2;
const STOPPING: Phase = 3;
const STOPPED: Phase = 4;
const DONE: Phase = 5;

/// One run's deadline and the memory to revoke when it passes.
#[derive(Debug)]
pub(crate) struct Watch {
    deadline: Instant,
    phase: AtomicU8,
    /// The linear memory's base address (0 until [`Watch::arm`]).
    base: AtomicUsize,
    /// Its accessible length, as of the last return to the guest: what the watchdog revokes,
    /// and, in [`STOPPED`], what is to be restored (no host call, so no growth, is in progress
    /// or can start once the run is stopping).
    len: AtomicUsize,
}

impl Watch {
    pub(crate) fn new(deadline: Instant) -> Arc<Watch> {
        Arc::new(Watch {
            deadline,
            phase: AtomicU8::new(IN_GUEST),
            base: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
        })
    }

    /// Wasmtime's call hook for the run's store. `len` is the memory's current size, read only
    /// on the way back to the guest (a `memory.grow` is a host call, so the size changes only
    /// in [`IN_HOST`]).
    pub(crate) fn hook(&self, hook: CallHook, len: impl FnOnce() -> usize) -> wasmtime::Result<()> {
        match hook {
            CallHook::CallingHost => self
                .phase
                .compare_exchange(IN_GUEST, IN_HOST, Ordering::AcqRel, Ordering::Acquire)
                .map(drop)
                // Revoked (or being revoked): the host call must not start.
                .map_err(|_| Trap::Interrupt.into()),
            CallHook::ReturningFromHost => {
                self.len.store(len(), Ordering::Release);
                self.phase
                    .compare_exchange(IN_HOST, IN_GUEST, Ordering::AcqRel, Ordering::Acquire)
                    .map(drop)
                    // The deadline passed during the host call.
                    .map_err(|_| Trap::Interrupt.into())
            }
            CallHook::CallingWasm | CallHook::ReturningFromWasm => Ok(()),
        }
    }

    /// Hands the run to the watchdog: from now until [`Armed`] is dropped, its memory
    /// (`base`, `len` bytes) may be revoked once the deadline passes.
    pub(crate) fn arm(self: &Arc<Self>, base: usize, len: usize) -> Armed {
        self.base.store(base, Ordering::Relaxed);
        self.len.store(len, Ordering::Release);
        watchdog().push(self.clone());
        Armed(self.clone())
    }

    /// The watchdog's step for a run whose deadline has passed.
    fn expire(&self) {
        let mut phase = self.phase.load(Ordering::Acquire);
        loop {
            let next = match phase {
                IN_GUEST => STOPPING,
                IN_HOST => LATE,
                _ => return,
            };
            match self
                .phase
                .compare_exchange(phase, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if next == LATE => return,
                Ok(_) => break,
                Err(now) => phase = now,
            }
        }
        // STOPPING: the run's thread is in guest code and waits for STOPPED before it
        // touches the memory again (`Armed::finish`); the store cannot be dropped before then.
        let base = self.base.load(Ordering::Relaxed);
        let len = self.len.load(Ordering::Acquire);
        if !crate::ffi::set_access(base, len, false) && crate::ffi::set_access(base, len, true) {
            // The kernel refused (out of memory, or of mappings), perhaps after changing part
            // of the range; that part is given back, and the next tick tries again.
            self.phase.store(IN_GUEST, Ordering::Release);
            return;
        }
        // Revoked; or half revoked and not restorable now, which the run's thread tries again
        // (and gives the store up if that fails too).
        self.phase.store(STOPPED, Ordering::Release);
    }
}

/// A run in the watchdog's care until [`Armed::finish`] (after the guest's call returned,
/// before the store goes), which restores the memory's access; dropping it does the same.
#[derive(Debug)]
pub(crate) struct Armed(Arc<Watch>);

impl Armed {
    /// Ends the watch: whether the deadline stopped the run, and whether its memory is usable
    /// again (always, unless restoring its access failed: then the store must be leaked, not
    /// read or dropped, as Wasmtime's reset would write into it).
    pub(crate) fn finish(self) -> Finished {
        let finished = end(&self.0);
        std::mem::forget(self);
        finished
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        // Only on an early return or an unwind; `finish` is the normal way out.
        end(&self.0);
    }
}

/// Takes a run back from the watchdog (see [`Armed::finish`]).
fn end(w: &Watch) -> Finished {
    loop {
        let phase = w.phase.load(Ordering::Acquire);
        match phase {
            // The watchdog is revoking; that takes microseconds.
            STOPPING => std::thread::yield_now(),
            STOPPED => {
                let base = w.base.load(Ordering::Relaxed);
                let len = w.len.load(Ordering::Acquire);
                let usable = crate::ffi::set_access(base, len, true);
                w.phase.store(DONE, Ordering::Release);
                return Finished {
                    timed_out: true,
                    usable,
                };
            }
            DONE => {
                return Finished {
                    timed_out: false,
                    usable: true,
                }
            }
            _ => {
                if w.phase
                    .compare_exchange(phase, DONE, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Finished {
                        timed_out: phase == LATE,
                        usable: true,
                    };
                }
            }
        }
    }
}

/// How an armed run ended, as far as the deadline goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Finished {
    pub(crate) timed_out: bool,
    pub(crate) usable: bool,
}

/// The runs in the watchdog's care (the thread drops those that are over), and the signal that
/// the list is no longer empty: with no run armed the thread sleeps rather than ticks.
struct Runs {
    list: Mutex<Vec<Arc<Watch>>>,
    armed: Condvar,
}

impl Runs {
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Watch>>> {
        // Every update is a single push or retain: a panic cannot leave the list torn.
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, w: Arc<Watch>) {
        let mut list = self.lock();
        list.push(w);
        if list.len() == 1 {
            self.armed.notify_one();
        }
    }

    /// The watchdog thread: every [`TICK`] while any run is armed, stops those past their
    /// deadline.
    fn watch(&self) {
        loop {
            let mut list = self.lock();
            while list.is_empty() {
                list = self
                    .armed
                    .wait(list)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            drop(list);
            std::thread::sleep(TICK);
            let now = Instant::now();
            // Revoked outside the lock: `mprotect` over a large memory takes a while, and new
            // runs arm meanwhile.
            let due: Vec<Arc<Watch>> = {
                let mut list = self.lock();
                list.retain(|w| w.phase.load(Ordering::Acquire) != DONE);
                list.iter().filter(|w| w.deadline <= now).cloned().collect()
            };
            for w in due {
                w.expire();
            }
        }
    }
}

/// Starts (once) the watchdog thread, and returns its list of runs.
fn watchdog() -> &'static Runs {
    static RUNS: Runs = Runs {
        list: Mutex::new(Vec::new()),
        armed: Condvar::new(),
    };
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("palisade-wasm-deadline".into())
            .spawn(|| RUNS.watch());
        // Without the thread no deadline is enforced: runs end only by themselves (or by fuel).
        // Nothing better can be done if the OS refuses a thread.
        drop(spawned);
    });
    &RUNS
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use wasmparser::Operator;

    /// A control frame of the walk in [`Cycles::free_loops`].
    struct Frame {
        is_loop: bool,
        is_if: bool,
        saw_else: bool,
        /// Loops open outside this frame (a loop's own level).
        level: u32,
        /// The state at an `if`, for its `else` (and a missing `else`).
        start: u128,
        /// The states that reach the frame's end label.
        end: u128,
        /// For a loop: its number within the function.
        ordinal: usize,
    }

    /// Whether an operator loads or stores linear memory: every load and store (plain, SIMD,
    /// atomic) carries a `memarg`, and the two bulk instructions touch it too.
    fn touches_memory(op: &Operator<'_>) -> bool {
        matches!(
            op,
            Operator::MemoryCopy { .. } | Operator::MemoryFill { .. }
        ) || format!("{op:?}").contains("memarg")
    }

    /// Finds loops that can go round on plain instructions alone: no load or store of linear
    /// memory, and no call but to a function that itself has neither (a "pure leaf"). A call
    /// to an import is a host call, whose call hook stops a revoked run; a call through a
    /// function pointer counts as touching memory (QuickJS's pointers are in linear memory).
    struct Cycles {
        imported: u32,
        /// Per defined function: no load, store or call anywhere in its body.
        pure_leaf: Vec<bool>,
    }

    impl Cycles {
        fn call_touches(&self, f: u32) -> bool {
            f < self.imported || !self.pure_leaf[(f - self.imported) as usize]
        }

        /// The ordinals (in instruction order) of the body's loops that have such a cycle.
        /// The walk keeps a set of bits: bit `n` says some path from the header of the open
        /// loop at nesting level `n` reached this point without touching memory. Structured
        /// control flow makes one pass enough: a loop's header is reached first from outside,
        /// so its back edges add nothing for the loops around it.
        fn free_loops(&self, body: &wasmparser::FunctionBody<'_>) -> Vec<usize> {
            let frame = |is_loop, is_if, level, start, ordinal| Frame {
                is_loop,
                is_if,
                saw_else: false,
                level,
                start,
                end: 0,
                ordinal,
            };
            let mut stack = vec![frame(false, false, 0, 0, 0)];
            let (mut state, mut loops, mut open) = (0u128, 0usize, 0u32);
            let mut free = Vec::new();
            let mut ops = body.get_operators_reader().expect("a body");
            let branch = |d: u32, state: u128, stack: &mut Vec<Frame>, free: &mut Vec<usize>| {
                let i = stack.len() - 1 - d as usize;
                let f = &mut stack[i];
                if f.is_loop {
                    if state & (1 << f.level) != 0 && !free.contains(&f.ordinal) {
                        free.push(f.ordinal);
                    }
                } else {
                    // Leaving the loops inside the target: their bits mean nothing past it.
                    f.end |= state & ((1u128 << f.level) - 1);
                }
            };
            while !ops.eof() {
                let op = ops.read().expect("an operator");
                match op {
                    Operator::Block { .. } => stack.push(frame(false, false, open, 0, 0)),
                    Operator::If { .. } => stack.push(frame(false, true, open, state, 0)),
                    Operator::Loop { .. } => {
                        assert!(open < 128, "loops nested too deep for the walk");
                        stack.push(frame(true, false, open, 0, loops));
                        state |= 1 << open;
                        loops += 1;
                        open += 1;
                    }
                    Operator::Else => {
                        let f = stack.last_mut().expect("an if");
                        f.end |= state;
                        f.saw_else = true;
                        state = f.start;
                    }
                    Operator::End => {
                        let f = stack.pop().expect("a frame");
                        if f.is_loop {
                            open -= 1;
                            state &= !(1 << f.level);
                        } else {
                            state |= f.end;
                            if f.is_if && !f.saw_else {
                                state |= f.start;
                            }
                        }
                    }
                    Operator::Br { relative_depth } => {
                        branch(relative_depth, state, &mut stack, &mut free);
                        state = 0;
                    }
                    Operator::BrIf { relative_depth } => {
                        branch(relative_depth, state, &mut stack, &mut free);
                    }
                    Operator::BrTable { targets } => {
                        for t in targets.targets() {
                            branch(t.expect("a target"), state, &mut stack, &mut free);
                        }
                        branch(targets.default(), state, &mut stack, &mut free);
                        state = 0;
                    }
                    Operator::Return | Operator::Unreachable => state = 0,
                    Operator::Call { function_index } if self.call_touches(function_index) => {
                        state = 0;
                    }
                    Operator::CallIndirect { .. } => state = 0,
                    Operator::ReturnCall { .. }
                    | Operator::ReturnCallIndirect { .. }
                    | Operator::Try { .. }
                    | Operator::TryTable { .. }
                    | Operator::Catch { .. }
                    | Operator::CatchAll
                    | Operator::Delegate { .. }
                    | Operator::Throw { .. }
                    | Operator::Rethrow { .. }
                    | Operator::ThrowRef => {
                        panic!("tail calls and exceptions are not expected in the guest: {op:?}")
                    }
                    ref other if touches_memory(other) => state = 0,
                    _ => {}
                }
            }
            free
        }
    }

    /// A function's body has no load, store or call.
    fn is_pure_leaf(body: &wasmparser::FunctionBody<'_>) -> bool {
        let mut ops = body.get_operators_reader().expect("a body");
        while !ops.eof() {
            let op = ops.read().expect("an operator");
            if touches_memory(&op)
                || matches!(op, Operator::Call { .. } | Operator::CallIndirect { .. })
            {
                return false;
            }
        }
        true
    }

    /// The guest's functions with a loop that can cycle on plain instructions alone (see
    /// [`Cycles`]), by name, with the loops' numbers in instruction order.
    fn memory_free_cycles(module: &[u8]) -> BTreeMap<String, Vec<usize>> {
        let code = crate::guest::GuestCode::parse(module);
        let cycles = Cycles {
            imported: code.imported,
            pure_leaf: code.bodies.iter().map(is_pure_leaf).collect(),
        };
        let mut out = BTreeMap::new();
        for (i, body) in code.bodies.iter().enumerate() {
            let mut free = cycles.free_loops(body);
            free.sort_unstable();
            if !free.is_empty() {
                out.insert(code.name(i), free);
            }
        }
        out
    }

    /// Every loop of the guest that can go round on plain instructions alone, reviewed: each is
    /// bounded by a constant or by something small, so the deadline's memory revocation stops
    /// the run right after it. Reviewed on 2026-12-02 (a helper mapped each loop to its C code):
    /// - inlined `rqsort`/`heapsortx` (cutils.h) in the first six: the memory-free path of the
    ///   heap build cannot be taken (an index below n/2 has a child), and the insertion sort's
    ///   needs `pi <= ptr` and runs on at most 6 elements;
    /// - `JS_SetPropertyInternal2`: one state hop of the prototype walk; the next state loads;
    /// - `delete_property`, `resize_properties`, `js_object_list_add`: halving or doubling a
    ///   hash size, at most 32 rounds;
    /// - `string_get_tzoffset`: digits of a 128-byte buffer; `get_date_fields`: the year search
    ///   converges in one or two steps;
    /// - `console_method` (glue.c): at most `argc` (65,535) steps once a non-string is seen;
    /// - `js_eq_slow`: a boolean converts to a number at most twice;
    ///   `js_proxy_get_own_property_names`: memory-free only in its first pass;
    ///   `cr_regexp_canonicalize`: ASCII code points only;
    /// - `mul_pow`, `js_dtoa`, `js_atod`: bit and digit loops of number conversion (at most 32,
    ///   or about 20, rounds); `js_bigint_divrem`: the memory-free path needs a one-limb divisor,
    ///   which this path never has;
    /// - musl's `fmod` (at most ~2,100 rounds), `__floatscan`, `hexfloat` and `printf_core`:
    ///   digit loops of at most 9, 13 or 31 rounds, or paths the callers never take.
    ///
    /// `unicode_script` was on this list too: its failure path looped to itself forever, fixed
    /// in the vendored QuickJS-NG (vendor/rquickjs-sys/PALISADE.md). A change of the guest
    /// that adds or moves such a loop fails this test: review it, then update the list.
    ///
    /// What the walk does not see (so the list is a review aid, not a proof): a loop whose only
    /// calls go to functions that touch memory on some paths but may return along others
    /// without, or go through pointers (counting both as touching nothing made the list 118
    /// functions long, mostly `redo:` loops whose back edge follows a conversion that touched
    /// memory); loops Cranelift compiles with
    /// fewer loads than the wasm has (it may reuse a load from before the loop, in a loop with
    /// no stores or calls); and recursion without a loop, which the native stack bounds.
    const REVIEWED: [(&str, &[usize]); 24] = [
        ("JS_GetModuleNamespace", &[7, 12]),
        ("JS_GetOwnPropertyNamesInternal", &[12, 17]),
        ("JS_SetPropertyInternal2", &[2]),
        ("__floatscan", &[2, 3, 7, 8, 16]),
        ("console_method", &[0]),
        ("cr_regexp_canonicalize", &[3]),
        ("cr_sort_and_remove_overlap", &[2, 7]),
        ("delete_property", &[6]),
        ("fmod", &[0, 1, 2, 3]),
        ("get_date_fields", &[0]),
        ("hexfloat", &[3, 4, 5]),
        ("js_async_module_execution_fulfilled", &[2, 7]),
        ("js_atod", &[5, 6]),
        ("js_bigint_divrem", &[14]),
        ("js_dtoa", &[3, 4, 6]),
        ("js_eq_slow", &[0]),
        ("js_object_list_add", &[0]),
        ("js_proxy_get_own_property_names", &[2]),
        ("mul_pow", &[1, 2, 6, 7, 11, 12]),
        ("printf_core", &[24, 25, 26, 28, 30, 45, 46]),
        ("re_emit_string_list", &[4, 9]),
        ("resize_properties", &[0]),
        ("rqsort", &[2, 9]),
        ("string_get_tzoffset", &[1]),
    ];

    /// The phases without memory (length 0, which `set_access` never touches): a deadline in
    /// a host call makes the return trap; one in guest code makes the next host call trap; a
    /// run that ends first is left alone.
    #[test]
    fn issue_3_the_deadline_stops_a_run_in_guest_or_host_code_once() {
        use super::*;
        let late = Watch::new(Instant::now());
        late.hook(CallHook::CallingHost, || 0)
            .expect("into the host");
        late.expire();
        assert!(late.hook(CallHook::ReturningFromHost, || 0).is_err());
        let armed = Armed(late.clone());
        let end = armed.finish();
        assert!(end.timed_out && end.usable);

        let stopped = Watch::new(Instant::now());
        stopped.expire();
        assert_eq!(stopped.phase.load(Ordering::Acquire), STOPPED);
        assert!(stopped.hook(CallHook::CallingHost, || 0).is_err());
        stopped.expire();
        let end = Armed(stopped.clone()).finish();
        assert!(end.timed_out && end.usable);
        assert_eq!(stopped.phase.load(Ordering::Acquire), DONE);

        let on_time = Watch::new(Instant::now());
        on_time
            .hook(CallHook::CallingHost, || 0)
            .expect("into the host");
        on_time
            .hook(CallHook::ReturningFromHost, || 64 << 10)
            .expect("back");
        assert_eq!(on_time.len.load(Ordering::Acquire), 64 << 10);
        let end = Armed(on_time.clone()).finish();
        assert!(!end.timed_out && end.usable);
        // Over: a deadline after the end changes nothing.
        on_time.expire();
        assert_eq!(on_time.phase.load(Ordering::Acquire), DONE);
    }

    #[test]
    fn issue_3_every_loop_of_the_guest_touches_its_memory_but_the_reviewed_ones() {
        let found = memory_free_cycles(crate::guest::GUEST);
        let reviewed: BTreeMap<String, Vec<usize>> = REVIEWED
            .iter()
            .map(|(name, loops)| ((*name).to_owned(), loops.to_vec()))
            .collect();
        assert_eq!(found, reviewed);
    }
}
