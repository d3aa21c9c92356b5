//! Module specifier resolution shared by every engine. A guest can import only the modules the
//! caller supplied in [`Request::modules`](crate::Request::modules): no file system, no network.
//!
//! Specifiers starting with `./` or `../` resolve against the importing module's directory (the
//! main module sits at the root); any other specifier is a bare name looked up as is.

/// The stable message for an import of a module that was not supplied or that the policy does
/// not allow. Uncaught, it is reported as `policy_denied`.
pub fn not_found_message(specifier: &str, importer: &str) -> String {
    crate::policy::denied_message(
        &format!("importing '{specifier}' from '{importer}'"),
        "only modules supplied with the request and allowed by policy.modules can be imported",
    )
}

/// Resolves `specifier` imported by the module named `importer` (`None` for the main module).
///
/// ```
/// use palisade_core::modules::resolve;
/// assert_eq!(resolve(None, "./a.js").as_deref(), Some("a.js"));
/// assert_eq!(resolve(Some("lib/b.js"), "./c.js").as_deref(), Some("lib/c.js"));
/// assert_eq!(resolve(Some("lib/b.js"), "../d.js").as_deref(), Some("d.js"));
/// assert_eq!(resolve(Some("lib/b.js"), "lodash").as_deref(), Some("lodash"));
/// assert_eq!(resolve(None, "../escape.js"), None);
/// ```
pub fn resolve(importer: Option<&str>, specifier: &str) -> Option<String> {
    if !(specifier.starts_with("./") || specifier.starts_with("../")) {
        return Some(specifier.to_owned());
    }
    let mut parts: Vec<&str> = match importer {
        Some(base) => {
            let mut p: Vec<&str> = base.split('/').collect();
            p.pop();
            p
        }
        None => Vec::new(),
    };
    for seg in specifier.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

/// Normalizes a key of [`Request::modules`](crate::Request::modules) the way a specifier
/// imported by the main module resolves (`./a.js` and `a.js` name the same module).
pub fn normalize_key(key: &str) -> String {
    resolve(None, key).unwrap_or_else(|| key.to_owned())
}
