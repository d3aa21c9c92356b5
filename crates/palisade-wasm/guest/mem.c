/* memcpy, memmove and memset for the guest, in chunks.
 *
 * Built with bulk memory (one `memory.copy`/`memory.fill` per chunk); everything else in the
 * guest is built without it, so every copy or fill whose size is not a small constant calls
 * these. Wasmtime runs a `memory.copy` or `memory.fill` as one call into the host that no
 * deadline interrupts: a guest's `new ArrayBuffer(2**30)` (a zero-fill that faults in 1 GiB of
 * fresh pages) went on for 0.8 s past a 100 ms timeout, and the service killed its worker.
 * Between chunks the loop's header checks the epoch, so a run stops within one chunk (about a
 * millisecond) of its deadline, as it does in any other loop. */
#include <stddef.h>
#include <stdint.h>

#define PAL_CHUNK ((size_t)1 << 20)

/* Keeps the compiler from merging the chunks back into one copy (loop idiom recognition). */
#define PAL_BARRIER() __asm__ volatile("" ::: "memory")

/* One chunk per loop iteration: unrolled, the epoch would be checked only every few chunks. */
#define PAL_ONE_CHUNK_PER_ITERATION _Pragma("clang loop unroll(disable)")

/* memmove and memcpy both. Not memcpy calling memmove: clang reads that call as the builtin, and
 * with memcpy's restrict pointers made it one `memory.copy` of the whole size. */
static inline __attribute__((always_inline)) void *pal_move(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if ((uintptr_t)d <= (uintptr_t)s) {
        /* Forwards: a chunk's writes reach no source byte a later chunk reads. */
        PAL_ONE_CHUNK_PER_ITERATION
        while (n > PAL_CHUNK) {
            __builtin_memmove(d, s, PAL_CHUNK);
            PAL_BARRIER();
            d += PAL_CHUNK;
            s += PAL_CHUNK;
            n -= PAL_CHUNK;
        }
        __builtin_memmove(d, s, n);
    } else {
        /* Backwards, for the same reason. */
        PAL_ONE_CHUNK_PER_ITERATION
        while (n > PAL_CHUNK) {
            n -= PAL_CHUNK;
            __builtin_memmove(d + n, s + n, PAL_CHUNK);
            PAL_BARRIER();
        }
        __builtin_memmove(d, s, n);
    }
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    return pal_move(dst, src, n);
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    return pal_move(dst, src, n);
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    PAL_ONE_CHUNK_PER_ITERATION
    while (n > PAL_CHUNK) {
        __builtin_memset(d, c, PAL_CHUNK);
        PAL_BARRIER();
        d += PAL_CHUNK;
        n -= PAL_CHUNK;
    }
    __builtin_memset(d, c, n);
    return dst;
}
