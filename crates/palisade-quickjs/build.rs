//! Compiles Palisade's own fixed scripts (the host prelude, the console formatter, ...) to
//! QuickJS bytecode at build time, with the same QuickJS-NG sources the engine links
//! (rquickjs-sys, one version in Cargo.lock), so a process reads bytecode instead of parsing
//! ~40 KB of JavaScript when it builds its first runtime. `trusted::tests` compiles every script
//! again inside the engine's own runtime and requires the same bytes.
//!
//! The list below and `src/trusted.rs` name the same scripts with the same file names and flags;
//! that test fails if they drift apart.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::path::{Path, PathBuf};

use rquickjs_sys as qjs;

/// (output name, source path relative to this crate, QuickJS file name, backtrace barrier).
const SCRIPTS: &[(&str, &str, &str, bool)] = &[
    (
        "host",
        "../palisade-core/js/host.js",
        "palisade:host",
        false,
    ),
    (
        "host_fetch",
        "../palisade-core/js/host_fetch.js",
        "palisade:fetch",
        false,
    ),
    (
        "console",
        "../palisade-core/js/console.js",
        "palisade:console",
        true,
    ),
    (
        "deterministic",
        "../palisade-core/js/deterministic.js",
        "palisade:deterministic",
        false,
    ),
    ("protos", "js/protos.js", "palisade:protos", false),
];

fn main() {
    // QuickJS writes bytecode in the byte order of the machine that writes it, and reads it
    // without checking: bytecode from this build script is only right for a target like the
    // build host (the equality test only runs natively). Refuse anything else loudly.
    let target_endian = std::env::var("CARGO_CFG_TARGET_ENDIAN").unwrap_or_default();
    let host_endian = if cfg!(target_endian = "little") {
        "little"
    } else {
        "big"
    };
    let target_width = std::env::var("CARGO_CFG_TARGET_POINTER_WIDTH").unwrap_or_default();
    let host_width = usize::BITS.to_string();
    assert!(
        target_endian == host_endian && target_width == host_width,
        "palisade-quickjs compiles its scripts to QuickJS bytecode at build time, which needs a \
         target with the build host's byte order and pointer width ({host_endian}-endian, \
         {host_width}-bit; the target is {target_endian}-endian, {target_width}-bit)"
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    // SAFETY: a fresh runtime and context, used only on this thread and freed below.
    let (rt, ctx) = unsafe {
        let rt = qjs::JS_NewRuntime();
        assert!(!rt.is_null(), "JS_NewRuntime failed");
        let ctx = qjs::JS_NewContext(rt);
        assert!(!ctx.is_null(), "JS_NewContext failed");
        (rt, ctx)
    };
    for &(name, path, filename, barrier) in SCRIPTS {
        let path = dir.join(path);
        println!("cargo:rerun-if-changed={}", path.display());
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let bytecode = compile(ctx, &source, filename, barrier, &path);
        std::fs::write(out.join(format!("{name}.qbc")), bytecode)
            .unwrap_or_else(|e| panic!("writing {name}.qbc: {e}"));
    }
    // SAFETY: nothing compiled above is still referenced (every value was freed).
    unsafe {
        qjs::JS_FreeContext(ctx);
        qjs::JS_FreeRuntime(rt);
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// Compiles `source` as a strict global script (what `ffi::compile_trusted` does at run time)
/// and returns its bytecode.
fn compile(
    ctx: *mut qjs::JSContext,
    source: &str,
    filename: &str,
    barrier: bool,
    path: &Path,
) -> Vec<u8> {
    let src = CString::new(source).expect("no NUL in Palisade's scripts");
    let name = CString::new(filename).expect("no NUL in the file name");
    let mut flags =
        qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_STRICT | qjs::JS_EVAL_FLAG_COMPILE_ONLY;
    if barrier {
        flags |= qjs::JS_EVAL_FLAG_BACKTRACE_BARRIER;
    }
    // SAFETY: `src` is NUL-terminated with `source.len()` bytes before the NUL; `ctx` is live.
    let compiled = unsafe {
        qjs::JS_Eval(
            ctx,
            src.as_ptr(),
            source.len() as _,
            name.as_ptr(),
            flags as i32,
        )
    };
    // SAFETY: testing a returned value's tag reads no memory.
    if unsafe { qjs::JS_IsException(compiled) } {
        panic!("{} does not compile: {}", path.display(), exception(ctx));
    }
    let mut len: qjs::size_t = 0;
    // SAFETY: `compiled` is a live function-bytecode value of `ctx`; `len` is an out-pointer.
    let ptr =
        unsafe { qjs::JS_WriteObject(ctx, &mut len, compiled, qjs::JS_WRITE_OBJ_BYTECODE as i32) };
    assert!(
        !ptr.is_null(),
        "JS_WriteObject failed for {}",
        path.display()
    );
    // SAFETY: JS_WriteObject returned `len` bytes allocated by `ctx`'s allocator; they are
    // copied and then freed once, as is `compiled`.
    unsafe {
        let bytes = std::slice::from_raw_parts(ptr, len as usize).to_vec();
        qjs::js_free(ctx, ptr.cast());
        qjs::JS_FreeValue(ctx, compiled);
        bytes
    }
}

/// The pending exception of `ctx`, as text.
fn exception(ctx: *mut qjs::JSContext) -> String {
    // SAFETY: `ctx` is live and has a pending exception; every value and string is freed once.
    unsafe {
        let e = qjs::JS_GetException(ctx);
        let mut len: usize = 0;
        let s = qjs::JS_ToCStringLen(ctx, &mut len, e);
        let text = if s.is_null() {
            String::from("(unprintable)")
        } else {
            let t = String::from_utf8_lossy(std::slice::from_raw_parts(s.cast::<u8>(), len))
                .into_owned();
            qjs::JS_FreeCString(ctx, s);
            t
        };
        qjs::JS_FreeValue(ctx, e);
        text
    }
}
