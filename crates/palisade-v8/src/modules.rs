//! libmini_racer runs classic scripts only, so ES modules are rewritten into scripts here, keeping
//! every line and column of the guest's code where it was.
//!
//! A module becomes a generator function,
//! `(function* ($_impt, $_ns, $_x, $_m, $_mt) {"use strict";<exports>yield;<imports><body>\n})`,
//! or, if it may use top-level `await` (an `await` token outside every function body), an `async
//! function` without the `yield`. Import and export declarations in the body are blanked out
//! (spaces, newlines kept) or replaced by text of the same length. The prelude's loader links every
//! module of the graph before any runs, as ECMAScript does: each namespace (a proxy) has a data
//! property per exported name ([`Wrapped::names`]) whose value it reads through a getter
//! `<exports>` registers (`$_m.e`); a generator registers them at link time (it stops at `yield`),
//! so a function a module exports is callable in a cycle before the module runs; an async module
//! registers them when it starts. The loader then checks the imported names ([`Wrapped::checks`]),
//! adds `export *` names and seals each namespace; a denied import or a missing export fails there,
//! before any module code runs. It evaluates the graph depth-first, synchronously: module bodies
//! and their promise jobs interleave as in ECMAScript; an async module runs until its first
//! `await`, the modules that import it wait for it, and its siblings go on. `<imports>` binds the
//! imported names from the namespaces (`$_ns(spec)`) once, when the module is evaluated: a later
//! change to an exported `let` is not seen through them (it is through the namespace). The `"use
//! strict"` directive and `undefined` receiver give module semantics. The body starts on line 1,
//! right after the prefix, so every line keeps its number, in the guest's own `e.stack` too; only
//! columns on line 1 are shifted, by the prefix's length, and the host shifts them back in the
//! outcome.
//!
//! Dynamic `import(` (in scripts and modules) becomes `$_impt(`, the same length; `import.meta`
//! becomes `$_mt` and spaces, the module's meta object (empty, as on the QuickJS engines).
//!
//! The scanner is a tokenizer, not a parser: it knows strings, template literals, comments and
//! regular expression literals (told from division by the previous token), which is what finding
//! top-level `import`/`export` needs.

/// The identifier `import(` is rewritten to (same length as `import`).
pub(crate) const DYN_IMPORT: &str = "$_impt";

/// The identifier `import.meta` is rewritten to (padded with spaces).
const META: &str = "$_mt";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Punct,
    Str,
    Template,
    Regex,
    Num,
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
    depth: usize,
}

const REGEX_AFTER: &[&str] = &[
    "return",
    "typeof",
    "instanceof",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
];

fn is_ident_start(c: char) -> bool {
    c == '$' || c == '_' || c.is_alphabetic() || c == '\\'
}

fn is_ident_part(c: char) -> bool {
    is_ident_start(c) || c.is_alphanumeric() || c == '\u{200c}' || c == '\u{200d}'
}

/// Splits `src` into tokens (comments and whitespace dropped). Never fails: unterminated
/// constructs end at the end of the source (the engine reports the syntax error).
fn tokenize(src: &str) -> Vec<Tok> {
    let b: Vec<(usize, char)> = src.char_indices().collect();
    let n = b.len();
    let at = |i: usize| b.get(i).map_or('\0', |x| x.1);
    let pos = |i: usize| b.get(i).map_or(src.len(), |x| x.0);
    let mut toks: Vec<Tok> = Vec::new();
    // Stack of open brackets; `T` marks a template substitution `${`.
    let mut stack: Vec<char> = Vec::new();
    let mut i = 0;
    // Scans template characters from `i` (just after '`' or '}'), returns the index after the
    // closing '`' or after '${' (pushing 'T').
    let scan_template = |mut i: usize, stack: &mut Vec<char>| -> usize {
        while i < n {
            match at(i) {
                '\\' => i += 2,
                '`' => return i + 1,
                '$' if at(i + 1) == '{' => {
                    stack.push('T');
                    return i + 2;
                }
                _ => i += 1,
            }
        }
        n
    };
    while i < n {
        let c = at(i);
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && at(i + 1) == '/' {
            while i < n
                && at(i) != '\n'
                && at(i) != '\r'
                && at(i) != '\u{2028}'
                && at(i) != '\u{2029}'
            {
                i += 1;
            }
            continue;
        }
        if c == '/' && at(i + 1) == '*' {
            i += 2;
            while i < n && !(at(i) == '*' && at(i + 1) == '/') {
                i += 1;
            }
            i = (i + 2).min(n);
            continue;
        }
        let depth = stack.len();
        let start = i;
        let kind;
        if c == '"' || c == '\'' {
            i += 1;
            while i < n && at(i) != c && at(i) != '\n' {
                if at(i) == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(n);
            kind = Kind::Str;
        } else if c == '`' {
            i = scan_template(i + 1, &mut stack);
            kind = Kind::Template;
        } else if c == '}' && stack.last() == Some(&'T') {
            stack.pop();
            i = scan_template(i + 1, &mut stack);
            kind = Kind::Template;
        } else if is_ident_start(c) {
            i += 1;
            while i < n && is_ident_part(at(i)) {
                i += 1;
            }
            kind = Kind::Ident;
        } else if c.is_ascii_digit() || (c == '.' && at(i + 1).is_ascii_digit()) {
            i += 1;
            while i < n && (at(i).is_alphanumeric() || at(i) == '.' || at(i) == '_') {
                i += 1;
            }
            kind = Kind::Num;
        } else if c == '/' && regex_allowed(src, toks.last()) {
            i += 1;
            let mut class = false;
            while i < n && at(i) != '\n' {
                match at(i) {
                    '\\' => i += 1,
                    '[' => class = true,
                    ']' => class = false,
                    '/' if !class => break,
                    _ => {}
                }
                i += 1;
            }
            i = (i + 1).min(n);
            while i < n && is_ident_part(at(i)) {
                i += 1;
            }
            kind = Kind::Regex;
        } else {
            match c {
                '{' | '(' | '[' => stack.push(c),
                '}' | ')' | ']' => {
                    stack.pop();
                }
                _ => {}
            }
            i += 1;
            // Keep `?.` and `=>` as one token; other punctuation can stay single characters.
            if (c == '?' && at(i) == '.' && !at(i + 1).is_ascii_digit())
                || (c == '=' && at(i) == '>')
            {
                i += 1;
            }
            kind = Kind::Punct;
        }
        let depth = if kind == Kind::Punct && matches!(c, '}' | ')' | ']') {
            stack.len()
        } else {
            depth
        };
        toks.push(Tok {
            kind,
            start: pos(start),
            end: pos(i),
            depth,
        });
    }
    toks
}

fn regex_allowed(src: &str, prev: Option<&Tok>) -> bool {
    let Some(t) = prev else { return true };
    let text = &src[t.start..t.end];
    match t.kind {
        Kind::Ident => REGEX_AFTER.contains(&text),
        Kind::Punct => !matches!(text, ")" | "]" | "}"),
        Kind::Num | Kind::Str | Kind::Template | Kind::Regex => false,
    }
}

/// Edits to the source, each replacing a byte range with text.
#[derive(Debug, Default)]
struct Edits(Vec<(usize, usize, String)>);

impl Edits {
    /// Replaces `[start, end)` with spaces, keeping line breaks.
    fn blank(&mut self, src: &str, start: usize, end: usize) {
        let text: String = src[start..end]
            .chars()
            .map(|c| {
                if matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
                    c
                } else {
                    ' '
                }
            })
            .collect();
        self.0.push((start, end, text));
    }

    fn replace(&mut self, start: usize, end: usize, text: &str) {
        self.0.push((start, end, text.to_owned()));
    }

    fn apply(mut self, src: &str) -> String {
        self.0.sort_by_key(|e| e.0);
        let mut out = String::with_capacity(src.len() + 16);
        let mut last = 0;
        for (s, e, t) in self.0 {
            if s < last {
                continue;
            }
            out.push_str(&src[last..s]);
            out.push_str(&t);
            last = e;
        }
        out.push_str(&src[last..]);
        out
    }
}

fn is_dynamic_import(src: &str, toks: &[Tok], closing: &[usize], k: usize) -> bool {
    let t = toks[k];
    if t.kind != Kind::Ident || &src[t.start..t.end] != "import" {
        return false;
    }
    let next_paren = toks.get(k + 1).is_some_and(|n| &src[n.start..n.end] == "(");
    let after_dot = k > 0 && matches!(&src[toks[k - 1].start..toks[k - 1].end], "." | "?.");
    next_paren && !after_dot && !is_method_definition(src, toks, closing, k)
}

/// Whether `import` at `toks[k]`, followed by `(`, names a method being defined (`import(x) {
/// ... }` in a class or an object literal, also after `get`, `set`, `static`, `async` or `*`),
/// not a call: the token before it can start a member, and the parenthesised list is followed
/// by `{`. Until 2026-12-01 such methods were renamed `$_impt`, so `new A().import(1)` threw
/// "is not a function" on v8 only. Both are needed: after `await`, `extends` or `=`, an
/// `import(...)` followed by `{` is a call (a block after a statement ended by ASI, or a class
/// extending the imported value). What remains misread is a dynamic import statement that
/// starts a block or follows `;` or `,` and is followed by a bare block on the next line.
fn is_method_definition(src: &str, toks: &[Tok], closing: &[usize], k: usize) -> bool {
    let member_start = k == 0
        || matches!(
            &src[toks[k - 1].start..toks[k - 1].end],
            "{" | "}" | ";" | "," | "*" | "get" | "set" | "static" | "async"
        );
    member_start
        && closing
            .get(k + 1)
            .and_then(|&close| toks.get(close.checked_add(1)?))
            .is_some_and(|n| &src[n.start..n.end] == "{")
}

/// For each token, the index of the `)` that closes it if it is a `(`, else `usize::MAX`: found
/// once for the whole source, in one pass (a scan per `import(` was quadratic: 40,000 unclosed
/// `import(` took a whole timeout to rewrite).
/// The first `)`, `]` or `}` that closes nothing the source opened. In a module it would close
/// the wrapper's function instead, and what follows would run outside the module: until
/// 2026-12-01 `export default 1; }); console.log("escaped"); (function(){` printed on v8, where
/// the QuickJS engines report a syntax error (found by a helper's review).
fn stray_closer(src: &str, toks: &[Tok]) -> Option<usize> {
    let mut open = 0usize;
    for (j, t) in toks.iter().enumerate() {
        if t.kind != Kind::Punct {
            continue;
        }
        match &src[t.start..t.end] {
            "(" | "[" | "{" => open += 1,
            ")" | "]" | "}" => match open.checked_sub(1) {
                Some(n) => open = n,
                None => return Some(j),
            },
            _ => {}
        }
    }
    None
}

fn closing_parens(src: &str, toks: &[Tok]) -> Vec<usize> {
    let mut closing = vec![usize::MAX; toks.len()];
    let mut open = Vec::new();
    for (j, t) in toks.iter().enumerate() {
        if t.kind != Kind::Punct {
            continue;
        }
        match &src[t.start..t.end] {
            "(" => open.push(j),
            ")" => {
                if let Some(o) = open.pop() {
                    closing[o] = j;
                }
            }
            _ => {}
        }
    }
    closing
}

/// Rewrites dynamic `import(` in a classic script. Returns the source and whether it changed.
pub(crate) fn rewrite_script(src: &str) -> (String, bool) {
    if !src.contains("import") {
        return (src.to_owned(), false);
    }
    let toks = tokenize(src);
    let closing = closing_parens(src, &toks);
    let mut edits = Edits::default();
    for k in 0..toks.len() {
        if is_dynamic_import(src, &toks, &closing, k) {
            edits.replace(toks[k].start, toks[k].end, DYN_IMPORT);
        }
    }
    let changed = !edits.0.is_empty();
    (edits.apply(src), changed)
}

/// `name` as it may follow `//# sourceURL=`: without the line terminators that would end the
/// comment and make the rest of the name code (`\u{2028}` and `\u{2029}` too: until 2026-12-01
/// a filename `a.js\u{2028};throw 1` ran `throw 1` on v8).
pub(crate) fn source_url(name: &str) -> String {
    name.replace(['\n', '\r', '\u{2028}', '\u{2029}'], "")
}

/// JS string literal for `s`.
fn lit(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The text of a string-literal token as its value (escapes other than quotes kept verbatim,
/// which is enough for module specifiers).
fn unquote(text: &str) -> String {
    let inner = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A module rewritten as a script (see the module docs), with what the loader links it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wrapped {
    /// The script text: the generator form, or the async form if the module may use top-level
    /// `await`.
    pub code: String,
    /// Whether `code` is the async form.
    pub is_async: bool,
    /// The module's own exported names (not those of `export *`).
    pub names: Vec<String>,
    /// Every static import and re-export's specifier, in source order.
    pub deps: Vec<String>,
    /// `export * from` specifiers.
    pub stars: Vec<String>,
    /// Names each imported module must export (checked at link time).
    pub checks: Vec<(String, Vec<String>)>,
    /// UTF-16 code units (V8's columns) the wrapper puts before the module's first line, which
    /// it shares.
    pub column_offset: u32,
    /// The same prefix in characters (the caret of V8's parse report).
    pub char_offset: u32,
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Tok>,
    /// The export getters: defined when the module is linked, before any module runs.
    exports: String,
    /// The imported names' bindings, made when the module is evaluated.
    prologue: String,
    names: Vec<String>,
    deps: Vec<String>,
    stars: Vec<String>,
    checks: Vec<(String, Vec<String>)>,
    edits: Edits,
    ns: usize,
}

impl<'a> Parser<'a> {
    fn text(&self, k: usize) -> &'a str {
        self.toks.get(k).map_or("", |t| &self.src[t.start..t.end])
    }

    /// A static import: a dependency, and a binding of its namespace for the module's code.
    fn import_ns(&mut self, spec: &str) -> String {
        self.deps.push(spec.to_owned());
        let name = format!("$_n{}", self.ns);
        self.ns += 1;
        self.prologue
            .push_str(&format!("const {name} = $_ns({});", lit(spec)));
        name
    }

    /// A re-export's namespace, looked up when an export getter runs (the module behind it may
    /// not be linked yet when this one's getters are defined).
    fn reexport_ns(&mut self, spec: &str) -> String {
        self.deps.push(spec.to_owned());
        format!("$_ns({})", lit(spec))
    }

    fn export(&mut self, name: &str, expr: &str) {
        self.names.push(name.to_owned());
        self.exports
            .push_str(&format!("$_m.e($_x, {}, () => {expr});", lit(name)));
    }

    /// A link-time check that the module behind `spec` exports every one of `names`.
    fn check(&mut self, spec: &str, names: &[&str]) {
        self.checks.push((
            spec.to_owned(),
            names.iter().map(|n| (*n).to_owned()).collect(),
        ));
    }

    /// End (token index, exclusive) of a statement ending with token `last`: includes a `;`.
    fn finish(&self, last: usize) -> usize {
        if self.text(last + 1) == ";" {
            last + 2
        } else {
            last + 1
        }
    }

    fn blank_tokens(&mut self, from: usize, to: usize) {
        let start = self.toks[from].start;
        let end = self.toks[to.min(self.toks.len()) - 1].end;
        self.edits.blank(self.src, start, end);
    }

    /// Parses `{ a, b as c, "s" as d }` from token `k` (the `{`); returns (pairs, index after `}`).
    fn specifiers(&self, mut k: usize) -> (Vec<(String, String)>, usize) {
        let mut out = Vec::new();
        k += 1;
        while k < self.toks.len() && self.text(k) != "}" {
            let first = self.text(k);
            let first = if self.toks[k].kind == Kind::Str {
                unquote(first)
            } else {
                first.to_owned()
            };
            if self.text(k + 1) == "as" {
                let second = self.text(k + 2);
                let second = if self.toks[k + 2].kind == Kind::Str {
                    unquote(second)
                } else {
                    second.to_owned()
                };
                out.push((first, second));
                k += 3;
            } else {
                out.push((first.clone(), first));
                k += 1;
            }
            if self.text(k) == "," {
                k += 1;
            }
        }
        (out, k + 1)
    }

    /// Skips `with { ... }` import attributes after token `k`; returns the last token index.
    fn attributes(&self, k: usize) -> usize {
        if matches!(self.text(k + 1), "with" | "assert") && self.text(k + 2) == "{" {
            let mut j = k + 3;
            while j < self.toks.len() && self.text(j) != "}" {
                j += 1;
            }
            return j;
        }
        k
    }

    fn import_decl(&mut self, k: usize) -> usize {
        let mut j = k + 1;
        if self.toks.get(j).is_some_and(|t| t.kind == Kind::Str) {
            let spec = unquote(self.text(j));
            self.import_ns(&spec);
            let last = self.attributes(j);
            let end = self.finish(last);
            self.blank_tokens(k, end);
            return end;
        }
        let mut default = None;
        let mut star = None;
        let mut named = Vec::new();
        loop {
            let t = self.text(j);
            if t == "*" && self.text(j + 1) == "as" {
                star = Some(self.text(j + 2).to_owned());
                j += 3;
            } else if t == "{" {
                let (pairs, next) = self.specifiers(j);
                named = pairs;
                j = next;
            } else if self.toks.get(j).is_some_and(|t| t.kind == Kind::Ident) && t != "from" {
                default = Some(t.to_owned());
                j += 1;
            } else {
                break;
            }
            if self.text(j) == "," {
                j += 1;
            } else {
                break;
            }
        }
        if self.text(j) != "from" || self.toks.get(j + 1).is_none_or(|t| t.kind != Kind::Str) {
            // Not something we understand: leave it for the engine to report.
            return k + 1;
        }
        let spec = unquote(self.text(j + 1));
        let ns = self.import_ns(&spec);
        let mut wanted: Vec<&str> = named
            .iter()
            .map(|(imported, _)| imported.as_str())
            .collect();
        if default.is_some() {
            wanted.push("default");
        }
        if !wanted.is_empty() {
            self.check(&spec, &wanted);
        }
        if let Some(d) = default {
            self.prologue
                .push_str(&format!("const {d} = {ns}.default;"));
        }
        if let Some(s) = star {
            self.prologue.push_str(&format!("const {s} = {ns};"));
        }
        if !named.is_empty() {
            let parts: Vec<String> = named
                .iter()
                .map(|(imported, local)| format!("{}: {local}", lit(imported)))
                .collect();
            self.prologue
                .push_str(&format!("const {{{}}} = {ns};", parts.join(", ")));
        }
        let last = self.attributes(j + 1);
        let end = self.finish(last);
        self.blank_tokens(k, end);
        end
    }

    /// Names declared by `var|let|const` starting at token `k` (the keyword), at its depth.
    fn declared_names(&self, k: usize) -> Vec<String> {
        let depth = self.toks[k].depth;
        let mut names = Vec::new();
        let mut j = k + 1;
        let mut expect = true;
        while j < self.toks.len() {
            let t = self.toks[j];
            let text = self.text(j);
            if t.depth == depth && (text == ";" || (t.kind == Kind::Punct && text == "}")) {
                break;
            }
            if expect && t.depth == depth {
                if t.kind == Kind::Ident {
                    names.push(text.to_owned());
                    expect = false;
                } else if text == "{" || text == "[" {
                    // A destructuring pattern: take the identifiers that are bindings.
                    let mut m = j + 1;
                    while m < self.toks.len() && self.toks[m].depth > depth {
                        let tk = self.toks[m];
                        let nx = self.text(m + 1);
                        if tk.kind == Kind::Ident
                            && nx != ":"
                            && self.text(m.saturating_sub(1)) != "="
                        {
                            names.push(self.text(m).to_owned());
                        }
                        m += 1;
                    }
                    expect = false;
                    j = m;
                    continue;
                }
            }
            if t.depth == depth && text == "," {
                expect = true;
            }
            // A new statement on the next line (no semicolon) ends the declaration.
            if t.depth == depth && !expect && t.kind == Kind::Ident && j > k + 1 {
                let prev = self.toks[j - 1];
                let gap = &self.src[prev.end..t.start];
                let prev_text = self.text(j - 1);
                if gap.contains('\n') && !matches!(prev_text, "=" | ",") && !is_operator(prev_text)
                {
                    break;
                }
            }
            j += 1;
        }
        names
    }

    fn export_decl(&mut self, k: usize) -> usize {
        let next = self.text(k + 1);
        let tok_start = self.toks[k].start;
        match next {
            "default" => {
                let after = self.text(k + 2);
                let named_decl = match after {
                    "function" => {
                        let mut j = k + 3;
                        if self.text(j) == "*" {
                            j += 1;
                        }
                        (self.toks.get(j).is_some_and(|t| t.kind == Kind::Ident))
                            .then(|| self.text(j))
                    }
                    "async" if self.text(k + 3) == "function" => {
                        let mut j = k + 4;
                        if self.text(j) == "*" {
                            j += 1;
                        }
                        (self.toks.get(j).is_some_and(|t| t.kind == Kind::Ident))
                            .then(|| self.text(j))
                    }
                    "class" => (self
                        .toks
                        .get(k + 3)
                        .is_some_and(|t| t.kind == Kind::Ident && self.text(k + 3) != "extends"))
                    .then(|| self.text(k + 3)),
                    _ => None,
                };
                let end = self.toks[k + 1].end;
                match named_decl {
                    Some(name) => {
                        self.export("default", name);
                        self.edits.blank(self.src, tok_start, end);
                    }
                    None => {
                        // `export default` is 14 characters, and so is the replacement.
                        // `$_m.d` names an anonymous default function or class `default`.
                        self.export("default", "$_m.d($_dflt)");
                        let width = end - tok_start;
                        let mut text = String::from("const $_dflt =");
                        while text.len() < width {
                            text.push(' ');
                        }
                        self.edits.replace(tok_start, end, &text);
                    }
                }
                k + 2
            }
            "var" | "let" | "const" => {
                for name in self.declared_names(k + 1) {
                    self.export(&name, &name);
                }
                self.edits.blank(self.src, tok_start, self.toks[k].end);
                k + 1
            }
            "function" | "class" | "async" => {
                let mut j = k + 1;
                if next == "async" {
                    j += 1;
                }
                j += 1;
                if self.text(j) == "*" {
                    j += 1;
                }
                if let Some(name) = self
                    .toks
                    .get(j)
                    .filter(|t| t.kind == Kind::Ident)
                    .map(|_| self.text(j))
                {
                    self.export(name, name);
                }
                self.edits.blank(self.src, tok_start, self.toks[k].end);
                k + 1
            }
            "{" => {
                let (pairs, after) = self.specifiers(k + 1);
                if self.text(after) == "from"
                    && self
                        .toks
                        .get(after + 1)
                        .is_some_and(|t| t.kind == Kind::Str)
                {
                    let spec = unquote(self.text(after + 1));
                    let ns = self.reexport_ns(&spec);
                    let wanted: Vec<&str> = pairs.iter().map(|(i, _)| i.as_str()).collect();
                    self.check(&spec, &wanted);
                    for (imported, exported) in pairs {
                        self.export(&exported, &format!("{ns}[{}]", lit(&imported)));
                    }
                    let last = self.attributes(after + 1);
                    let end = self.finish(last);
                    self.blank_tokens(k, end);
                    end
                } else {
                    for (local, exported) in pairs {
                        self.export(&exported, &local);
                    }
                    let end = self.finish(after - 1);
                    self.blank_tokens(k, end);
                    end
                }
            }
            "*" => {
                let (alias, from) = if self.text(k + 2) == "as" {
                    (Some(self.text(k + 3).to_owned()), k + 4)
                } else {
                    (None, k + 2)
                };
                if self.text(from) != "from"
                    || self.toks.get(from + 1).is_none_or(|t| t.kind != Kind::Str)
                {
                    return k + 1;
                }
                let spec = unquote(self.text(from + 1));
                let ns = self.reexport_ns(&spec);
                match alias {
                    Some(a) => {
                        let a = if a.starts_with('"') || a.starts_with('\'') {
                            unquote(&a)
                        } else {
                            a
                        };
                        self.export(&a, &ns);
                    }
                    None => self.stars.push(spec),
                }
                let last = self.attributes(from + 1);
                let end = self.finish(last);
                self.blank_tokens(k, end);
                end
            }
            _ => k + 1,
        }
    }
}

fn is_operator(t: &str) -> bool {
    matches!(
        t,
        "+" | "-"
            | "*"
            | "/"
            | "%"
            | "&"
            | "|"
            | "^"
            | "?"
            | ":"
            | "<"
            | ">"
            | "!"
            | "~"
            | "."
            | "?."
    )
}

/// Whether the module may use top-level `await`: an `await` token outside every function body.
/// Conservative (an `await` object key or one in an expression-bodied async arrow counts), since
/// a module that awaits must get the async form: in the generator form `await (x)` would parse,
/// as a call of a variable named `await`.
fn may_await_at_top_level(src: &str, toks: &[Tok]) -> bool {
    let text = |k: usize| &src[toks[k].start..toks[k].end];
    let mut parens: Vec<usize> = Vec::new();
    let mut braces: Vec<bool> = Vec::new();
    let mut last_paren: Option<usize> = None;
    let mut functions = 0usize;
    for (k, tok) in toks.iter().enumerate() {
        let t = text(k);
        if tok.kind == Kind::Punct {
            match t {
                "(" => parens.push(k),
                ")" => last_paren = parens.pop(),
                "{" => {
                    // A function body follows `=>`, or the `)` of a parameter list: one whose `(`
                    // does not follow a statement keyword.
                    let prev = if k > 0 { text(k - 1) } else { "" };
                    let body = match prev {
                        "=>" => true,
                        ")" => last_paren.is_some_and(|o| {
                            o > 0
                                && !matches!(
                                    text(o - 1),
                                    "if" | "for" | "while" | "switch" | "catch" | "with" | "await"
                                )
                        }),
                        _ => false,
                    };
                    braces.push(body);
                    functions += usize::from(body);
                }
                "}" if braces.pop() == Some(true) => {
                    functions = functions.saturating_sub(1);
                }
                _ => {}
            }
        } else if tok.kind == Kind::Ident
            && t == "await"
            && functions == 0
            && !(k > 0 && matches!(text(k - 1), "." | "?."))
        {
            return true;
        }
    }
    false
}

/// Rewrites a module as a script (see the module docs); `name` becomes its `sourceURL`.
pub(crate) fn wrap_module(src: &str, name: &str) -> Wrapped {
    // A hashbang is a comment only at the very start of a source, and the wrapper's prefix
    // comes first: it becomes a line comment of the same width (until 2026-12-02 a module
    // opening with `#!/usr/bin/env node` was a syntax error on V8 alone).
    let unbanged;
    let src = match src.strip_prefix("#!") {
        Some(rest) => {
            unbanged = format!("//{rest}");
            unbanged.as_str()
        }
        None => src,
    };
    let toks = tokenize(src);
    let closing = closing_parens(src, &toks);
    let stray = stray_closer(src, &toks);
    let is_async = may_await_at_top_level(src, &toks);
    let mut p = Parser {
        src,
        toks,
        exports: String::new(),
        prologue: String::new(),
        names: Vec::new(),
        deps: Vec::new(),
        stars: Vec::new(),
        checks: Vec::new(),
        edits: Edits::default(),
        ns: 0,
    };
    let mut k = 0;
    while k < p.toks.len() {
        let t = p.toks[k];
        let text = p.text(k);
        let prev = if k > 0 { p.text(k - 1) } else { "" };
        let after_dot = matches!(prev, "." | "?.");
        if t.kind == Kind::Ident && t.depth == 0 && !after_dot {
            if text == "import" && !matches!(p.text(k + 1), "(" | ".") {
                k = p.import_decl(k);
                continue;
            }
            if text == "export" {
                k = p.export_decl(k);
                continue;
            }
        }
        if is_dynamic_import(src, &p.toks, &closing, k) {
            p.edits.replace(t.start, t.end, DYN_IMPORT);
        }
        // `import.meta` becomes the module's meta object, `$_mt`, padded to the same width.
        if t.kind == Kind::Ident
            && text == "import"
            && !after_dot
            && p.text(k + 1) == "."
            && p.text(k + 2) == "meta"
        {
            let end = p.toks[k + 2].end;
            if !src[t.start..end].contains(['\n', '\r', '\u{2028}', '\u{2029}']) {
                let width = src[t.start..end].chars().count();
                p.edits.replace(t.start, end, &format!("{META:<width$}"));
                k += 3;
                continue;
            }
        }
        k += 1;
    }
    // A closer that would end the wrapper becomes `@`, the same width: V8 then fails to parse
    // the module there, at the guest's own line and column, and nothing of it runs.
    if let Some(j) = stray {
        let t = p.toks[j];
        p.edits.replace(t.start, t.end, "@");
    }
    let body = std::mem::take(&mut p.edits).apply(src);
    let url = source_url(name);
    let prefix = if is_async {
        format!(
            "(async function ({DYN_IMPORT}, $_ns, $_x, $_m, {META}) {{\"use strict\";{}{}",
            p.exports, p.prologue
        )
    } else {
        format!(
            "(function* ({DYN_IMPORT}, $_ns, $_x, $_m, {META}) {{\"use strict\";{}yield;{}",
            p.exports, p.prologue
        )
    };
    Wrapped {
        column_offset: u32::try_from(prefix.encode_utf16().count()).unwrap_or(u32::MAX),
        char_offset: u32::try_from(prefix.chars().count()).unwrap_or(u32::MAX),
        code: format!("{prefix}{body}\n}})\n//# sourceURL={url}"),
        is_async,
        names: p.names,
        deps: p.deps,
        stars: p.stars,
        checks: p.checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(w: &Wrapped) -> &str {
        // The tests' modules are ASCII: characters are bytes.
        let start = w.char_offset as usize;
        let end = w.code.rfind("\n})").unwrap_or(w.code.len());
        &w.code[start..end]
    }

    #[test]
    fn regression_a_modules_hashbang_stays_a_comment() {
        let w = wrap_module("#!/usr/bin/env node\nexport default 7", "m.mjs");
        assert!(body(&w).starts_with("///usr/bin/env node\n"), "{}", w.code);
    }

    #[test]
    fn script_dynamic_import_is_rewritten_in_place() {
        let (s, changed) = rewrite_script("a.import(1); import('x'); 'import(' // import(\n");
        assert!(changed);
        assert_eq!(s, "a.import(1); $_impt('x'); 'import(' // import(\n");
        assert!(!rewrite_script("1 + 1").1);
    }

    #[test]
    fn regression_a_stray_closer_cannot_end_the_module_wrapper() {
        let w = wrap_module("export default 1; }); globalThis.x = 1; (function(){", "m");
        assert!(
            body(&w).ends_with(" 1; @); globalThis.x = 1; (function(){"),
            "{}",
            w.code
        );
        // Balanced braces, template substitutions and strings are not strays.
        let w = wrap_module(
            "export default `${ {a: '}'}.a }` + [1].map((x) => { return x })",
            "m",
        );
        assert!(!body(&w).contains('@'), "{}", w.code);
    }

    #[test]
    fn regression_a_source_url_cannot_end_its_comment() {
        let name = "a.js\n1\r2\u{2028};throw 1\u{2029}3";
        assert_eq!(source_url(name), "a.js12;throw 13");
        let w = wrap_module("export default 1", name);
        assert!(
            w.code.ends_with("//# sourceURL=a.js12;throw 13"),
            "{}",
            w.code
        );
    }

    #[test]
    fn regression_methods_named_import_are_not_rewritten() {
        for src in [
            "class A { import(x) { return x + 1 } }; new A().import(1)",
            "({ import(x) {} , async import() {}, *import() {}, get import() {} })",
            "class B { static import(a, (b) = f(c)) {} }",
            "({ import(x)\n{ } })",
        ] {
            assert_eq!(rewrite_script(src), (src.to_owned(), false), "{src}");
        }
        // Calls, though `{` follows: after `await` (ASI), as a class heritage.
        for (src, want) in [
            (
                "async function f() { let m = await import('./n.js')\n{ return 5 } }",
                "async function f() { let m = await $_impt('./n.js')\n{ return 5 } }",
            ),
            (
                "class A extends import('./b.js') {}",
                "class A extends $_impt('./b.js') {}",
            ),
        ] {
            assert_eq!(rewrite_script(src), (want.to_owned(), true), "{src}");
        }
        // Unclosed: linear, and nothing is a method.
        let (s, _) = rewrite_script(&"import(".repeat(40_000));
        assert_eq!(s, "$_impt(".repeat(40_000));
        let (s, changed) = rewrite_script("({ import(x) {} }).import(import('y'))");
        assert!(changed);
        assert_eq!(s, "({ import(x) {} }).import($_impt('y'))");
        let w = wrap_module(
            "export default class { import() { return import('z') } }",
            "m",
        );
        assert!(
            body(&w).contains("import() { return $_impt('z') }"),
            "{}",
            w.code
        );
    }

    #[test]
    fn module_keeps_positions() {
        let src = "import { v as w } from './u.js';\nexport const a = w + 1, b = 2;\nexport default function f() {}\nthrow new Error('x');";
        let w = wrap_module(src, "m.mjs");
        let b = body(&w);
        assert_eq!(b.len(), src.len());
        for (x, y) in b.lines().zip(src.lines()) {
            assert_eq!(x.len(), y.len());
        }
        assert!(b.ends_with("throw new Error('x');"));
        assert!(w.code.contains("const {\"v\": w} = $_n0;"), "{}", w.code);
        assert!(w.code.contains("$_m.e($_x, \"a\", () => a);"));
        assert!(w.code.contains("$_m.e($_x, \"b\", () => b);"));
        assert!(w.code.contains("$_m.e($_x, \"default\", () => f);"));
        assert_eq!(w.deps, ["./u.js"]);
        assert!(!w.is_async);
        assert!(w.code.starts_with("(function* ($_impt, $_ns"));
        assert!(w.code.contains("yield;const $_n0 = $_ns(\"./u.js\");"));
        assert_eq!(w.names, ["a", "b", "default"]);
    }

    #[test]
    fn import_meta_keeps_its_width() {
        let w = wrap_module(
            "const m = import.meta;\nexport default import.meta.url;",
            "m.mjs",
        );
        let b = body(&w);
        assert_eq!(b, "const m = $_mt       ;\nconst $_dflt = $_mt       .url;");
    }

    #[test]
    fn top_level_await_is_told_from_await_in_functions() {
        let tla = |src: &str| wrap_module(src, "m.mjs").is_async;
        assert!(tla("await x;"));
        assert!(tla("const r = await (f());"));
        assert!(tla("while (await ``) { break; }"));
        assert!(tla("if (a) { for await (const x of y) {} }"));
        assert!(tla("const o = { k: await p };"));
        assert!(!tla("async function f() { await x; }"));
        assert!(!tla("const f = async () => { if (a) { await b; } };"));
        assert!(!tla("class A { async m(a = (1)) { await a; } }"));
        assert!(!tla(
            "const o = { async m() { return await x; } }; o.await;"
        ));
        assert!(!tla("const t = `${ { a: 1 }.a } await`; // await"));
    }

    #[test]
    fn default_expression_and_reexports() {
        let w = wrap_module(
            "export default 6 * 7;\nexport * from 'lib';\nexport { x as y } from \"./z.js\";",
            "m.mjs",
        );
        assert!(w.code.contains("const $_dflt = 6 * 7;"), "{}", w.code);
        assert_eq!(w.stars, ["lib"]);
        assert_eq!(w.deps, ["lib", "./z.js"]);
        assert!(w
            .code
            .contains("$_m.e($_x, \"y\", () => $_ns(\"./z.js\")[\"x\"]);"));
        assert_eq!(w.checks, [("./z.js".to_owned(), vec!["x".to_owned()])]);
    }

    #[test]
    fn templates_regexes_and_nesting() {
        let src = "const t = `a ${ {b: 1}.b } export c`;\nconst r = /export {/g;\nif (x) { import('q'); }\nexport { t };";
        let w = wrap_module(src, "m.mjs");
        assert!(w.code.contains("$_impt('q')"));
        assert!(w.code.contains("$_m.e($_x, \"t\", () => t);"));
        assert!(!w.code.contains("\"c\""));
    }
}
