/*
 * Palisade's guest glue: QuickJS-NG compiled for wasm32-wasi, exposing one purpose-built ABI to
 * the Wasmtime host (crates/palisade-wasm/src). No quickjs-libc: no std, os, print, files or
 * network. Everything the guest can reach outside itself goes through the `palisade.*` imports
 * below.
 *
 * Unity build: quickjs.c is included so the glue can set the runtime's stack limit (QuickJS-NG
 * 0.16.2 sets none on WASI) and reseed Math.random per instance (a snapshot bakes its state in).
 *
 * Life of an instance:
 *   1. `wizer-initialize` (run once by the host, then snapshotted): runtime + context, the
 *      primordials, console, formatter, host prelude and default policy, all from texts the
 *      host supplies (so the guest binary does not change when palisade-core's JS does).
 *   2. `pal_run` (once per fresh copy-on-write instance): applies the run's policy, compiles
 *      and runs the request, awaits and drains, converts the result, and reports it through
 *      `palisade.report`. The instance is then discarded.
 */
/* QuickJS-NG leaves out Atomics on WASI (it has no threads). The guest is single-threaded and
 * its runtime cannot block (Atomics.wait throws), so Atomics works with no-op locks, as the
 * native engine's does. */
#include "cutils.h"
#include "quickjs-c-atomics.h"
#define CONFIG_ATOMICS
typedef int js_mutex_t;
typedef int js_cond_t;
typedef int js_once_t;
#define JS_ONCE_INIT 0
static inline void js_once(js_once_t *guard, void (*callback)(void))
{
    if (!*guard) {
        *guard = 1;
        callback();
    }
}
static inline void js_mutex_init(js_mutex_t *m) { (void)m; }
static inline void js_mutex_lock(js_mutex_t *m) { (void)m; }
static inline void js_mutex_unlock(js_mutex_t *m) { (void)m; }
static inline void js_cond_init(js_cond_t *c) { (void)c; }
static inline void js_cond_destroy(js_cond_t *c) { (void)c; }
static inline void js_cond_signal(js_cond_t *c) { (void)c; }
static inline void js_cond_wait(js_cond_t *c, js_mutex_t *m) { (void)c; (void)m; }
static inline int js_cond_timedwait(js_cond_t *c, js_mutex_t *m, uint64_t t)
{
    (void)c;
    (void)m;
    (void)t;
    return -1;
}

/* QuickJS measures its stack where `__builtin_frame_address` points: on WASI, the shadow stack in
 * linear memory. C frames also use Wasmtime's native stack, and in C-only recursion (stringify
 * or parse of a deeply nested value, the parser on deeply nested source) they use it several
 * times faster than the shadow stack, so the native stack ran out first: a trap, where the
 * native engine throws a catchable RangeError. Every stack check now goes through
 * `pal_stack_pointer` (below), which also asks the host, every STACK_PROBE_EVERY checks, how
 * much native stack is left. */
static uintptr_t pal_stack_pointer(void);
#define __builtin_frame_address(level) ((void *)pal_stack_pointer())
/* Two size computations QuickJS-NG makes would wrap with a 32-bit size_t and hand out a block
 * far smaller than asked for; scripts/build-wasm-guest patches them to use these. The bytes of a
 * fast array of `n` values, saturated (it wraps from 2^29 values), and the sizes the allocation
 * entry points refuse before QuickJS's arena rounds them up and adds its header. */
#define pal_array_bytes(n)                                                                       \
    ((uint64_t)sizeof(JSValue) * (n) > SIZE_MAX ? SIZE_MAX : sizeof(JSValue) * (size_t)(n))
static bool pal_refuse(size_t size);
#define pal_too_big(n) ((size_t)(n) > SIZE_MAX / 2 && pal_refuse(n))
#include "quickjs.c"
#undef __builtin_frame_address

#include <malloc.h>
#include <stdint.h>

/* memcpy, memmove and memset are in mem.c: in chunks, so that a deadline stops a large one. */

#define IMPORT(name) __attribute__((import_module("palisade"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

/* Copies the host's pending buffer (set by the last call that returned its length) to dst. */
IMPORT(take) void host_take(void *dst);
/* A request or init text into the pending buffer; returns its length, or -1 if absent. */
IMPORT(field) int32_t host_field(int32_t which);
/* Console output of one line, sent in parts: begin, parts, end. */
IMPORT(out_part) void host_out_part(const char *p, int32_t len);
IMPORT(out_end) int32_t host_out_end(int32_t stream); /* 1 once the output cap is reached */
/* Records a policy denial thrown to the guest. */
IMPORT(deny) void host_deny(const char *p, int32_t len);
/* Module resolution and loading: >= 0 is the length of the key/source in the pending buffer;
 * < 0 is -(length + 1) of a TypeError message. */
IMPORT(resolve) int32_t host_resolve(const char *base, int32_t base_len, const char *name,
                                     int32_t name_len);
IMPORT(load) int32_t host_load(const char *name, int32_t name_len);
/* The host-call door: returns a tag (0 string, 1 bytes, 2 undefined, 3 error "name\0message"),
 * with the payload length in *len and the payload in the pending buffer. */
IMPORT(call) int32_t host_call(const char *op, int32_t op_len, const char *arg, int32_t arg_len,
                               const uint8_t *bytes, int32_t bytes_len, int32_t *len);
/* Deterministic mode's Math.random and clock. */
IMPORT(random) double host_random(void);
IMPORT(now) double host_now(void);
/* One piece of the run's report (see REPORT_*). */
IMPORT(report) void host_report(int32_t field, const char *p, int32_t len);
/* Whether Wasmtime's native stack is down to its margin (1) or not (0). The first call of an
 * instance records where the stack starts and returns 0. */
IMPORT(stack_low) int32_t host_stack_low(void);
/* The bytecode of the run's freshly compiled code, for the host's compile-once cache (sent only
 * when the run's flags ask for it: FLAG_KEEP). */
IMPORT(keep) void host_keep(const uint8_t *p, int32_t len);

enum {
    FIELD_SOURCE = 0,
    FIELD_FILENAME = 1,
    FIELD_INPUT = 2,
    FIELD_REMOVE = 3, /* global changes beyond the default policy, one per line (prepare.js) */
    FIELD_BYTECODE = 4, /* with FLAG_BYTECODE: bytecode this guest kept for the same source */
    FIELD_CAPTURE_JS = 10,
    FIELD_CONSOLE_JS = 11,
    FIELD_HOST_JS = 12,
    FIELD_PREPARE_JS = 13,
    FIELD_DETERMINISTIC_JS = 14,
    FIELD_HOST_FETCH_JS = 15,
};

enum {
    REPORT_JSON = 0,
    REPORT_NAME = 1,
    REPORT_MESSAGE = 2,
    REPORT_STACK = 3,
    REPORT_OVER = 4, /* with STATUS_OVER: "<bytes> <depth>" of the result's text */
    REPORT_INIT_ERROR = 9,
};

enum {
    STATUS_OK = 0,
    STATUS_EXCEPTION = 1,
    STATUS_COMPILE = 2,
    STATUS_STRINGIFY = 3,
    STATUS_NEVER_SETTLES = 4,
    STATUS_INTERNAL = 5,
    STATUS_OVER = 6, /* the result's JSON text is over the result limit (REPORT_OVER) */
};

enum {
    PHASE_RUN = 0,
    /* JSON.stringify of the result: its C recursion can exhaust Wasmtime's native stack before
     * QuickJS's (shadow-stack) check fires; the host then reports the result as too deep to
     * convert, as the native engine does when its stack check fires there. */
    PHASE_STRINGIFY = 1,
};

enum {
    FLAG_MODULE = 1,
    FLAG_INPUT = 2,
    FLAG_EVAL = 4,
    FLAG_SHARED = 8,
    FLAG_DETERMINISTIC = 16,
    FLAG_GLOBALS = 32, /* FIELD_REMOVE is not empty */
    FLAG_BYTECODE = 64, /* read FIELD_BYTECODE instead of compiling FIELD_SOURCE */
    FLAG_KEEP = 128,     /* hand the compiled bytecode to the host (host_keep) */
};

/* ---------------------------------------------------------------------------------------------
 * The metered allocator: the same latch as the native engine's (palisade-quickjs/src/ffi.rs).
 * The allocation that crosses the limit fails and latches; afterwards a 256 KiB grace lets the
 * runtime unwind. A malloc failure (the store's memory cap) latches too.
 */
#define GRACE ((size_t)256 << 10)

/* Read by the host straight from linear memory after a run (even after a trap): its address is
 * `pal_meter()`. Six 32-bit words: used, peak, limit, observed, hit, and the run's phase
 * (PHASE_*), which tells the host what a trap interrupted. */
static struct {
    size_t used, peak, limit, observed, hit, phase;
} meter = {0, 0, SIZE_MAX, 0, 0, 0};
#define m_used meter.used
#define m_peak meter.peak
#define m_limit meter.limit
#define m_observed meter.observed
#define m_hit meter.hit

static bool m_admit(size_t extra)
{
    size_t want = m_used + extra < m_used ? SIZE_MAX : m_used + extra;
    if (want <= m_limit)
        return true;
    if (!m_hit) {
        m_hit = true;
        m_observed = want;
        return false;
    }
    return want <= (m_limit + GRACE < m_limit ? SIZE_MAX : m_limit + GRACE);
}

static void m_add(size_t n)
{
    m_used += n;
    if (m_used > m_peak)
        m_peak = m_used;
}

static void m_failed(size_t size)
{
    if (!m_hit) {
        m_hit = true;
        m_observed = size > SIZE_MAX - m_used ? SIZE_MAX : m_used + size;
    }
}

/* A size QuickJS's allocation entry points refuse (`pal_too_big`): it is past any memory limit,
 * so the latch closes as for any allocation the run cannot have (the native engine's meter sees
 * the same request and does the same). */
static bool pal_refuse(size_t size)
{
    m_failed(size);
    return true;
}

static void *pal_malloc(void *opaque, size_t size)
{
    (void)opaque;
    if (size == 0 || !m_admit(size))
        return NULL;
    void *p = malloc(size);
    if (p)
        m_add(malloc_usable_size(p));
    else
        m_failed(size);
    return p;
}

static void *pal_calloc(void *opaque, size_t count, size_t size)
{
    (void)opaque;
    size_t total;
    if (__builtin_mul_overflow(count, size, &total))
        return NULL;
    if (total == 0 || !m_admit(total))
        return NULL;
    void *p = calloc(count, size);
    if (p)
        m_add(malloc_usable_size(p));
    else
        m_failed(total);
    return p;
}

static void pal_free(void *opaque, void *ptr)
{
    (void)opaque;
    if (!ptr)
        return;
    m_used -= malloc_usable_size(ptr);
    free(ptr);
}

static void *pal_realloc(void *opaque, void *ptr, size_t size)
{
    if (!ptr)
        return pal_malloc(opaque, size);
    size_t old = malloc_usable_size(ptr);
    if (size > old && !m_admit(size - old))
        return NULL;
    void *p = realloc(ptr, size);
    if (p) {
        m_used -= old;
        m_add(malloc_usable_size(p));
    } else if (size != 0) {
        m_failed(size - (size > old ? old : size));
    }
    return p;
}

static size_t pal_usable_size(const void *ptr)
{
    return ptr ? malloc_usable_size((void *)ptr) : 0;
}

static const JSMallocFunctions pal_mf = {
    pal_calloc, pal_malloc, pal_free, pal_realloc, pal_usable_size,
};

/* ---------------------------------------------------------------------------------------------
 * State kept in the snapshot.
 */
static JSRuntime *rt;
static JSContext *ctx;
static JSValue prim;      /* the primordials object */
static JSValue formatter; /* (args: any[]) => string */
static JSValue apply_fn;  /* applies a run's policy */
static JSClassID func_class;

/* The shadow stack (wasm-ld --stack-first): [__stack_low, __stack_high). */
extern unsigned char __stack_low[];
extern unsigned char __stack_high[];
/* Kept free below QuickJS's limit for the frames between two checks and the error path. */
#define STACK_GUARD ((uintptr_t)64 << 10)

/* The native stack is probed every this many stack checks (a host call each), and at every
 * check once it is low. Between two probes a recursion goes at most this many levels deeper,
 * which the host's margin covers (crate::guest::NATIVE_MARGIN). */
#define STACK_PROBE_EVERY 128
static uint32_t stack_probe = 1;
static bool native_stack_low;
/* The lowest stack pointer a stack check saw since `compile_source` last reset it. */
static uintptr_t stack_low_water = UINTPTR_MAX;

/* QuickJS's stack pointer: the shadow stack's, or, once the native stack is low, one just under
 * the limit, so that the check QuickJS makes next fails and it throws its usual RangeError. */
static uintptr_t pal_stack_pointer(void)
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    if (--stack_probe == 0) {
        native_stack_low = host_stack_low() != 0;
        stack_probe = native_stack_low ? 1 : STACK_PROBE_EVERY;
    }
    if (native_stack_low && rt && rt->stack_limit > 0)
        sp = rt->stack_limit - 1;
    if (sp < stack_low_water)
        stack_low_water = sp;
    return sp;
}

/* The parser checks its stack in `next_token` (and `json_next_token`) with this many bytes to
 * spare: `js_check_stack_overflow(rt, 1000)`. Its other checks while compiling (the regexp
 * compiler's, for a literal) spare none. */
#define PARSER_STACK_SPARE 1000

/* Compiles the run's source with JS_Eval (`flags` include JS_EVAL_FLAG_COMPILE_ONLY), with
 * every module it imports statically; on failure the exception is pending.
 *
 * QuickJS's parser can report running out of stack as a SyntaxError: a lookahead that ran out
 * drops the stack-overflow error it threw, and the parse goes on to fail somewhere else, with
 * "missing formal parameter", "invalid property name" and the like (bellard/quickjs#118), so
 * 20,000 nested functions were a `syntax_error` here and on the native engine, and
 * `stack_overflow` on v8. Every check goes through `pal_stack_pointer`, which keeps the lowest
 * stack pointer it saw: a compile that came within the parser's spare bytes of the limit ran
 * out of stack, and its SyntaxError becomes the stack-overflow RangeError. (The native engine,
 * which cannot see its checks, compiles such a source once more with more stack:
 * palisade-quickjs's `run::unmask_stack_overflow`.) A check that spares no bytes (the regexp
 * compiler's) and came within PARSER_STACK_SPARE of the limit without failing would make a
 * later real SyntaxError in the same compile a stack overflow; that compile was at the limit. */
static JSValue compile_source(const char *src, size_t len, const char *file, int flags)
{
    stack_low_water = UINTPTR_MAX;
    JSValue v = JS_Eval(ctx, src, len, file, flags);
    if (!JS_IsException(v) || rt->stack_limit == 0 ||
        stack_low_water >= rt->stack_limit + PARSER_STACK_SPARE)
        return v;
    JSValue exc = JS_GetException(ctx);
    bool syntax = JS_VALUE_GET_TAG(exc) == JS_TAG_OBJECT &&
                  JS_VALUE_GET_OBJ(exc)->class_id == JS_CLASS_ERROR &&
                  JS_VALUE_GET_OBJ(exc)->shape->proto ==
                      JS_VALUE_GET_OBJ(ctx->native_error_proto[JS_SYNTAX_ERROR]);
    if (syntax) {
        JS_FreeValue(ctx, exc);
        return JS_ThrowStackOverflow(ctx);
    }
    return JS_Throw(ctx, exc);
}

/* ---------------------------------------------------------------------------------------------
 * Host-made functions: a callable class, as rquickjs makes them on the native engine (no stack
 * frame of their own, `length` then `name` as configurable properties).
 */
typedef JSValue pal_fn(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv,
                       int magic, JSValueConst *data);

typedef struct {
    pal_fn *fn;
    int magic;
    JSValue data[2];
} PalFunc;

static void func_finalizer(JSRuntime *rt, JSValueConst val)
{
    PalFunc *f = JS_GetOpaque(val, func_class);
    if (f) {
        JS_FreeValueRT(rt, f->data[0]);
        JS_FreeValueRT(rt, f->data[1]);
        js_free_rt(rt, f);
    }
}

static void func_mark(JSRuntime *rt, JSValueConst val, JS_MarkFunc *mark_func)
{
    PalFunc *f = JS_GetOpaque(val, func_class);
    if (f) {
        JS_MarkValue(rt, f->data[0], mark_func);
        JS_MarkValue(rt, f->data[1], mark_func);
    }
}

static JSValue func_call(JSContext *ctx, JSValueConst func_obj, JSValueConst this_val, int argc,
                         JSValueConst *argv, int flags)
{
    (void)flags;
    PalFunc *f = JS_GetOpaque(func_obj, func_class);
    if (!f)
        return JS_ThrowTypeError(ctx, "not a function");
    return f->fn(ctx, this_val, argc, argv, f->magic, f->data);
}

static JSValue new_func_len(JSContext *ctx, pal_fn *fn, const char *name, int length, int magic,
                            JSValueConst d0, JSValueConst d1)
{
    JSValue obj = JS_NewObjectProtoClass(ctx, ctx->function_proto, func_class);
    if (JS_IsException(obj))
        return obj;
    PalFunc *f = js_malloc(ctx, sizeof(PalFunc));
    if (!f) {
        JS_FreeValue(ctx, obj);
        return JS_EXCEPTION;
    }
    f->fn = fn;
    f->magic = magic;
    f->data[0] = js_dup(d0);
    f->data[1] = js_dup(d1);
    JS_SetOpaque(obj, f);
    if (JS_DefinePropertyValue(ctx, obj, JS_ATOM_length, js_int32(length),
                               JS_PROP_CONFIGURABLE | JS_PROP_THROW) < 0 ||
        JS_DefinePropertyValue(ctx, obj, JS_ATOM_name, JS_NewString(ctx, name),
                               JS_PROP_CONFIGURABLE | JS_PROP_THROW) < 0) {
        JS_FreeValue(ctx, obj);
        return JS_EXCEPTION;
    }
    return obj;
}

static JSValue new_func(JSContext *ctx, pal_fn *fn, const char *name, int magic, JSValueConst d0,
                        JSValueConst d1)
{
    return new_func_len(ctx, fn, name, 0, magic, d0, d1);
}

/* ---------------------------------------------------------------------------------------------
 * Small helpers.
 */

/* Fetches a host field into a fresh NUL-terminated buffer (plain malloc); NULL if absent, or
 * if it does not fit in linear memory, which latches the memory limit as any allocation the run
 * cannot have does (a source too large for the run's memory is `memory_limit`, as natively). */
static char *fetch_field(int32_t which, size_t *len)
{
    int32_t n = host_field(which);
    if (n < 0)
        return NULL;
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        m_failed((size_t)n + 1);
        return NULL;
    }
    host_take(buf);
    buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    return buf;
}

static void report_str(int32_t field, const char *s, size_t len)
{
    host_report(field, s, (int32_t)len);
}

/* Reports a JS value's string (lone surrogates become U+FFFD). */
static void report_value(int32_t field, JSValueConst v)
{
    size_t len;
    const char *s = JS_ToCStringLen(ctx, &len, v);
    if (s) {
        report_str(field, s, len);
        JS_FreeCString(ctx, s);
    } else {
        JS_FreeValue(ctx, JS_GetException(ctx));
        report_str(field, "", 0);
    }
}

static JSValue eval_text(const char *text, size_t len, const char *file, int flags)
{
    return JS_Eval(ctx, text, len, file, JS_EVAL_TYPE_GLOBAL | flags);
}

/* ---------------------------------------------------------------------------------------------
 * console
 */

/* Sends a JS value's text (any value's ToString) as one part of the current line. */
static void out_value(JSContext *ctx, JSValueConst v)
{
    size_t len;
    const char *s = JS_ToCStringLen(ctx, &len, v);
    if (s) {
        host_out_part(s, (int32_t)len);
        JS_FreeCString(ctx, s);
    } else {
        JS_FreeValue(ctx, JS_GetException(ctx));
    }
}

/* Set once the host said the output cap is reached; cleared as a run starts. */
static bool output_full;

static JSValue console_method(JSContext *ctx, JSValueConst this_val, int argc,
                              JSValueConst *argv, int stream, JSValueConst *data)
{
    (void)this_val;
    (void)data;
    if (output_full) {
        /* The line is dropped before it is formatted, as on every engine: the formatter can run
         * guest code (a proxy's traps). The empty line still reaches the host, which drops it
         * and stops a run whose memory latch has closed. */
        host_out_end(stream);
        return JS_UNDEFINED;
    }
    bool specifiers = false;
    if (argc > 1 && JS_IsString(argv[0])) {
        size_t len;
        const char *s = JS_ToCStringLen(ctx, &len, argv[0]);
        if (!s)
            return JS_EXCEPTION;
        specifiers = memchr(s, '%', len) != NULL;
        JS_FreeCString(ctx, s);
    }
    bool all_strings = true;
    for (int i = 0; i < argc; i++)
        all_strings = all_strings && JS_IsString(argv[i]);
    if (!specifiers && all_strings) {
        for (int i = 0; i < argc; i++) {
            if (i > 0)
                host_out_part(" ", 1);
            out_value(ctx, argv[i]);
        }
        output_full = host_out_end(stream) != 0;
        return JS_UNDEFINED;
    }
    JSValue array = JS_NewArray(ctx);
    if (JS_IsException(array))
        return array;
    for (int i = 0; i < argc; i++) {
        if (JS_SetPropertyUint32(ctx, array, (uint32_t)i, js_dup(argv[i])) < 0) {
            JS_FreeValue(ctx, array);
            return JS_EXCEPTION;
        }
    }
    JSValue line = JS_Call(ctx, formatter, JS_UNDEFINED, 1, vc(&array));
    JS_FreeValue(ctx, array);
    if (JS_IsException(line))
        return line;
    out_value(ctx, line);
    JS_FreeValue(ctx, line);
    output_full = host_out_end(stream) != 0;
    return JS_UNDEFINED;
}

static int install_console(void)
{
    static const char *const methods[] = {"log", "info", "debug", "warn", "error"};
    static const int streams[] = {0, 0, 0, 1, 1};
    JSValue console = JS_NewObject(ctx);
    if (JS_IsException(console))
        return -1;
    for (int i = 0; i < 5; i++) {
        JSValue f = new_func(ctx, console_method, methods[i], streams[i], JS_UNDEFINED,
                             JS_UNDEFINED);
        if (JS_IsException(f) || JS_SetPropertyStr(ctx, console, methods[i], f) < 0) {
            JS_FreeValue(ctx, console);
            return -1;
        }
    }
    JSValue global = JS_GetGlobalObject(ctx);
    int r = JS_SetPropertyStr(ctx, global, "console", console);
    JS_FreeValue(ctx, global);
    return r < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Policy throwers, the host-call door, deterministic mode.
 */

/* data[0]: the primordial key of the error constructor; data[1]: the message. */
static JSValue thrower(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv,
                       int magic, JSValueConst *data)
{
    (void)this_val;
    (void)argc;
    (void)argv;
    (void)magic;
    size_t len;
    const char *msg = JS_ToCStringLen(ctx, &len, data[1]);
    if (!msg)
        return JS_EXCEPTION;
    host_deny(msg, (int32_t)len);
    JS_FreeCString(ctx, msg);
    JSAtom kind = JS_ValueToAtom(ctx, data[0]);
    if (kind == JS_ATOM_NULL)
        return JS_EXCEPTION;
    JSValue ctor = JS_GetProperty(ctx, prim, kind);
    JS_FreeAtom(ctx, kind);
    if (JS_IsException(ctor))
        return ctor;
    JSValue err = JS_CallConstructor(ctx, ctor, 1, data + 1);
    JS_FreeValue(ctx, ctor);
    if (JS_IsException(err))
        return err;
    return JS_Throw(ctx, err);
}

/* make_thrower(name, kind, message): a constructible function that throws the policy error. */
static JSValue make_thrower(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv,
                            int magic, JSValueConst *data)
{
    (void)this_val;
    (void)magic;
    (void)data;
    if (argc < 3)
        return JS_ThrowTypeError(ctx, "make_thrower(name, kind, message)");
    const char *name = JS_ToCString(ctx, argv[0]);
    if (!name)
        return JS_EXCEPTION;
    JSValue f = new_func(ctx, thrower, name, 0, argv[1], argv[2]);
    JS_FreeCString(ctx, name);
    if (!JS_IsException(f))
        JS_SetConstructorBit(ctx, f, true);
    return f;
}

/* Throws an Error with a host error's name and message, made as the native engine makes it
 * (Error object, then `message` and `name` assigned). */
static JSValue throw_host_error(JSContext *ctx, const char *name, size_t name_len,
                                const char *message, size_t message_len)
{
    JSValue err = JS_NewError(ctx);
    if (JS_IsException(err))
        return err;
    if (JS_SetPropertyStr(ctx, err, "message", JS_NewStringLen(ctx, message, message_len)) < 0 ||
        JS_SetPropertyStr(ctx, err, "name", JS_NewStringLen(ctx, name, name_len)) < 0) {
        JS_FreeValue(ctx, err);
        return JS_EXCEPTION;
    }
    return JS_Throw(ctx, err);
}

/* hostcall(op, arg, bytes): see palisade-core/src/host.rs. */
static JSValue hostcall(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv,
                        int magic, JSValueConst *data)
{
    (void)this_val;
    (void)magic;
    (void)data;
    if (argc < 2 || !JS_IsString(argv[0]) || !JS_IsString(argv[1]))
        return JS_ThrowTypeError(ctx, "hostcall(op, arg, bytes): op and arg must be strings");
    const uint8_t *bytes = NULL;
    size_t bytes_len = 0;
    if (argc > 2 && JS_IsObject(argv[2])) {
        JSClassID id = JS_GetClassID(argv[2]);
        if (id != JS_CLASS_ARRAY_BUFFER) {
            static const char n[] = "TypeError", m[] = "hostcall: bytes must be an ArrayBuffer";
            return throw_host_error(ctx, n, sizeof(n) - 1, m, sizeof(m) - 1);
        }
        bytes = JS_GetArrayBuffer(ctx, &bytes_len, argv[2]);
        if (!bytes) /* detached: no bytes, as on the native engine */
            JS_FreeValue(ctx, JS_GetException(ctx));
    }
    size_t op_len, arg_len;
    const char *op = JS_ToCStringLen(ctx, &op_len, argv[0]);
    if (!op)
        return JS_EXCEPTION;
    const char *arg = JS_ToCStringLen(ctx, &arg_len, argv[1]);
    if (!arg) {
        JS_FreeCString(ctx, op);
        return JS_EXCEPTION;
    }
    int32_t len = 0;
    int32_t tag = host_call(op, (int32_t)op_len, arg, (int32_t)arg_len, bytes,
                            bytes ? (int32_t)bytes_len : -1, &len);
    JS_FreeCString(ctx, op);
    JS_FreeCString(ctx, arg);
    if (tag == 2)
        return JS_UNDEFINED;
    char *buf = js_malloc(ctx, (size_t)len + 1);
    if (!buf)
        return JS_EXCEPTION;
    host_take(buf);
    buf[len] = '\0';
    JSValue out;
    if (tag == 0) {
        out = JS_NewStringLen(ctx, buf, (size_t)len);
    } else if (tag == 1) {
        out = JS_NewArrayBufferCopy(ctx, (const uint8_t *)buf, (size_t)len);
    } else {
        size_t name_len = strlen(buf);
        const char *message = name_len < (size_t)len ? buf + name_len + 1 : "";
        size_t message_len = name_len < (size_t)len ? (size_t)len - name_len - 1 : 0;
        out = throw_host_error(ctx, buf, name_len, message, message_len);
    }
    js_free(ctx, buf);
    return out;
}

static JSValue det_random(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv,
                          int magic, JSValueConst *data)
{
    (void)this_val;
    (void)argc;
    (void)argv;
    (void)magic;
    (void)data;
    return JS_NewFloat64(ctx, host_random());
}

static JSValue det_now(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv,
                       int magic, JSValueConst *data)
{
    (void)this_val;
    (void)argc;
    (void)argv;
    (void)magic;
    (void)data;
    return JS_NewFloat64(ctx, host_now());
}

/* ---------------------------------------------------------------------------------------------
 * Modules: only the request's, resolved and loaded by the host.
 */

static char *take_pending(int32_t n)
{
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        return NULL;
    host_take(buf);
    buf[n] = '\0';
    return buf;
}

/* Throws the host's TypeError message, truncated as rquickjs truncates it (255 bytes, at a
 * character boundary). */
static void throw_pending_type_error(JSContext *ctx, int32_t n)
{
    char *msg = take_pending(n);
    if (!msg) {
        JS_ThrowOutOfMemory(ctx);
        return;
    }
    size_t len = (size_t)n;
    if (len > 255) {
        len = 255;
        while (len > 0 && ((unsigned char)msg[len] & 0xC0) == 0x80)
            len--;
        msg[len] = '\0';
    }
    JS_ThrowTypeError(ctx, "%s", msg);
    free(msg);
}

static char *module_normalize(JSContext *ctx, const char *base, const char *name,
                              JSValueConst attributes, void *opaque)
{
    (void)attributes;
    (void)opaque;
    int32_t n = host_resolve(base, (int32_t)strlen(base), name, (int32_t)strlen(name));
    if (n < 0) {
        throw_pending_type_error(ctx, -(n + 1));
        return NULL;
    }
    char *key = take_pending(n);
    if (!key) {
        JS_ThrowOutOfMemory(ctx);
        return NULL;
    }
    char *out = js_strndup(ctx, key, (size_t)n);
    free(key);
    return out;
}

static JSModuleDef *module_load(JSContext *ctx, const char *name, void *opaque,
                                JSValueConst attributes)
{
    (void)opaque;
    (void)attributes;
    int32_t n = host_load(name, (int32_t)strlen(name));
    if (n < 0) {
        throw_pending_type_error(ctx, -(n + 1));
        return NULL;
    }
    char *src = take_pending(n);
    if (!src) {
        JS_ThrowOutOfMemory(ctx);
        return NULL;
    }
    /* Not compile_source: a statically imported module is compiled inside the main module's
     * compile (QuickJS loads imports while it compiles), which is judged as a whole; a dynamic
     * import() is not judged, as on the native engine. */
    JSValue m = JS_Eval(ctx, src, (size_t)n, name,
                        JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_STRICT | JS_EVAL_FLAG_COMPILE_ONLY);
    free(src);
    if (JS_IsException(m))
        return NULL;
    JSModuleDef *def = JS_VALUE_GET_PTR(m);
    JS_FreeValue(ctx, m);
    return def;
}

/* The interrupt handler: the memory latch stops the run for good (the deadline is the host's:
 * it revokes the run's memory, and the next load or store traps). */
static int interrupt_handler(JSRuntime *rt, void *opaque)
{
    (void)rt;
    (void)opaque;
    return m_hit;
}

/* ---------------------------------------------------------------------------------------------
 * Initialization (snapshotted).
 */

static void init_fail(const char *what)
{
    JSValue exc = ctx ? JS_GetException(ctx) : JS_UNDEFINED;
    report_str(REPORT_INIT_ERROR, what, strlen(what));
    if (ctx && !JS_IsUndefined(exc) && !JS_IsNull(exc)) {
        report_value(REPORT_MESSAGE, exc);
        JSValue stack = JS_IsObject(exc) ? JS_GetPropertyStr(ctx, exc, "stack") : JS_UNDEFINED;
        if (JS_IsString(stack))
            report_value(REPORT_STACK, stack);
        JS_FreeValue(ctx, stack);
    }
    JS_FreeValue(ctx, exc);
    __builtin_trap();
}

static JSValue eval_field(int32_t which, const char *file, int flags)
{
    size_t len;
    char *text = fetch_field(which, &len);
    if (!text)
        init_fail("missing init text");
    JSValue v = eval_text(text, len, file, flags);
    free(text);
    if (JS_IsException(v))
        init_fail(file);
    return v;
}

EXPORT(wizer-initialize) void pal_init(void)
{
    rt = JS_NewRuntime2(&pal_mf, NULL);
    if (!rt)
        init_fail("cannot create a QuickJS runtime");
    JS_NewClassID(rt, &func_class);
    JSClassDef def = {"RustFunction", func_finalizer, func_mark, func_call, NULL};
    if (JS_NewClass(rt, func_class, &def) < 0)
        init_fail("cannot register the function class");
    JS_SetInterruptHandler(rt, interrupt_handler, NULL);
    JS_SetModuleLoaderFunc2(rt, NULL, module_load, NULL, NULL);
    JS_SetModuleNormalizeFunc2(rt, module_normalize);
    ctx = JS_NewContext(rt);
    if (!ctx)
        init_fail("cannot create a QuickJS context");

    prim = eval_field(FIELD_CAPTURE_JS, "palisade:primordials", JS_EVAL_FLAG_STRICT);
    if (install_console() < 0)
        init_fail("cannot install the console");
    JSValue factory = eval_field(FIELD_CONSOLE_JS, "palisade:console",
                                 JS_EVAL_FLAG_STRICT | JS_EVAL_FLAG_BACKTRACE_BARRIER);
    formatter = JS_Call(ctx, factory, JS_UNDEFINED, 1, vc(&prim));
    JS_FreeValue(ctx, factory);
    if (JS_IsException(formatter))
        init_fail("console formatter");

    /* The shared scripts under the file names the native engine gives them
     * (palisade_core::HOST_JS_FILE, ...), each a script of its own: frames inside them then read
     * the same on both engines. */
    JSValue args[6];
    args[0] = js_dup(prim);
    args[1] = new_func(ctx, make_thrower, "thrower", 0, JS_UNDEFINED, JS_UNDEFINED);
    args[2] = eval_field(FIELD_DETERMINISTIC_JS, "palisade:deterministic", 0);
    args[3] = eval_field(FIELD_HOST_JS, "palisade:host", 0);
    args[4] = eval_field(FIELD_HOST_FETCH_JS, "palisade:fetch", 0);
    args[5] = new_func_len(ctx, hostcall, "hostcall", 2, 0, JS_UNDEFINED, JS_UNDEFINED);
    JSValue prepare = eval_field(FIELD_PREPARE_JS, "palisade:prepare", JS_EVAL_FLAG_STRICT);
    apply_fn = JS_Call(ctx, prepare, JS_UNDEFINED, 6, vc(args));
    JS_FreeValue(ctx, prepare);
    for (int i = 0; i < 6; i++)
        JS_FreeValue(ctx, args[i]);
    if (JS_IsException(apply_fn))
        init_fail("policy preparation");
    /* Leave no garbage in the snapshot. */
    JS_RunGC(rt);
}

/* ---------------------------------------------------------------------------------------------
 * One run.
 */

/* Reports the pending exception (or `exc` if given) as name/message/stack, as the native
 * engine's guest_error reads it. Returns `status`. */
static int report_error(JSValue exc, int status)
{
    if (m_hit) {
        JS_FreeValue(ctx, exc);
        return status;
    }
    if (JS_IsObject(exc)) {
        bool is_error = JS_IsError(exc);
        JSValue name = JS_GetPropertyStr(ctx, exc, "name");
        if (JS_IsException(name)) {
            JS_FreeValue(ctx, JS_GetException(ctx));
            name = JS_UNDEFINED;
        }
        JSValue message = JS_GetPropertyStr(ctx, exc, "message");
        if (JS_IsException(message)) {
            JS_FreeValue(ctx, JS_GetException(ctx));
            message = JS_UNDEFINED;
        }
        if (is_error || (JS_IsString(name) && JS_IsString(message))) {
            if (JS_IsString(name))
                report_value(REPORT_NAME, name);
            if (JS_IsString(message))
                report_value(REPORT_MESSAGE, message);
            else
                report_str(REPORT_MESSAGE, "", 0);
            JSValue stack = JS_GetPropertyStr(ctx, exc, "stack");
            if (JS_IsException(stack)) {
                JS_FreeValue(ctx, JS_GetException(ctx));
                stack = JS_UNDEFINED;
            }
            if (JS_IsString(stack))
                report_value(REPORT_STACK, stack);
            JS_FreeValue(ctx, stack);
            JS_FreeValue(ctx, name);
            JS_FreeValue(ctx, message);
            JS_FreeValue(ctx, exc);
            return status;
        }
        JS_FreeValue(ctx, name);
        JS_FreeValue(ctx, message);
    }
    /* A thrown non-Error: printed as console.log would print it. */
    if (JS_IsString(exc)) {
        report_value(REPORT_MESSAGE, exc);
    } else {
        JSValue array = JS_NewArray(ctx);
        JSValue line = JS_EXCEPTION;
        if (!JS_IsException(array) &&
            JS_SetPropertyUint32(ctx, array, 0, js_dup(exc)) >= 0)
            line = JS_Call(ctx, formatter, JS_UNDEFINED, 1, vc(&array));
        JS_FreeValue(ctx, array);
        if (JS_IsException(line)) {
            JS_FreeValue(ctx, JS_GetException(ctx));
            const char *s = "<unprintable thrown value>";
            report_str(REPORT_MESSAGE, s, strlen(s));
        } else {
            report_value(REPORT_MESSAGE, line);
            JS_FreeValue(ctx, line);
        }
    }
    JS_FreeValue(ctx, exc);
    return status;
}

static int failure(int status)
{
    return report_error(JS_GetException(ctx), status);
}

/* Runs every pending job; false if the memory latch stopped the run. */
static bool drain(void)
{
    for (;;) {
        if (m_hit)
            return false;
        JSContext *jctx;
        int r = JS_ExecutePendingJob(rt, &jctx);
        if (r < 0)
            JS_FreeValue(jctx, JS_GetException(jctx));
        if (r == 0)
            break;
    }
    return !m_hit;
}

/* Awaits a thenable and drains the microtask queue. On success *out holds the settled value.
 * Otherwise returns a status (the exception already reported). Consumes `value`. */
static int settle(JSValue value, JSValue *out)
{
    JSValue promise = JS_UNDEFINED;
    if (JS_IsPromise(value)) {
        promise = js_dup(value);
    } else if (JS_IsObject(value)) {
        JSValue then = JS_GetPropertyStr(ctx, value, "then");
        if (JS_IsException(then)) {
            JS_FreeValue(ctx, value);
            return failure(STATUS_EXCEPTION);
        }
        if (JS_IsFunction(ctx, then)) {
            JSValue funcs[2];
            promise = JS_NewPromiseCapability(ctx, funcs);
            if (JS_IsException(promise)) {
                JS_FreeValue(ctx, then);
                JS_FreeValue(ctx, value);
                return failure(STATUS_EXCEPTION);
            }
            JSValue r = JS_Call(ctx, funcs[0], JS_UNDEFINED, 1, vc(&value));
            JS_FreeValue(ctx, funcs[0]);
            JS_FreeValue(ctx, funcs[1]);
            if (JS_IsException(r)) {
                JS_FreeValue(ctx, then);
                JS_FreeValue(ctx, promise);
                JS_FreeValue(ctx, value);
                return failure(STATUS_EXCEPTION);
            }
            JS_FreeValue(ctx, r);
        }
        JS_FreeValue(ctx, then);
    }
    if (!drain()) {
        JS_FreeValue(ctx, promise);
        JS_FreeValue(ctx, value);
        return failure(STATUS_EXCEPTION);
    }
    if (JS_IsUndefined(promise)) {
        *out = value;
        return STATUS_OK;
    }
    JS_FreeValue(ctx, value);
    JSPromiseStateEnum state = JS_PromiseState(ctx, promise);
    if (state == JS_PROMISE_FULFILLED) {
        *out = JS_PromiseResult(ctx, promise);
        JS_FreeValue(ctx, promise);
        return STATUS_OK;
    }
    if (state == JS_PROMISE_REJECTED) {
        JSValue reason = JS_PromiseResult(ctx, promise);
        JS_FreeValue(ctx, promise);
        return report_error(reason, STATUS_EXCEPTION);
    }
    JS_FreeValue(ctx, promise);
    return STATUS_NEVER_SETTLES;
}

/* The run's result limit in bytes of JSON text (pal_run). */
static uint64_t result_limit;

static int to_json(JSValue value)
{
    int64_t total = 0;
    int depth = 0;
    char buf[48];

    meter.phase = PHASE_STRINGIFY;
    JSValue json = JS_JSONStringifyBounded(
        ctx, value, result_limit > INT64_MAX ? INT64_MAX : (int64_t)result_limit, &total, &depth);
    meter.phase = PHASE_RUN;
    JS_FreeValue(ctx, value);
    if (JS_IsException(json))
        return failure(STATUS_STRINGIFY);
    if (JS_IsNull(json)) {
        int n = snprintf(buf, sizeof(buf), "%lld %d", (long long)total, depth);
        report_str(REPORT_OVER, buf, (size_t)n);
        return STATUS_OVER;
    }
    if (JS_IsString(json))
        report_value(REPORT_JSON, json);
    JS_FreeValue(ctx, json);
    return STATUS_OK;
}

static JSValue make_remove_list(void)
{
    size_t len = 0;
    char *text = fetch_field(FIELD_REMOVE, &len);
    JSValue array = JS_NewArray(ctx);
    if (!text || JS_IsException(array)) {
        free(text);
        return array;
    }
    uint32_t i = 0;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0)
            JS_SetPropertyUint32(ctx, array, i++, JS_NewStringLen(ctx, p, n));
        p += n + 1;
    }
    free(text);
    return array;
}

static void set_stack_limit(uint32_t budget)
{
    uintptr_t sp = js_get_stack_pointer();
    uintptr_t floor = (uintptr_t)__stack_low + STACK_GUARD;
    uintptr_t limit = sp > budget ? sp - budget : 0;
    if (limit < floor)
        limit = floor;
    rt->stack_size = budget;
    rt->stack_top = sp;
    rt->stack_limit = limit;
}

/* Applies a run's policy beyond the default, which the snapshot already has (prepare.js). */
static int apply_policy(int flags)
{
    if (!(flags & (FLAG_GLOBALS | FLAG_EVAL | FLAG_SHARED | FLAG_DETERMINISTIC)))
        return STATUS_OK;
    JSValue args[5];
    args[0] = make_remove_list();
    args[1] = JS_NewBool(ctx, flags & FLAG_EVAL);
    args[2] = JS_NewBool(ctx, flags & FLAG_SHARED);
    args[3] = JS_UNDEFINED;
    args[4] = JS_UNDEFINED;
    if (flags & FLAG_DETERMINISTIC) {
        args[3] = new_func(ctx, det_random, "random", 0, JS_UNDEFINED, JS_UNDEFINED);
        args[4] = new_func(ctx, det_now, "now", 0, JS_UNDEFINED, JS_UNDEFINED);
    }
    JSValue r = JS_Call(ctx, apply_fn, JS_UNDEFINED, 5, vc(args));
    for (int i = 0; i < 5; i++)
        JS_FreeValue(ctx, args[i]);
    if (JS_IsException(r))
        return failure(STATUS_EXCEPTION);
    JS_FreeValue(ctx, r);
    return STATUS_OK;
}

/* The run's code, compiled as a script or a module (not yet run). With FLAG_BYTECODE it is read
 * from the bytecode an earlier instance of this guest wrote for the same key (the host's
 * compile-once cache, palisade_core::code_cache: mode, file name, source and the stack and
 * memory limits); reading a module resolves its imports from this run's modules. With FLAG_KEEP
 * the fresh compilation's bytecode goes to the host before any of the code runs. On failure
 * the exception is pending. */
static JSValue compile(int flags)
{
    int type = (flags & FLAG_MODULE) ? JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_STRICT
                                     : JS_EVAL_TYPE_GLOBAL;
    size_t len = 0;
    if (flags & FLAG_BYTECODE) {
        char *code = fetch_field(FIELD_BYTECODE, &len);
        if (!code)
            return JS_ThrowOutOfMemory(ctx);
        JSValue v = JS_ReadObject(ctx, (const uint8_t *)code, len, JS_READ_OBJ_BYTECODE);
        free(code);
        return v;
    }
    char *src = fetch_field(FIELD_SOURCE, &len);
    char *file = fetch_field(FIELD_FILENAME, NULL);
    if (!src || !file) {
        free(src);
        free(file);
        return JS_ThrowOutOfMemory(ctx);
    }
    JSValue v = compile_source(src, len, file, type | JS_EVAL_FLAG_COMPILE_ONLY);
    free(src);
    free(file);
    if (!JS_IsException(v) && (flags & FLAG_KEEP)) {
        /* The bytecode is the cache's, not the run's: writing it neither meets the run's memory
         * limit nor counts in its peak, so a run that keeps it ends as one that compiles without
         * keeping (the native engine's Meter::exempt). A failed write just leaves it unkept. */
        size_t limit = m_limit, peak = m_peak, hit = m_hit, observed = m_observed;
        m_limit = SIZE_MAX;
        size_t n = 0;
        uint8_t *code = JS_WriteObject(ctx, &n, v, JS_WRITE_OBJ_BYTECODE);
        if (code) {
            if (n <= INT32_MAX)
                host_keep(code, (int32_t)n);
            js_free(ctx, code);
        } else {
            JS_FreeValue(ctx, JS_GetException(ctx));
        }
        m_limit = limit;
        m_peak = peak;
        m_hit = hit;
        m_observed = observed;
    }
    return v;
}

static int run(int flags)
{
    int applied = apply_policy(flags);
    if (applied != STATUS_OK)
        return applied;

    size_t input_len = 0;
    char *input_text = fetch_field(FIELD_INPUT, &input_len);
    if (!input_text)
        return STATUS_INTERNAL;
    JSValue input = JS_ParseJSON(ctx, input_text, input_len, "<input>");
    free(input_text);
    if (JS_IsException(input))
        return failure(STATUS_EXCEPTION);
    if (flags & FLAG_INPUT) {
        JSValue global = JS_GetGlobalObject(ctx);
        int ok = JS_SetPropertyStr(ctx, global, "input", js_dup(input));
        JS_FreeValue(ctx, global);
        if (ok < 0) {
            JS_FreeValue(ctx, input);
            return failure(STATUS_EXCEPTION);
        }
    }

    JSValue value;
    if (!(flags & FLAG_MODULE)) {
        JSValue compiled = compile(flags);
        JS_FreeValue(ctx, input);
        if (JS_IsException(compiled))
            return failure(STATUS_COMPILE);
        value = JS_EvalFunction(ctx, compiled);
        if (JS_IsException(value))
            return failure(STATUS_EXCEPTION);
    } else {
        JSValue module = compile(flags);
        if (JS_IsException(module)) {
            JS_FreeValue(ctx, input);
            return failure(STATUS_COMPILE);
        }
        JSModuleDef *def = JS_VALUE_GET_PTR(module);
        JSValue done = JS_EvalFunction(ctx, module);
        if (JS_IsException(done)) {
            JS_FreeValue(ctx, input);
            return failure(STATUS_EXCEPTION);
        }
        JSValue ignored;
        int st = settle(done, &ignored);
        if (st != STATUS_OK) {
            JS_FreeValue(ctx, input);
            return st;
        }
        JS_FreeValue(ctx, ignored);
        JSValue ns = JS_GetModuleNamespace(ctx, def);
        if (JS_IsException(ns)) {
            JS_FreeValue(ctx, input);
            return failure(STATUS_EXCEPTION);
        }
        JSValue dflt = JS_GetPropertyStr(ctx, ns, "default");
        JS_FreeValue(ctx, ns);
        if (JS_IsException(dflt)) {
            JS_FreeValue(ctx, input);
            return failure(STATUS_EXCEPTION);
        }
        if (JS_IsFunction(ctx, dflt)) {
            value = JS_Call(ctx, dflt, JS_UNDEFINED, 1, vc(&input));
            JS_FreeValue(ctx, dflt);
            if (JS_IsException(value)) {
                JS_FreeValue(ctx, input);
                return failure(STATUS_EXCEPTION);
            }
        } else {
            value = dflt;
        }
        JS_FreeValue(ctx, input);
    }
    JSValue settled;
    int st = settle(value, &settled);
    if (st != STATUS_OK)
        return st;
    return to_json(settled);
}

EXPORT(pal_run) int32_t pal_run(int32_t flags, uint32_t memory_limit, uint32_t stack_budget,
                                uint64_t seed, uint64_t result_bytes)
{
    m_limit = memory_limit;
    result_limit = result_bytes;
    m_peak = m_used;
    meter.phase = PHASE_RUN;
    /* Where this instance's native stack starts (the host records it on the first call). */
    host_stack_low();
    native_stack_low = false;
    stack_probe = STACK_PROBE_EVERY;
    set_stack_limit(stack_budget);
    ctx->random_state = seed ? seed : 1;
    output_full = false;
    return run(flags);
}

/* The address of the meter (fixed in the snapshot). */
EXPORT(pal_meter) uint32_t pal_meter(void)
{
    return (uint32_t)(uintptr_t)&meter;
}
