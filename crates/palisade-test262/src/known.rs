//! The checked-in list of runs expected to fail on an engine: `tests/test262/known-failures-<engine>.txt`,
//! one `<path> <mode>` line per failing run, sorted. Blank lines and `#` comments are ignored
//! when reading.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The list's file for an engine.
pub fn file_for(dir: &Path, engine: &str) -> PathBuf {
    dir.join(format!("known-failures-{engine}.txt"))
}

/// Reads a list; a missing file is an empty list (`Ok(None)`).
pub fn read(path: &Path) -> Result<Option<BTreeSet<String>>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(parse(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Parses a list's text.
pub fn parse(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The text of a list: its entries sorted, one a line.
pub fn render(failing: &BTreeSet<String>) -> String {
    let mut out = String::new();
    for line in failing {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The difference between the known list and this run's failures.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Failing now, not on the list.
    pub regressions: Vec<String>,
    /// On the list, passing now.
    pub newly_passing: Vec<String>,
}

impl Diff {
    /// Compares this run's failures against the known list.
    pub fn new(known: &BTreeSet<String>, failing: &BTreeSet<String>) -> Self {
        Diff {
            regressions: failing.difference(known).cloned().collect(),
            newly_passing: known.difference(failing).cloned().collect(),
        }
    }

    /// Whether the run matches the list exactly.
    pub fn is_clean(&self) -> bool {
        self.regressions.is_empty() && self.newly_passing.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_diff() {
        let known = parse("# comment\n\ntest/b.js strict\ntest/a.js  sloppy\n");
        assert_eq!(render(&known), "test/a.js sloppy\ntest/b.js strict\n");
        let failing: BTreeSet<String> = ["test/a.js sloppy", "test/c.js module"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let d = Diff::new(&known, &failing);
        assert_eq!(d.regressions, ["test/c.js module"]);
        assert_eq!(d.newly_passing, ["test/b.js strict"]);
        assert!(!d.is_clean());
        assert!(Diff::new(&failing, &failing).is_clean());
    }
}
