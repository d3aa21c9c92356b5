//! A QuickJS heap in one private region at a fixed address, restored byte for byte between runs.
//!
//! Building a QuickJS runtime and context, with Palisade's prelude, primordials and policy, costs
//! a few hundred µs of CPU, most of a trivial run. The wasm engine avoids it with a memory
//! snapshot; this is the native equivalent. Every allocation QuickJS makes for one runtime goes
//! through [`ArenaAllocator`] into an [`Arena`], and so do the allocator's own free lists (a
//! [`Talc`] kept in the arena's first page). Once the runtime is built, [`Arena::seal`] copies the
//! used part of the region aside; after each run [`Arena::restore`] copies it back. Since pointers
//! are absolute and the region never moves, the heap is then exactly as it was before the run:
//! every object, refcount, atom, shape, the job queue and the allocator's own state.
//!
//! What lives outside the region (rquickjs's Rust-side runtime data, the host closures' boxes)
//! must be kept consistent by the caller; `crate::snapshot` states and keeps those rules.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;

use rquickjs::allocator::Allocator;
use talc::base::Talc;
use talc::source::Manual;
use talc::DefaultBinning;

use super::Meter;

/// Address space reserved per arena: the largest memory limit a request may set (16 GiB), the
/// grace past it, and room for fragmentation. Reserved, not committed (`MAP_NORESERVE`).
const RESERVE: usize = 32 << 30;
/// Where the heap starts: after the page that holds [`Header`].
const HEAP_OFFSET: usize = 4096;
/// The heap grows in steps of this much (rounded up to fit the allocation that needs it). Small,
/// because the sealed part of the heap is what a restore copies.
const GROW_STEP: usize = 32 << 10;
/// A run that grew the heap by more than this beyond the sealed part gives those pages back to
/// the kernel after the restore; smaller growth stays resident for the next run.
const RELEASE_AFTER: usize = 1 << 20;
/// Bytes before each allocation recording its size (QuickJS asks for usable sizes), keeping the
/// payload 16-byte aligned.
const HDR: usize = 16;
const ALIGN: usize = 16;

/// The arena's first page: the allocator's state, restored with the heap.
struct Header {
    talc: Talc<Manual, DefaultBinning>,
    heap_end: NonNull<u8>,
}

/// One reserved region and, once sealed, the copy it is restored from. Owned by one thread.
pub(crate) struct Arena {
    base: NonNull<u8>,
    template: Vec<u8>,
    /// Which sealed pages a run wrote, when the kernel can say (see [`dirty`]); without it a
    /// restore copies every sealed page.
    dirty: Option<dirty::Tracker>,
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("base", &self.base)
            .field("sealed", &self.template.len())
            .finish()
    }
}

impl Arena {
    /// Reserves a region and sets up its allocator; `None` if the address space cannot be had.
    pub(crate) fn reserve() -> Option<Arena> {
        // SAFETY: an anonymous private mapping at an address the kernel picks; no existing
        // memory is affected. The result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                RESERVE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        let base = NonNull::new(p.cast::<u8>())?;
        let arena = Arena {
            base,
            template: Vec::new(),
            dirty: None,
        };
        // Page-sized tracking needs page-sized mappings: no transparent huge pages here.
        // SAFETY: advice on the mapping just created; it changes no contents.
        unsafe { libc::madvise(p, RESERVE, libc::MADV_NOHUGEPAGE) };
        let mut talc = Talc::new(Manual);
        // SAFETY: [HEAP_OFFSET, HEAP_OFFSET + GROW_STEP) lies inside the fresh mapping, which
        // nothing else uses; the allocator owns it from now on.
        let end = unsafe { talc.claim(base.as_ptr().add(HEAP_OFFSET), GROW_STEP) }?;
        let header = Header {
            talc,
            heap_end: end,
        };
        // SAFETY: the mapping starts page-aligned and is writable; the header fits in the first
        // page (checked at compile time below), before the heap.
        unsafe { arena.header().write(header) };
        Some(arena)
    }

    fn header(&self) -> *mut Header {
        self.base.as_ptr().cast::<Header>()
    }

    /// The allocator QuickJS uses for the runtime built in this arena.
    pub(crate) fn allocator(&self, meter: Arc<Meter>) -> ArenaAllocator {
        ArenaAllocator {
            header: self.header(),
            // SAFETY: RESERVE is the mapping's length: this is its end.
            limit: unsafe { self.base.as_ptr().add(RESERVE) },
            meter,
        }
    }

    /// The heap's current end (the part a restore must cover).
    fn heap_end(&self) -> *mut u8 {
        // SAFETY: the header was written by `reserve` and is only touched by this thread (the
        // arena and its allocator are used by the thread that owns them).
        unsafe { (*self.header()).heap_end.as_ptr() }
    }

    /// Copies the used part of the region aside: the state every later run starts from.
    pub(crate) fn seal(&mut self) {
        let len = self.heap_end() as usize - self.base.as_ptr() as usize;
        // SAFETY: [base, heap_end) is mapped, initialised where the allocator wrote it, and read
        // as plain bytes (pages never written read as zeros).
        self.template = unsafe { std::slice::from_raw_parts(self.base.as_ptr(), len) }.to_vec();
        self.dirty = dirty::Tracker::start(self.base, len);
    }

    /// How many bytes a restore copies.
    #[cfg(test)]
    pub(crate) fn sealed_len(&self) -> usize {
        self.template.len()
    }

    /// Puts the region back as it was when sealed. No pointer into the arena obtained during the
    /// run may be used afterwards (the caller guarantees it: see `crate::snapshot`).
    pub(crate) fn restore(&mut self) {
        if self.template.is_empty() {
            return;
        }
        let grown_to = self.heap_end() as usize;
        let written = self.dirty.as_mut().and_then(dirty::Tracker::written);
        match written {
            Some(pages) => {
                for range in &pages {
                    let end = range.end.min(self.template.len());
                    let start = range.start.min(end);
                    // SAFETY: [start, end) lies within the sealed length: mapped, owned by this
                    // arena, and not referenced by anything while no run is in progress.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            self.template.as_ptr().add(start),
                            self.base.as_ptr().add(start),
                            end - start,
                        )
                    };
                }
                let copied = dirty::page_count(&pages);
                if self
                    .dirty
                    .as_mut()
                    .is_some_and(|t| t.restored(copied).is_err())
                {
                    self.dirty = None;
                }
            }
            None => {
                self.dirty = None;
                // SAFETY: the template is a copy of [base, base + len), all of which is still
                // mapped and owned by this arena; nothing else references the bytes being
                // overwritten (no run is in progress).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        self.template.as_ptr(),
                        self.base.as_ptr(),
                        self.template.len(),
                    )
                };
            }
        }
        let sealed_end = self.base.as_ptr() as usize + self.template.len();
        let from = sealed_end.next_multiple_of(4096);
        if grown_to > from + RELEASE_AFTER {
            // SAFETY: [from, grown_to) is page-aligned at its start, inside the mapping, and past
            // the restored heap's end, so the allocator no longer owns anything there;
            // MADV_DONTNEED just drops those pages (they read as zeros if touched again).
            unsafe {
                libc::madvise(
                    from as *mut libc::c_void,
                    grown_to - from,
                    libc::MADV_DONTNEED,
                )
            };
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by `reserve` with this length and is unmapped once;
        // whoever owned the runtime inside was dropped before the arena (see crate::snapshot).
        unsafe { libc::munmap(self.base.as_ptr().cast(), RESERVE) };
    }
}

/// Which sealed pages a run wrote, from the kernel (Linux 6.7+): the sealed range is registered
/// with a userfaultfd in asynchronous write-protect mode, so the first write to a protected page
/// only drops its protection (in the kernel, no signal and no round trip to user space), and
/// `PAGEMAP_SCAN` then lists the pages without protection.
///
/// A `1+1` run writes about 13 of the ~97 sealed pages; copying those instead of all of them was
/// most of what a restore cost. Pages a run wrote stay unprotected ("hot") and are copied after
/// every run, so steady traffic takes no faults at all. One unusual run (a garbage collection
/// touches every object) makes most pages hot, so the whole range is protected again once the
/// restores since the last protection have copied [`EXCESS`] pages more than a light run
/// writes (~70 runs after a collection left every page hot), and in any case every [`DECAY`]
/// restores. A light run's pages are the fewest the first restore after a protection ever
/// copied; until a light run has been seen (the first run after sealing was heavy), only
/// [`DECAY`] applies. Each protection costs the next run a fault per page it writes; the budget
/// bounds what copying the extra pages may cost before that is paid. Any failure (an older
/// kernel, a refused system call) drops the tracker, and restores copy everything.
mod dirty {
    use std::fs::File;
    use std::io;
    use std::ops::Range;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::ptr::NonNull;

    const PAGE: usize = 4096;
    /// Restores between two re-protections of the whole range.
    pub(super) const DECAY: u32 = 4096;
    /// Page copies beyond a light run's, since the range was last protected, that make
    /// protecting it again worth it now rather than at the next [`DECAY`] (16 MiB copied).
    pub(super) const EXCESS: usize = 4096;

    /// Whole pages in `ranges` (byte ranges, as [`Tracker::written`] returns them).
    pub(super) fn page_count(ranges: &[Range<usize>]) -> usize {
        ranges.iter().map(|r| r.len().div_ceil(PAGE)).sum()
    }

    // <linux/userfaultfd.h> (the installed headers may predate WP_ASYNC) and <linux/fs.h>.
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    const UFFD_API: u64 = 0xAA;
    const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
    const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
    const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
    const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
    const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
    const UFFDIO_WRITEPROTECT: libc::c_ulong = 0xC018_AA06;
    const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;
    const PAGE_IS_WRITTEN: u64 = 1 << 1;

    #[repr(C)]
    struct UffdioApi {
        api: u64,
        features: u64,
        ioctls: u64,
    }

    #[repr(C)]
    struct UffdioRange {
        start: u64,
        len: u64,
    }

    #[repr(C)]
    struct UffdioRegister {
        range: UffdioRange,
        mode: u64,
        ioctls: u64,
    }

    #[repr(C)]
    struct UffdioWriteprotect {
        range: UffdioRange,
        mode: u64,
    }

    #[repr(C)]
    struct PmScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct PageRegion {
        start: u64,
        end: u64,
        categories: u64,
    }

    const _: () = assert!(std::mem::size_of::<UffdioApi>() == 0x18);
    const _: () = assert!(std::mem::size_of::<UffdioRegister>() == 0x20);
    const _: () = assert!(std::mem::size_of::<UffdioWriteprotect>() == 0x18);
    const _: () = assert!(std::mem::size_of::<PmScanArg>() == 0x60);

    pub(super) struct Tracker {
        uffd: OwnedFd,
        pagemap: File,
        base: usize,
        /// The sealed length rounded up to whole pages.
        len: usize,
        regions: Vec<PageRegion>,
        restores: u32,
        /// The fewest pages the first restore after a protection has copied: what a light run
        /// writes.
        light: Option<usize>,
        /// Whether the next restore is the first since the last protection.
        fresh: bool,
        /// Pages copied beyond `light` since the last protection.
        excess: usize,
        /// The process that registered the range. A child made by `fork` inherits the arena
        /// but neither the registration nor its own pagemap: its `pagemap` descriptor would
        /// describe the parent's pages. It must copy everything instead.
        pub(super) pid: u32,
    }

    fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }

    impl Tracker {
        /// Tracks writes to [base, base + len), protecting all of it now; `None` where the
        /// kernel cannot.
        pub(super) fn start(base: NonNull<u8>, len: usize) -> Option<Tracker> {
            let len = len.next_multiple_of(PAGE);
            // SAFETY: userfaultfd(2) with flags only; the result is checked.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_userfaultfd,
                    libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY,
                )
            };
            let fd = libc::c_int::try_from(fd).ok().filter(|fd| *fd >= 0)?;
            // SAFETY: `fd` is a descriptor the kernel just opened for us and nothing else owns.
            let uffd = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut api = UffdioApi {
                api: UFFD_API,
                features: UFFD_FEATURE_WP_ASYNC,
                ioctls: 0,
            };
            // SAFETY: UFFDIO_API with a valid, writable uffdio_api.
            check(unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_API, &mut api) }).ok()?;
            let mut register = UffdioRegister {
                range: UffdioRange {
                    start: base.as_ptr() as u64,
                    len: len as u64,
                },
                mode: UFFDIO_REGISTER_MODE_WP,
                ioctls: 0,
            };
            // SAFETY: registers a page-aligned range of this arena's private anonymous mapping
            // (base is page-aligned; len is whole pages within the reservation).
            check(unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_REGISTER, &mut register) }).ok()?;
            let pagemap = File::open("/proc/self/pagemap").ok()?;
            let mut t = Tracker {
                uffd,
                pagemap,
                base: base.as_ptr() as usize,
                len,
                regions: vec![PageRegion::default(); len / PAGE],
                restores: 0,
                light: None,
                fresh: true,
                excess: 0,
                pid: std::process::id(),
            };
            t.protect_all().ok()?;
            // One scan now: if the kernel cannot scan, do not track at all.
            t.scan().ok()?;
            Some(t)
        }

        fn protect_all(&mut self) -> io::Result<()> {
            let mut wp = UffdioWriteprotect {
                range: UffdioRange {
                    start: self.base as u64,
                    len: self.len as u64,
                },
                mode: UFFDIO_WRITEPROTECT_MODE_WP,
            };
            // SAFETY: write-protects the registered range; contents are unchanged.
            check(unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_WRITEPROTECT, &mut wp) })
                .map(drop)
        }

        /// The written (unprotected) pages, as regions of `self.regions`.
        fn scan(&mut self) -> io::Result<usize> {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                flags: 0,
                start: self.base as u64,
                end: (self.base + self.len) as u64,
                walk_end: 0,
                vec: self.regions.as_mut_ptr() as u64,
                vec_len: self.regions.len() as u64,
                max_pages: 0,
                category_inverted: 0,
                category_mask: PAGE_IS_WRITTEN,
                category_anyof_mask: 0,
                return_mask: PAGE_IS_WRITTEN,
            };
            // SAFETY: PAGEMAP_SCAN reads page tables of our own range and writes at most
            // vec_len regions into `self.regions`, which has that many.
            let n =
                check(unsafe { libc::ioctl(self.pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg) })?;
            // Every region is at least a page, so the vector cannot fill before the walk ends.
            if arg.walk_end != arg.end {
                return Err(io::Error::other("PAGEMAP_SCAN stopped early"));
            }
            Ok(usize::try_from(n).unwrap_or(0))
        }

        /// Byte ranges (from the arena's base) of the sealed pages written since they were
        /// last protected: what a restore must copy. `None` if the kernel could not say (the
        /// caller then copies everything and stops tracking).
        pub(super) fn written(&mut self) -> Option<Vec<Range<usize>>> {
            if std::process::id() != self.pid {
                return None;
            }
            let n = self.scan().ok()?;
            let ranges = self.regions[..n.min(self.regions.len())]
                .iter()
                .map(|r| {
                    let start = (r.start as usize).saturating_sub(self.base);
                    let end = (r.end as usize).saturating_sub(self.base).min(self.len);
                    start..end
                })
                .collect();
            Some(ranges)
        }

        /// Called once the `copied` written pages were copied back; protects the whole range
        /// again every [`DECAY`] restores, or sooner once the restores since the last
        /// protection copied [`EXCESS`] pages more than a light run would have (each page then
        /// holds its sealed bytes, so nothing is lost).
        pub(super) fn restored(&mut self, copied: usize) -> io::Result<()> {
            self.restores = self.restores.wrapping_add(1);
            if std::mem::take(&mut self.fresh) {
                self.light = Some(self.light.map_or(copied, |l| l.min(copied)));
            }
            let light = self.light.unwrap_or(copied);
            self.excess = self.excess.saturating_add(copied.saturating_sub(light));
            if self.restores.is_multiple_of(DECAY) || self.excess >= EXCESS {
                self.protect_all()?;
                self.fresh = true;
                self.excess = 0;
            }
            Ok(())
        }

        /// Pages the next restore will copy (for tests).
        #[cfg(test)]
        pub(super) fn hot_pages(&mut self) -> usize {
            self.written().map_or(0, |r| page_count(&r))
        }
    }
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEAP_OFFSET);

/// QuickJS's allocator for a runtime built in an [`Arena`], metered like
/// [`super::MeteredAllocator`].
pub(crate) struct ArenaAllocator {
    header: *mut Header,
    limit: *mut u8,
    meter: Arc<Meter>,
}

// SAFETY: the allocator is only ever called on the thread that owns the arena (the runtime built
// over it stays in that thread's snapshot slot); rquickjs's `parallel` feature only needs the
// type to be movable there once, which moves no arena state.
unsafe impl Send for ArenaAllocator {}

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HDR)?, ALIGN).ok()
}

impl ArenaAllocator {
    /// Allocates `size` bytes (not metered), growing the heap if needed; null if it cannot.
    fn raw_alloc(&mut self, size: usize) -> *mut u8 {
        let Some(layout) = layout(size) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `header` points at the arena's live header, used by this thread only.
        let h = unsafe { &mut *self.header };
        for _ in 0..2 {
            // SAFETY: the layout's size is non-zero (it includes the header).
            if let Some(p) = unsafe { h.talc.try_allocate(layout) } {
                // SAFETY: `p` is a fresh block of at least HDR + size bytes, 16-aligned.
                unsafe {
                    p.as_ptr().cast::<usize>().write(size);
                    return p.as_ptr().add(HDR);
                }
            }
            // Grow by enough for this allocation plus the allocator's own tags.
            let want = layout.size().saturating_add(4 * talc::base::CHUNK_UNIT);
            let step = want.next_multiple_of(GROW_STEP);
            let end = h.heap_end.as_ptr();
            if (self.limit as usize).saturating_sub(end as usize) < step {
                return std::ptr::null_mut();
            }
            // SAFETY: [end, end + step) is inside the mapping (checked above) and unclaimed.
            h.heap_end = unsafe { h.talc.extend(h.heap_end, end.add(step)) };
        }
        std::ptr::null_mut()
    }

    fn size_of(ptr: *mut u8) -> usize {
        // SAFETY: callers pass a live payload pointer from `raw_alloc`; its size is the word
        // HDR bytes before it.
        unsafe { ptr.sub(HDR).cast::<usize>().read() }
    }

    /// Frees a payload pointer from `raw_alloc` (not metered).
    ///
    /// # Safety
    /// `ptr` came from `raw_alloc` on this arena and is freed once.
    unsafe fn raw_free(&mut self, ptr: *mut u8) {
        let size = Self::size_of(ptr);
        if let Some(l) = layout(size) {
            // SAFETY: the block starts HDR before the payload and was allocated with `l`.
            unsafe { (*self.header).talc.deallocate(ptr.sub(HDR), l) };
        }
    }
}

// SAFETY: every non-null pointer returned is the payload of a live block of the arena, 16-byte
// aligned and at least the requested size; `usable_size` reports the recorded size.
unsafe impl Allocator for ArenaAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if size == 0 || !self.meter.admit(size) {
            return std::ptr::null_mut();
        }
        let p = self.raw_alloc(size);
        if p.is_null() {
            self.meter.exhausted(size);
        } else {
            self.meter.add(size);
        }
        p
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        let p = self.alloc(total);
        if !p.is_null() {
            // SAFETY: `p` is a fresh block of `total` bytes.
            unsafe { std::ptr::write_bytes(p, 0, total) };
        }
        p
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        self.meter.sub(Self::size_of(ptr));
        // SAFETY: the caller guarantees `ptr` came from this allocator and is freed once.
        unsafe { self.raw_free(ptr) };
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        if new_size == 0 {
            // As glibc's realloc(p, 0): frees and returns null.
            // SAFETY: as `dealloc`.
            unsafe { self.dealloc(ptr) };
            return std::ptr::null_mut();
        }
        let old = Self::size_of(ptr);
        if new_size > old && !self.meter.admit(new_size - old) {
            return std::ptr::null_mut();
        }
        let (Some(old_layout), Some(new_layout)) = (layout(old), layout(new_size)) else {
            return std::ptr::null_mut();
        };
        // SAFETY: the block at ptr - HDR was allocated with `old_layout`; on success it now
        // spans `new_layout.size()` bytes in place.
        let in_place = unsafe {
            (*self.header)
                .talc
                .try_realloc_in_place(ptr.sub(HDR), old_layout, new_layout.size())
        };
        if in_place {
            // SAFETY: the block's header word is still ours.
            unsafe { ptr.sub(HDR).cast::<usize>().write(new_size) };
            self.meter.sub(old);
            self.meter.add(new_size);
            return ptr;
        }
        let new = self.raw_alloc(new_size);
        if new.is_null() {
            self.meter.exhausted(new_size - old.min(new_size));
            return std::ptr::null_mut();
        }
        // SAFETY: both blocks are live and distinct; min(old, new) bytes are valid in each.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr, new, old.min(new_size));
            self.raw_free(ptr);
        }
        self.meter.sub(old);
        self.meter.add(new_size);
        new
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        if ptr.is_null() {
            0
        } else {
            Self::size_of(ptr)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_grows_and_restores() {
        let mut arena = Arena::reserve().expect("address space");
        let meter = Meter::new();
        let mut a = arena.allocator(meter.clone());
        let keep = a.alloc(100);
        assert!(!keep.is_null());
        // SAFETY: a live 100-byte block.
        unsafe { keep.write_bytes(7, 100) };
        arena.seal();
        let sealed = arena.sealed_len();
        // A run: frees the kept block, grows well past the sealed part, writes everywhere.
        // SAFETY: `keep` is live and freed once.
        unsafe { a.dealloc(keep) };
        let mut blocks = Vec::new();
        for i in 0..64 {
            let p = a.alloc(64 << 10);
            assert!(!p.is_null(), "block {i}");
            // SAFETY: a live 64 KiB block.
            unsafe { p.write_bytes(1, 64 << 10) };
            blocks.push(p);
        }
        // SAFETY: blocks[0] is live; realloc takes it over.
        let big = unsafe { a.realloc(blocks[0], 3 << 20) };
        assert!(!big.is_null());
        assert!(meter.used() > (3 << 20));
        arena.restore();
        assert_eq!(arena.sealed_len(), sealed);
        // The kept block is back, with its bytes, and allocation works as before the run.
        // SAFETY: the block is live again in the restored heap.
        unsafe {
            assert_eq!(ArenaAllocator::usable_size(keep), 100);
            assert_eq!(keep.read(), 7);
        }
        let again = a.alloc(64 << 10);
        assert!(!again.is_null());
    }

    #[test]
    fn every_write_to_the_sealed_pages_is_undone_with_or_without_tracking() {
        let mut arena = Arena::reserve().expect("address space");
        let meter = Meter::new();
        let mut a = arena.allocator(meter);
        // About 100 pages of sealed heap with a known pattern.
        let mut blocks = Vec::new();
        for i in 0..100usize {
            let p = a.alloc(4000);
            // SAFETY: a live 4000-byte block.
            unsafe { p.write_bytes(i as u8, 4000) };
            blocks.push(p);
        }
        arena.seal();
        let tracked = arena.dirty.is_some();
        eprintln!("kernel write tracking: {tracked}");
        let len = arena.template.len();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        // Past DECAY restores, so the periodic re-protection is exercised too; the rounds that
        // write 400 times make every page hot, so the early one (EXCESS) runs as well.
        for round in 0..(dirty::DECAY as usize + 300) {
            // A few writes to pseudo-random sealed bytes, sometimes many.
            let writes = if round % 97 == 0 { 400 } else { 3 };
            for _ in 0..writes {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let off = HEAP_OFFSET + (x as usize) % (len - HEAP_OFFSET);
                // SAFETY: inside the sealed, mapped range.
                unsafe { arena.base.as_ptr().add(off).write(!(round as u8)) };
            }
            arena.restore();
            // SAFETY: the sealed range is mapped and no run is in progress.
            let now = unsafe { std::slice::from_raw_parts(arena.base.as_ptr(), len) };
            assert!(now == arena.template.as_slice(), "round {round}");
        }
        assert_eq!(arena.dirty.is_some(), tracked, "tracking failed midway");
        if let Some(t) = arena.dirty.as_mut() {
            // As in a child made by fork: the tracker is dropped and everything is copied.
            t.pid = 0;
            // SAFETY: inside the sealed, mapped range.
            unsafe { arena.base.as_ptr().add(len - 1).write(0x5a) };
            arena.restore();
            assert!(arena.dirty.is_none());
            // SAFETY: the sealed range is mapped and no run is in progress.
            let now = unsafe { std::slice::from_raw_parts(arena.base.as_ptr(), len) };
            assert!(now == arena.template.as_slice());
        }
    }

    /// A heavy run (every sealed page written) makes every page hot; the light runs after it
    /// must soon copy only their own pages again: within the runs that copying [`dirty::EXCESS`]
    /// extra pages takes, once a light run has been seen, even in a later protection cycle.
    #[test]
    fn pages_a_heavy_run_made_hot_are_protected_again_soon() {
        let mut arena = Arena::reserve().expect("address space");
        let meter = Meter::new();
        let mut a = arena.allocator(meter);
        for _ in 0..100 {
            let p = a.alloc(4000);
            // SAFETY: a live 4000-byte block.
            unsafe { p.write_bytes(7, 4000) };
        }
        arena.seal();
        if arena.dirty.is_none() {
            eprintln!("no kernel write tracking here: nothing to check");
            return;
        }
        let len = arena.template.len();
        let light_pages = [HEAP_OFFSET, HEAP_OFFSET + 8192, HEAP_OFFSET + 40960];
        // One run and its restore: how many pages were hot before the restore, and whether the
        // restore protected the whole range again (no page hot after it).
        let run = |arena: &mut Arena, heavy: bool| -> (usize, bool) {
            let offsets: Vec<usize> = if heavy {
                (HEAP_OFFSET..len).step_by(4096).collect()
            } else {
                light_pages.to_vec()
            };
            for off in offsets {
                // SAFETY: inside the sealed, mapped range; no run is in progress.
                unsafe { arena.base.as_ptr().add(off).write(0xa5) };
            }
            let tracker = arena.dirty.as_mut().expect("tracking");
            let hot = tracker.hot_pages();
            arena.restore();
            let protected = arena.dirty.as_mut().expect("tracking").hot_pages() == 0;
            // SAFETY: the sealed range is mapped and no run is in progress.
            let now = unsafe { std::slice::from_raw_parts(arena.base.as_ptr(), len) };
            assert!(now == arena.template.as_slice());
            (hot, protected)
        };
        // Light runs until the range is protected again, at most `limit` of them.
        let settle = |arena: &mut Arena, limit: usize, case: &str| {
            for n in 1..=limit {
                let (hot, protected) = run(arena, false);
                assert!(
                    hot > light_pages.len(),
                    "{case}: the heavy run's pages were not hot"
                );
                if protected {
                    return;
                }
                assert!(n < limit, "{case}: still hot after {n} light runs");
            }
        };
        // The first run after sealing is heavy: no light run seen yet, so only the periodic
        // protection helps, DECAY restores later.
        let (all, _) = run(&mut arena, true);
        assert!(all >= 90, "{all} pages hot after writing every page");
        settle(&mut arena, dirty::DECAY as usize, "first after sealing");
        // A light run teaches the tracker; then a heavy run between light ones is protected
        // again after ~EXCESS / 100 = 41 light runs, not DECAY.
        for _ in 0..3 {
            assert_eq!(run(&mut arena, false).0, light_pages.len());
        }
        run(&mut arena, true);
        settle(&mut arena, 100, "between light runs");
        // And a heavy run that is the very first after a protection: the light size is kept.
        run(&mut arena, true);
        settle(&mut arena, 100, "first after a protection");
        assert!(arena.dirty.is_some(), "tracking failed midway");
    }

    #[test]
    fn an_allocation_past_the_reservation_fails_and_latches() {
        let arena = Arena::reserve().expect("address space");
        let meter = Meter::new();
        let mut a = arena.allocator(meter.clone());
        assert!(a.alloc(RESERVE).is_null());
        assert!(meter.hit());
    }
}
