//! What a caller hands an engine: source, mode, input and limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::limits::Limits;
use crate::policy::Policy;

/// How the source is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A classic script; the result is its completion value (awaited if it is a thenable).
    #[default]
    Script,
    /// An ES module; the result is its default export (called with `input` if it is a function,
    /// then awaited), or `null` without one.
    Module,
}

impl Mode {
    /// The mode a file name implies: `.mjs` and `.mts` are modules, everything else a script.
    pub fn from_file_name(name: &str) -> Mode {
        if name.ends_with(".mjs") || name.ends_with(".mts") {
            Mode::Module
        } else {
            Mode::Script
        }
    }
}

/// One execution request.
///
/// ```
/// use palisade_core::{Request, Mode};
/// let req = Request::script("input.a + 1").with_input(serde_json::json!({"a": 2}));
/// assert_eq!(req.mode, Mode::Script);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The JavaScript source.
    pub source: String,
    /// Script or module.
    #[serde(default)]
    pub mode: Mode,
    /// The name the guest sees in stack traces. Defaults to `script.js` or `module.mjs`.
    #[serde(default)]
    pub filename: Option<String>,
    /// The JSON value exposed as the global `input` (and passed to a module's default export).
    #[serde(default)]
    pub input: serde_json::Value,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Modules the guest may import, by specifier (`"./util.js"`, `"lodash"`) to source. Nothing
    /// else can be imported: see [`crate::modules`].
    #[serde(default)]
    pub modules: BTreeMap<String, String>,
    /// What the guest may touch.
    #[serde(default)]
    pub policy: Policy,
}

impl Request {
    /// A classic script with no input and default limits.
    pub fn script(source: impl Into<String>) -> Self {
        Request {
            source: source.into(),
            mode: Mode::Script,
            filename: None,
            input: serde_json::Value::Null,
            limits: Limits::default(),
            modules: BTreeMap::new(),
            policy: Policy::default(),
        }
    }

    /// An ES module with no input and default limits.
    pub fn module(source: impl Into<String>) -> Self {
        Request {
            mode: Mode::Module,
            ..Request::script(source)
        }
    }

    /// Sets the input.
    pub fn with_input(mut self, input: serde_json::Value) -> Self {
        self.input = input;
        self
    }

    /// Sets the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Adds a module the guest may import.
    pub fn with_module(mut self, specifier: impl Into<String>, source: impl Into<String>) -> Self {
        self.modules.insert(specifier.into(), source.into());
        self
    }

    /// Sets the policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the file name shown in stack traces.
    pub fn with_filename(mut self, name: impl Into<String>) -> Self {
        self.filename = Some(name.into());
        self
    }

    /// The file name shown in stack traces.
    pub fn file_name(&self) -> &str {
        match (&self.filename, self.mode) {
            (Some(f), _) => f,
            (None, Mode::Script) => "script.js",
            (None, Mode::Module) => "module.mjs",
        }
    }

    /// The text of a file this request runs, by the name its stack frames give: the source
    /// under [`Request::file_name`], or a module's.
    pub fn text_of(&self, file: &str) -> Option<&str> {
        if file == self.file_name() {
            return Some(&self.source);
        }
        self.modules.get(file).map(String::as_str)
    }
}
