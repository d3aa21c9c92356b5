//! Module loading: only the modules supplied with the request, resolved by
//! [`palisade_core::modules`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use palisade_core::modules::{normalize_key, not_found_message, resolve};
use palisade_core::Policy;
use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Exception, Module};

/// Native stack a module resolution or load must leave free: room for parsing one more module
/// (the parser stops at QuickJS's own limit) and for throwing.
const MODULE_STACK_RESERVE: usize = 128 << 10;

/// The current request's modules, keyed by normalized name. Installed as the runtime's
/// resolver and loader when the runtime is built, filled in when a run starts.
#[derive(Debug, Clone)]
pub(crate) struct Modules {
    table: Arc<Mutex<Table>>,
    denials: Arc<Mutex<palisade_core::policy::Denials>>,
}

#[derive(Debug, Default)]
struct Table {
    /// Supplied and allowed by the policy, keyed by normalized name.
    sources: BTreeMap<String, String>,
    main: String,
}

impl Modules {
    pub(crate) fn new(denials: Arc<Mutex<palisade_core::policy::Denials>>) -> Self {
        Modules {
            table: Arc::default(),
            denials,
        }
    }

    pub(crate) fn set(&self, supplied: &BTreeMap<String, String>, main: &str, policy: &Policy) {
        let mut t = crate::lock(&self.table);
        t.sources = supplied
            .iter()
            .map(|(k, v)| (normalize_key(k), v.clone()))
            .filter(|(k, _)| policy.allows_module(k))
            .collect();
        t.main = main.to_owned();
    }

    /// QuickJS resolves a module graph recursively, and that recursion (unlike its parser and
    /// interpreter) does not check its stack limit: a chain of thousands of imports would run
    /// the native stack out and take the host process with it. Each resolution and load first
    /// checks there is room left, and otherwise throws the stack-overflow error, as deep
    /// recursion anywhere else does.
    fn check_stack(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
        match stacker::remaining_stack() {
            Some(left) if left < MODULE_STACK_RESERVE => Err(Exception::throw_range(
                ctx,
                palisade_core::STACK_OVERFLOW_MESSAGE,
            )),
            _ => Ok(()),
        }
    }

    /// Records and throws the policy error for an import that is not allowed.
    fn deny(&self, ctx: &Ctx<'_>, name: &str, base: &str) -> rquickjs::Error {
        let message = not_found_message(name, base);
        crate::lock(&self.denials).record(&message);
        Exception::throw_type(ctx, &message)
    }
}

impl Resolver for Modules {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        self.resolve_name(ctx, base, name)
    }
}

impl Modules {
    /// The normalized name `name` imported from `base` resolves to, or the policy error (thrown).
    /// QuickJS reaches this through `ffi::normalize_module_name`, which reads both names as
    /// text the way every engine does.
    pub(crate) fn resolve_name(
        &self,
        ctx: &Ctx<'_>,
        base: &str,
        name: &str,
    ) -> rquickjs::Result<String> {
        crate::run::shielded(ctx, || {
            Self::check_stack(ctx)?;
            let found = {
                let t = crate::lock(&self.table);
                let importer = (base != t.main).then_some(base);
                resolve(importer, name).filter(|key| t.sources.contains_key(key))
            };
            found.ok_or_else(|| self.deny(ctx, name, base))
        })
    }
}

impl Loader for Modules {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        crate::run::shielded(ctx, || {
            Self::check_stack(ctx)?;
            let (source, main) = {
                let t = crate::lock(&self.table);
                (t.sources.get(name).cloned(), t.main.clone())
            };
            match source {
                // Compiled from the main module's compile (QuickJS resolves static imports while
                // it compiles), which `run::unmask_stack_overflow` judges as a whole; a dynamic
                // `import()` is not judged (see there).
                Some(src) => crate::ffi::declare_module(ctx, name, src.as_bytes()),
                None => Err(self.deny(ctx, name, &main)),
            }
        })
    }
}
