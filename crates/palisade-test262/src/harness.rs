//! Turning one test in one mode into a Palisade [`Request`], and judging the [`Outcome`].

use std::collections::{BTreeMap, HashMap};

use palisade::{ErrorKind, ExecError, Limits, Mode, Outcome, Request};

use crate::frontmatter::Meta;

/// The way one test is run. A test in one mode is one "run".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunMode {
    /// A classic script, sloppy.
    Sloppy,
    /// A classic script with `"use strict";` as its first line.
    Strict,
    /// An ES module.
    Module,
    /// The test's source alone, as a sloppy script: no harness, no prelude.
    Raw,
}

impl RunMode {
    /// The name used in output and in the known-failures files.
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Sloppy => "sloppy",
            RunMode::Strict => "strict",
            RunMode::Module => "module",
            RunMode::Raw => "raw",
        }
    }

    /// The modes a test runs in, from its flags.
    pub fn for_test(meta: &Meta) -> Vec<RunMode> {
        if meta.has_flag("raw") {
            vec![RunMode::Raw]
        } else if meta.has_flag("module") {
            vec![RunMode::Module]
        } else if meta.has_flag("onlyStrict") {
            vec![RunMode::Strict]
        } else if meta.has_flag("noStrict") {
            vec![RunMode::Sloppy]
        } else {
            vec![RunMode::Sloppy, RunMode::Strict]
        }
    }
}

/// Defines `print` and `$262` as configurable, non-enumerable properties of the global object
/// (so that module code and fixtures see them too). Everything it uses is captured up front, so
/// a test that replaces `Reflect.apply`, `eval` or `ArrayBuffer.prototype.transfer` does not
/// break the host functions.
const PRELUDE: &str = r#"(function (global) {
  var log = console.log, reflectApply = Reflect.apply, indirectEval = eval;
  var defineProperty = Object.defineProperty;
  var transfer = typeof ArrayBuffer === "function" ? ArrayBuffer.prototype.transfer : undefined;
  var detach = typeof transfer === "function" ? Function.prototype.call.bind(transfer) : undefined;
  function print() { reflectApply(log, undefined, arguments); }
  var host = {
    global: global,
    evalScript: function evalScript(src) { return indirectEval(src); },
    detachArrayBuffer: function detachArrayBuffer(buffer) {
      if (detach === undefined) {
        throw new TypeError("$262.detachArrayBuffer: ArrayBuffer.prototype.transfer is not available");
      }
      detach(buffer);
      return null;
    }
  };
  defineProperty(global, "print", { value: print, writable: true, enumerable: false, configurable: true });
  defineProperty(global, "$262", { value: host, writable: true, enumerable: false, configurable: true });
})(globalThis);
"#;

/// What a script's completion value becomes, so that the harness, not the test's last
/// expression, decides the result: Palisade awaits a thenable completion value and serializes
/// the result, neither of which test262 asks for.
const EPILOGUE: &str = "\n;void 0;\n";

/// One test, loaded.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// The path relative to the test262 directory, with `/` separators.
    pub path: String,
    /// The test's source.
    pub source: String,
    /// Its frontmatter.
    pub meta: Meta,
    /// The `*_FIXTURE.*` files beside it: file name and source.
    pub fixtures: Vec<(String, String)>,
}

impl TestCase {
    /// The file name without its directory.
    pub fn basename(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// Whether the test counts as Temporal.
    pub fn is_temporal(&self) -> bool {
        self.path.contains("/Temporal/") || self.meta.has_feature("Temporal")
    }
}

/// Builds the request for one run. Fails when an include is missing from the harness.
pub fn request(
    test: &TestCase,
    mode: RunMode,
    harness: &HashMap<String, String>,
    limits: &Limits,
) -> Result<Request, String> {
    let name = test.basename().to_owned();
    let mut modules: BTreeMap<String, String> = test
        .fixtures
        .iter()
        .map(|(file, src)| (format!("./{file}"), src.clone()))
        .collect();
    if mode == RunMode::Raw {
        return Ok(Request {
            source: test.source.clone(),
            mode: Mode::Script,
            filename: Some(name),
            input: serde_json::Value::Null,
            limits: limits.clone(),
            modules,
            policy: palisade::Policy::permissive(),
        });
    }
    let mut source = String::new();
    if mode == RunMode::Strict {
        source.push_str("\"use strict\";\n");
    }
    source.push_str(PRELUDE);
    let mut files = vec!["assert.js", "sta.js"];
    if test.meta.has_flag("async") {
        files.push("doneprintHandle.js");
    }
    files.extend(test.meta.includes.iter().map(String::as_str));
    for file in files {
        let text = harness
            .get(file)
            .ok_or_else(|| format!("harness file `{file}` not found"))?;
        source.push_str(text);
        source.push('\n');
    }
    source.push_str(&test.source);
    let mode = if mode == RunMode::Module {
        // Some tests import themselves: the test is also supplied under its own name.
        modules.insert(format!("./{name}"), source.clone());
        if needs_wrapper(test) {
            // Palisade calls a module's default export when it is a function; test262 does not.
            // A root module that only imports the test keeps the test's default export uncalled.
            return Ok(Request {
                source: format!("import \"./{name}\";\n"),
                mode: Mode::Module,
                filename: Some(format!("{name}{WRAPPER_SUFFIX}")),
                input: serde_json::Value::Null,
                limits: limits.clone(),
                modules,
                policy: palisade::Policy::permissive(),
            });
        }
        Mode::Module
    } else {
        source.push_str(EPILOGUE);
        Mode::Script
    };
    Ok(Request {
        source,
        mode,
        filename: Some(name),
        input: serde_json::Value::Null,
        limits: limits.clone(),
        modules,
        policy: palisade::Policy::permissive(),
    })
}

/// What the wrapper module of [`needs_wrapper`] is named after the test's own name.
const WRAPPER_SUFFIX: &str = ".palisade-main.mjs";

/// Whether a module test runs under a root module that imports it, rather than as the root
/// module itself: when it may have a default export (the word `default` appears anywhere; a false
/// positive costs nothing). A test that must fail to parse stays the root module, so that its
/// parse error is reported as a `syntax_error` of the request rather than as an exception thrown
/// while loading a dependency.
fn needs_wrapper(test: &TestCase) -> bool {
    let parse_negative = test
        .meta
        .negative
        .as_ref()
        .is_some_and(|n| n.phase == "parse");
    !parse_negative && test.source.contains("default")
}

/// Judges one run: `Ok` if it passed, else why not.
pub fn judge(meta: &Meta, mode: RunMode, outcome: &Outcome) -> Result<(), String> {
    if let Some(neg) = &meta.negative {
        let name = outcome
            .error()
            .and_then(ExecError::guest)
            .and_then(|g| g.name.as_deref());
        let named = name == Some(neg.kind.as_str());
        let kind = outcome.error_kind();
        let ok = match neg.phase.as_str() {
            "parse" if neg.kind == "SyntaxError" => kind == Some(ErrorKind::SyntaxError) && named,
            "parse" | "resolution" => {
                matches!(kind, Some(ErrorKind::SyntaxError | ErrorKind::Exception)) && named
            }
            "runtime" => kind == Some(ErrorKind::Exception) && named,
            other => return Err(format!("unknown negative phase `{other}`")),
        };
        return if ok {
            Ok(())
        } else {
            Err(format!(
                "expected {} {}, got {}",
                neg.phase,
                neg.kind,
                describe(outcome)
            ))
        };
    }
    match &outcome.result {
        Ok(_) => {}
        // A raw test's completion value is its own; not being JSON is no failure.
        Err(ExecError::NotSerializable { .. }) if mode == RunMode::Raw => {}
        Err(_) => return Err(describe(outcome)),
    }
    if meta.has_flag("async") {
        if let Some(line) = outcome
            .stdout
            .lines()
            .find(|l| l.starts_with("Test262:AsyncTestFailure"))
        {
            return Err(line.to_owned());
        }
        if !outcome.stdout.contains("Test262:AsyncTestComplete") {
            return Err("async test never printed Test262:AsyncTestComplete".into());
        }
    }
    Ok(())
}

/// A one-line description of how a run ended.
pub fn describe(outcome: &Outcome) -> String {
    match &outcome.result {
        Ok(_) => "ok".into(),
        Err(e) => {
            let kind = e.kind().as_str();
            match e.guest() {
                Some(g) => {
                    let text = g.to_string();
                    format!("{kind}: {}", one_line(&text))
                }
                None => format!("{kind}: {}", one_line(&e.to_string())),
            }
        }
    }
}

/// A message on one line: whitespace runs collapsed, cut at 300 characters.
fn one_line(s: &str) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::frontmatter::Negative;

    fn case(flags: &[&str]) -> TestCase {
        TestCase {
            path: "test/language/x/y.js".into(),
            source: "assert(true);".into(),
            meta: Meta {
                flags: flags.iter().map(|s| (*s).to_owned()).collect(),
                ..Meta::default()
            },
            fixtures: vec![("a_FIXTURE.js".into(), "export var a = 1;".into())],
        }
    }

    fn harness() -> HashMap<String, String> {
        ["assert.js", "sta.js", "doneprintHandle.js"]
            .into_iter()
            .map(|f| (f.to_owned(), format!("// {f}")))
            .collect()
    }

    #[test]
    fn modes() {
        assert_eq!(
            RunMode::for_test(&case(&[]).meta),
            [RunMode::Sloppy, RunMode::Strict]
        );
        assert_eq!(
            RunMode::for_test(&case(&["onlyStrict"]).meta),
            [RunMode::Strict]
        );
        assert_eq!(
            RunMode::for_test(&case(&["module", "async"]).meta),
            [RunMode::Module]
        );
        assert_eq!(RunMode::for_test(&case(&["raw"]).meta), [RunMode::Raw]);
    }

    #[test]
    fn requests() {
        let h = harness();
        let l = Limits::default();
        let strict = request(&case(&[]), RunMode::Strict, &h, &l).unwrap();
        assert!(strict.source.starts_with("\"use strict\";\n"));
        assert!(strict.source.contains("// sta.js"));
        assert_eq!(strict.mode, Mode::Script);
        assert!(strict.modules.contains_key("./a_FIXTURE.js"));
        let module = request(&case(&["module"]), RunMode::Module, &h, &l).unwrap();
        assert_eq!(module.mode, Mode::Module);
        assert_eq!(module.filename.as_deref(), Some("y.js"));
        assert_eq!(module.modules["./y.js"], module.source);
        let mut dflt = case(&["module"]);
        dflt.source = "export default function () { throw 1; }".into();
        let wrapped = request(&dflt, RunMode::Module, &h, &l).unwrap();
        assert_eq!(wrapped.source, "import \"./y.js\";\n");
        assert!(wrapped.modules["./y.js"].ends_with(&dflt.source));
        let raw = request(&case(&["raw"]), RunMode::Raw, &h, &l).unwrap();
        assert_eq!(raw.source, "assert(true);");
        let mut missing = case(&[]);
        missing.meta.includes.push("nope.js".into());
        assert!(request(&missing, RunMode::Sloppy, &h, &l).is_err());
    }

    #[test]
    fn judging_negative() {
        let meta = Meta {
            negative: Some(Negative {
                phase: "runtime".into(),
                kind: "TypeError".into(),
            }),
            ..Meta::default()
        };
        let ok = Outcome {
            result: Ok(serde_json::Value::Null),
            stdout: String::new(),
            stderr: String::new(),
            truncated: false,
            metrics: palisade::Metrics::default(),
        };
        assert!(judge(&meta, RunMode::Sloppy, &ok).is_err());
        let thrown = Outcome {
            result: Err(ExecError::Exception(palisade::GuestError {
                name: Some("TypeError".into()),
                message: "x".into(),
                ..palisade::GuestError::default()
            })),
            ..ok.clone()
        };
        assert!(judge(&meta, RunMode::Sloppy, &thrown).is_ok());
        let plain = Meta::default();
        assert!(judge(&plain, RunMode::Sloppy, &ok).is_ok());
        assert!(judge(&plain, RunMode::Sloppy, &thrown).is_err());
        let asynchronous = Meta {
            flags: vec!["async".into()],
            ..Meta::default()
        };
        assert!(judge(&asynchronous, RunMode::Sloppy, &ok).is_err());
        let done = Outcome {
            stdout: "Test262:AsyncTestComplete\n".into(),
            ..ok
        };
        assert!(judge(&asynchronous, RunMode::Sloppy, &done).is_ok());
    }
}
