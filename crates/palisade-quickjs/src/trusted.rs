//! Palisade's own fixed scripts, never guest code, as QuickJS bytecode compiled at build time
//! (`build.rs`).
//!
//! Parsing them when a process built its first runtime was about a third of a one-shot
//! `palisade run -e 1+1` (perf, 2026-11-30); reading their bytecode is a fraction of that.
//! QuickJS does not validate bytecode, so these bytes must be exactly what this engine's own
//! QuickJS writes for the same source, file name and flags: `build.rs` compiles them with the
//! same QuickJS-NG sources (rquickjs-sys, one version in Cargo.lock), and the test below
//! compiles every script again inside the engine's runtime and requires the same bytes.

/// One fixed script: its source (for the test) and its bytecode (what runs).
#[derive(Debug)]
pub(crate) struct Trusted {
    // The source, file name and flags are what `build.rs` compiled; only the test reads them.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) source: &'static str,
    /// The file name QuickJS records (error positions and stacks name it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) filename: &'static str,
    /// Compiled with `JS_EVAL_FLAG_BACKTRACE_BARRIER`: stacks stop at its frames.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) barrier: bool,
    pub(crate) bytecode: &'static [u8],
}

/// A [`Trusted`] static: the bytecode `build.rs` wrote as `OUT_DIR/<file>.qbc`.
macro_rules! trusted {
    ($(#[$doc:meta])* $name:ident, $file:literal, $source:expr, $filename:literal, $barrier:literal) => {
        $(#[$doc])*
        pub(crate) static $name: Trusted = Trusted {
            source: $source,
            filename: $filename,
            barrier: $barrier,
            bytecode: include_bytes!(concat!(env!("OUT_DIR"), "/", $file, ".qbc")),
        };
    };
}

trusted!(
    /// The host prelude: a factory that builds the host APIs ([`palisade_core::HOST_JS`]).
    HOST, "host", palisade_core::HOST_JS, "palisade:host", false
);
trusted!(
    /// `fetch`, `Headers` and `Response`, read when a run first reads one of them.
    HOST_FETCH, "host_fetch", palisade_core::HOST_FETCH_JS, "palisade:fetch", false
);
trusted!(
    /// The console formatter's factory; a backtrace barrier, so guest stacks never show it.
    CONSOLE, "console", palisade_core::CONSOLE_JS, "palisade:console", true
);
trusted!(
    /// Deterministic mode's clock behind `Date`.
    DETERMINISTIC, "deterministic", palisade_core::DETERMINISTIC_JS, "palisade:deterministic", false
);
trusted!(
    /// The prototypes of async, generator and async generator functions, which have no global.
    PROTOS, "protos", include_str!("../js/protos.js"), "palisade:protos", false
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The build script's bytes are what this engine's QuickJS writes for the same script, in a
    /// runtime built as the engine builds it. Anything else could not be read safely.
    #[test]
    fn build_time_bytecode_is_what_the_engine_itself_compiles() {
        let rt = rquickjs::Runtime::new().expect("runtime");
        let ctx = rquickjs::Context::full(&rt).expect("context");
        ctx.with(|ctx| {
            for script in [&HOST, &HOST_FETCH, &CONSOLE, &DETERMINISTIC, &PROTOS] {
                let compiled = crate::ffi::compile_trusted(&ctx, script).expect("compiles");
                let bytes = crate::ffi::write_bytecode(&ctx, &compiled).expect("writes");
                assert!(
                    bytes == script.bytecode,
                    "{}: build.rs wrote {} bytes, the engine {}: the two compiles differ",
                    script.filename,
                    script.bytecode.len(),
                    bytes.len()
                );
            }
        });
    }

    /// The shared scripts carry the file names every engine gives them, so a frame inside one
    /// reads the same on the wasm engine (and the outcome drops it, as a `palisade:` file).
    #[test]
    fn shared_scripts_have_the_file_names_every_engine_uses() {
        assert_eq!(HOST.filename, palisade_core::HOST_JS_FILE);
        assert_eq!(HOST_FETCH.filename, palisade_core::HOST_FETCH_JS_FILE);
        assert_eq!(DETERMINISTIC.filename, palisade_core::DETERMINISTIC_JS_FILE);
        assert_eq!(CONSOLE.filename, palisade_core::CONSOLE_JS_FILE);
        assert!(PROTOS.filename.starts_with("palisade:"));
    }

    /// Every script also runs from its bytecode in a real engine run (the prelude, the console,
    /// fetch and deterministic mode all take part).
    #[test]
    fn every_script_runs_from_its_bytecode() {
        use palisade_core::{Engine, Request};
        let engine = crate::QuickJs::new();
        let host = std::sync::Arc::new(palisade_core::host::NoHost);
        let mut policy = palisade_core::Policy {
            deterministic: Some(palisade_core::policy::Deterministic::default()),
            ..palisade_core::Policy::default()
        };
        policy.fetch.allow = vec!["https://example.com/".parse().expect("a pattern")];
        let req = Request::script(
            "console.log({a: 1}); [typeof fetch, typeof Headers, Date.now(), \
             Object.getPrototypeOf(async function () {}) === Object.getPrototypeOf(async () => {})]",
        )
        .with_policy(policy);
        let out = engine.execute(&req, host);
        assert_eq!(
            out.result,
            Ok(serde_json::json!([
                "function",
                "function",
                1_704_067_200_000_i64,
                true
            ]))
        );
        assert_eq!(out.stdout, "{ a: 1 }\n");
    }
}
