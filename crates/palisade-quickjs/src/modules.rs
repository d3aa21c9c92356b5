//! Module loading: only the modules supplied with the request, resolved by
//! [`palisade_core::modules`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use palisade_core::modules::{normalize_key, not_found_message, resolve};
use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Exception, Module};

/// The current request's modules, keyed by normalized name. Installed as the runtime's
/// resolver and loader when the runtime is built, filled in when a run starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Modules(Arc<Mutex<Table>>);

#[derive(Debug, Default)]
struct Table {
    sources: BTreeMap<String, String>,
    main: String,
}

impl Modules {
    pub(crate) fn set(&self, supplied: &BTreeMap<String, String>, main: &str) {
        let mut t = crate::lock(&self.0);
        t.sources = supplied
            .iter()
            .map(|(k, v)| (normalize_key(k), v.clone()))
            .collect();
        t.main = main.to_owned();
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
        let t = crate::lock(&self.0);
        let importer = (base != t.main).then_some(base);
        match resolve(importer, name) {
            Some(key) if t.sources.contains_key(&key) => Ok(key),
            _ => Err(Exception::throw_type(ctx, &not_found_message(name, base))),
        }
    }
}

impl Loader for Modules {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        let (source, main) = {
            let t = crate::lock(&self.0);
            (t.sources.get(name).cloned(), t.main.clone())
        };
        match source {
            Some(src) => Module::declare(ctx.clone(), name, src.into_bytes()),
            None => Err(Exception::throw_type(ctx, &not_found_message(name, &main))),
        }
    }
}
