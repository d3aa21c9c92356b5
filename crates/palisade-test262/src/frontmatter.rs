//! A test's metadata: read from the sample's `sample.meta.jsonl`, or parsed from the test's own
//! `/*--- ... ---*/` YAML frontmatter. Only the subset the runner needs is understood: `flags`,
//! `includes`, `features` (flow lists `[a, b]` or block lists of `- a` lines) and `negative`
//! (a mapping with `phase` and `type`). Every other key, block scalars included, is skipped.

use std::collections::HashMap;

use serde::Deserialize;

/// What a negative test must throw, and when.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Negative {
    /// `parse`, `resolution` or `runtime`.
    pub phase: String,
    /// The error constructor's name, e.g. `SyntaxError`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The parts of a test's frontmatter the runner uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Meta {
    /// `onlyStrict`, `noStrict`, `module`, `raw`, `async`, ...
    #[serde(default)]
    pub flags: Vec<String>,
    /// Harness files to load after `assert.js` and `sta.js`.
    #[serde(default)]
    pub includes: Vec<String>,
    /// Language features the test needs.
    #[serde(default)]
    pub features: Vec<String>,
    /// For negative tests: the phase and the error type.
    #[serde(default)]
    pub negative: Option<Negative>,
}

impl Meta {
    /// Whether the test carries `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Whether the test needs `feature`.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}

#[derive(Debug, Deserialize)]
struct MetaLine {
    path: String,
    #[serde(flatten)]
    meta: Meta,
}

/// Reads a `sample.meta.jsonl` file: one JSON object per line, with `path` and the frontmatter.
pub fn load_jsonl(text: &str) -> Result<HashMap<String, Meta>, String> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rec: MetaLine =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        out.insert(rec.path, rec.meta);
    }
    Ok(out)
}

/// Parses the frontmatter of a test's source. A source without frontmatter gives the empty
/// metadata (a plain test run in both modes).
pub fn parse(source: &str) -> Result<Meta, String> {
    let Some(start) = source.find("/*---") else {
        return Ok(Meta::default());
    };
    let body = &source[start + 5..];
    let end = body
        .find("---*/")
        .ok_or("the frontmatter opened with /*--- is never closed with ---*/")?;
    parse_yaml(&body[..end])
}

/// Parses the YAML subset of a frontmatter block.
fn parse_yaml(yaml: &str) -> Result<Meta, String> {
    let mut meta = Meta::default();
    let lines: Vec<&str> = yaml.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.trim().is_empty() || line.starts_with([' ', '\t']) || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        // The lines that belong to this key: every following line that is indented or blank.
        let mut nested = Vec::new();
        while i < lines.len() && (lines[i].trim().is_empty() || lines[i].starts_with([' ', '\t'])) {
            nested.push(lines[i]);
            i += 1;
        }
        match key {
            "flags" => meta.flags = list(key, value, &nested)?,
            "includes" => meta.includes = list(key, value, &nested)?,
            "features" => meta.features = list(key, value, &nested)?,
            "negative" => meta.negative = Some(negative(value, &nested)?),
            _ => {}
        }
    }
    Ok(meta)
}

/// A list written `[a, b]` (possibly over several lines) or as indented `- a` lines.
fn list(key: &str, value: &str, nested: &[&str]) -> Result<Vec<String>, String> {
    let value = strip_comment(value).trim();
    if value.starts_with('[') {
        let mut flow = value.to_owned();
        for l in nested {
            if flow.contains(']') {
                break;
            }
            flow.push(' ');
            flow.push_str(strip_comment(l).trim());
        }
        let inner = flow
            .strip_prefix('[')
            .and_then(|s| s.split_once(']'))
            .map(|(inner, _)| inner)
            .ok_or_else(|| format!("`{key}`: unterminated list"))?;
        return Ok(inner
            .split(',')
            .map(scalar)
            .filter(|s| !s.is_empty())
            .collect());
    }
    if !value.is_empty() {
        return Err(format!("`{key}`: expected a list, found `{value}`"));
    }
    Ok(nested
        .iter()
        .filter_map(|l| strip_comment(l).trim().strip_prefix('-').map(scalar))
        .filter(|s| !s.is_empty())
        .collect())
}

/// `negative:` followed by indented `phase:` and `type:` lines (or a flow mapping).
fn negative(value: &str, nested: &[&str]) -> Result<Negative, String> {
    let value = strip_comment(value).trim();
    let mut pairs: Vec<String> = Vec::new();
    if let Some(inner) = value.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        pairs.extend(inner.split(',').map(str::to_owned));
    } else {
        pairs.extend(nested.iter().map(|l| strip_comment(l).to_owned()));
    }
    let (mut phase, mut kind) = (None, None);
    for p in &pairs {
        if let Some((k, v)) = p.split_once(':') {
            match k.trim() {
                "phase" => phase = Some(scalar(v)),
                "type" => kind = Some(scalar(v)),
                _ => {}
            }
        }
    }
    match (phase, kind) {
        (Some(phase), Some(kind)) if !phase.is_empty() && !kind.is_empty() => {
            Ok(Negative { phase, kind })
        }
        _ => Err("`negative` needs both `phase` and `type`".into()),
    }
}

/// A plain or quoted scalar, trimmed.
fn scalar(s: &str) -> String {
    let s = s.trim();
    let unquoted = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')));
    unquoted.unwrap_or(s).trim().to_owned()
}

/// Drops a `# comment` (a `#` at the start or after whitespace).
fn strip_comment(s: &str) -> &str {
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &s[..i];
        }
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn flow_lists_and_negative() {
        let src = "// c\n/*---\nesid: x\ndescription: >\n  flags: [nope]\n  more\nflags: [onlyStrict, async]\nincludes: [a.js, \"b.js\"]\nfeatures: [Temporal]\nnegative:\n  phase: parse\n  type: SyntaxError\n---*/\n$DONOTEVALUATE();\n";
        let m = parse(src).unwrap();
        assert_eq!(m.flags, ["onlyStrict", "async"]);
        assert_eq!(m.includes, ["a.js", "b.js"]);
        assert_eq!(m.features, ["Temporal"]);
        assert_eq!(
            m.negative,
            Some(Negative {
                phase: "parse".into(),
                kind: "SyntaxError".into()
            })
        );
    }

    #[test]
    fn block_lists_multiline_flow_and_comments() {
        let src = "/*---\ninfo: |\n  includes: [x.js]\nincludes:\n  - compareArray.js # why\n  - propertyHelper.js\nfeatures: [a,\n  b]\nflags: []\n---*/";
        let m = parse(src).unwrap();
        assert_eq!(m.includes, ["compareArray.js", "propertyHelper.js"]);
        assert_eq!(m.features, ["a", "b"]);
        assert!(m.flags.is_empty());
        assert_eq!(m.negative, None);
    }

    #[test]
    fn no_frontmatter_and_unclosed() {
        assert_eq!(parse("1;").unwrap(), Meta::default());
        assert!(parse("/*--- flags: [raw]").is_err());
    }

    #[test]
    fn jsonl() {
        let m = load_jsonl(
            "{\"path\": \"test/a.js\", \"flags\": [\"raw\"], \"includes\": [], \"features\": [], \"negative\": {\"phase\": \"runtime\", \"type\": \"TypeError\"}}\n",
        )
        .unwrap();
        let a = &m["test/a.js"];
        assert!(a.has_flag("raw"));
        assert_eq!(
            a.negative.as_ref().map(|n| n.kind.as_str()),
            Some("TypeError")
        );
    }
}
