/* memcpy, memmove and memset for the guest, as plain loops of loads and stores.
 *
 * The whole guest is built without bulk memory, and this file with -fno-builtin as well, so that
 * no copy or fill becomes a `memory.copy` or `memory.fill`: Wasmtime runs those as calls into
 * host code, outside the guest's own instructions. The deadline stops a run by revoking access
 * to its linear memory (see ARCHITECTURE.md, "The deadline"); the guest's next load or store
 * then traps, but a host-side copy into revoked memory would be a fault in the host, so the
 * guest must touch its memory only through its own instructions (the unit tests check the
 * module has neither instruction). A copy or fill of any size thus stops at its deadline like
 * any other loop: `new ArrayBuffer(2**30)` zero-fills 1 GiB of fresh pages. */
#include <stddef.h>
#include <stdint.h>

/* Unaligned words: wasm allows any alignment, and x86-64 loads them at full speed. */
typedef uint64_t __attribute__((aligned(1), may_alias)) pal_u64;
typedef uint32_t __attribute__((aligned(1), may_alias)) pal_u32;
typedef uint16_t __attribute__((aligned(1), may_alias)) pal_u16;

#define LD64(p) (*(const pal_u64 *)(p))
#define ST64(p, v) (*(pal_u64 *)(p) = (v))

/* Fewer than 32 bytes, without a loop: two (or four) words that overlap in the middle. Every
 * load comes before any store, so source and destination may overlap either way. */
static inline __attribute__((always_inline)) void pal_small(unsigned char *d,
                                                             const unsigned char *s, size_t n)
{
    if (n >= 16) {
        uint64_t a = LD64(s), b = LD64(s + 8), c = LD64(s + n - 16), e = LD64(s + n - 8);
        ST64(d, a);
        ST64(d + 8, b);
        ST64(d + n - 16, c);
        ST64(d + n - 8, e);
    } else if (n >= 8) {
        uint64_t a = LD64(s), b = LD64(s + n - 8);
        ST64(d, a);
        ST64(d + n - 8, b);
    } else if (n >= 4) {
        uint32_t a = *(const pal_u32 *)s, b = *(const pal_u32 *)(s + n - 4);
        *(pal_u32 *)d = a;
        *(pal_u32 *)(d + n - 4) = b;
    } else if (n >= 2) {
        uint16_t a = *(const pal_u16 *)s, b = *(const pal_u16 *)(s + n - 2);
        *(pal_u16 *)d = a;
        *(pal_u16 *)(d + n - 2) = b;
    } else if (n == 1) {
        *d = *s;
    }
}

/* Forwards: each step loads its 32 bytes before storing any, and a later step reads only bytes
 * at or above those it writes, so this is right for any dst <= src. The rest (under 32 bytes)
 * is one `pal_small` over exactly the bytes not yet copied. */
static void pal_forwards(unsigned char *d, const unsigned char *s, size_t n)
{
    while (n >= 32) {
        uint64_t a = LD64(s), b = LD64(s + 8), c = LD64(s + 16), e = LD64(s + 24);
        ST64(d, a);
        ST64(d + 8, b);
        ST64(d + 16, c);
        ST64(d + 24, e);
        d += 32;
        s += 32;
        n -= 32;
    }
    pal_small(d, s, n);
}

/* Backwards, for dst > src, by the same argument mirrored. */
static void pal_backwards(unsigned char *d, const unsigned char *s, size_t n)
{
    while (n >= 32) {
        n -= 32;
        uint64_t a = LD64(s + n), b = LD64(s + n + 8), c = LD64(s + n + 16), e = LD64(s + n + 24);
        ST64(d + n, a);
        ST64(d + n + 8, b);
        ST64(d + n + 16, c);
        ST64(d + n + 24, e);
    }
    pal_small(d, s, n);
}

void *memmove(void *dst, const void *src, size_t n)
{
    if (n < 32)
        pal_small(dst, src, n);
    else if ((uintptr_t)dst <= (uintptr_t)src)
        pal_forwards(dst, src, n);
    else
        pal_backwards(dst, src, n);
    return dst;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    if (n < 32)
        pal_small(dst, src, n);
    else
        pal_forwards(dst, src, n);
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    uint64_t w = (uint64_t)(unsigned char)c * 0x0101010101010101ull;
    if (n >= 32) {
        while (n >= 32) {
            ST64(d, w);
            ST64(d + 8, w);
            ST64(d + 16, w);
            ST64(d + 24, w);
            d += 32;
            n -= 32;
        }
    }
    if (n >= 16) {
        ST64(d, w);
        ST64(d + 8, w);
        ST64(d + n - 16, w);
        ST64(d + n - 8, w);
    } else if (n >= 8) {
        ST64(d, w);
        ST64(d + n - 8, w);
    } else if (n >= 4) {
        *(pal_u32 *)d = (uint32_t)w;
        *(pal_u32 *)(d + n - 4) = (uint32_t)w;
    } else if (n >= 2) {
        *(pal_u16 *)d = (uint16_t)w;
        *(pal_u16 *)(d + n - 2) = (uint16_t)w;
    } else if (n == 1) {
        *d = (unsigned char)c;
    }
    return dst;
}
