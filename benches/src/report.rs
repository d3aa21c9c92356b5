//! The markdown table and its number formatting.

/// One line of an engine's table.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The row number of the brief (1 to 6).
    pub row: u8,
    /// What is measured.
    pub figure: String,
    /// The measured value.
    pub value: String,
    /// The target, if there is one.
    pub target: String,
    /// A peer's figure, labelled as measured here or as a reference constant.
    pub peer: String,
    /// Palisade ÷ peer.
    pub ratio: String,
    /// `met`, `**MISSED**`, `**FAILED**` or empty.
    pub verdict: String,
}

impl Row {
    /// A row with a figure and a value and nothing else.
    pub fn new(row: u8, figure: impl Into<String>, value: impl Into<String>) -> Self {
        Row {
            row,
            figure: figure.into(),
            value: value.into(),
            ..Row::default()
        }
    }

    /// Sets the target and whether it was met.
    pub fn target(mut self, target: impl Into<String>, met: bool) -> Self {
        self.target = target.into();
        self.verdict = verdict(met).to_owned();
        self
    }

    /// Sets the target and verdict only when `applies` (a goal of some engines, not others).
    pub fn target_if(self, applies: bool, target: impl Into<String>, met: bool) -> Self {
        if applies {
            self.target(target, met)
        } else {
            self
        }
    }

    /// Sets the peer figure and the ratio.
    pub fn peer(mut self, peer: impl Into<String>, ratio: impl Into<String>) -> Self {
        self.peer = peer.into();
        self.ratio = ratio.into();
        self
    }

    /// Sets the verdict cell directly.
    pub fn verdict(mut self, verdict: impl Into<String>) -> Self {
        self.verdict = verdict.into();
        self
    }
}

impl Row {
    /// The row as a JSON object (how a child process hands it to the parent).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "row": self.row,
            "figure": self.figure,
            "value": self.value,
            "target": self.target,
            "peer": self.peer,
            "ratio": self.ratio,
            "verdict": self.verdict,
        })
    }

    /// The row from [`Row::to_json`]'s object; `None` if it is not one.
    pub fn from_json(v: &serde_json::Value) -> Option<Row> {
        let text = |k: &str| v.get(k)?.as_str().map(str::to_owned);
        Some(Row {
            row: u8::try_from(v.get("row")?.as_u64()?).ok()?,
            figure: text("figure")?,
            value: text("value")?,
            target: text("target")?,
            peer: text("peer")?,
            ratio: text("ratio")?,
            verdict: text("verdict")?,
        })
    }
}

/// `met` or `**MISSED**`.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**MISSED**"
    }
}

/// The table as markdown.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "| # | figure | value | target | peer | ratio (palisade ÷ peer) | verdict |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let cells = [
            r.row.to_string(),
            cell(&r.figure),
            cell(&r.value),
            cell(&r.target),
            cell(&r.peer),
            cell(&r.ratio),
            cell(&r.verdict),
        ];
        out.push_str("| ");
        out.push_str(&cells.join(" | "));
        out.push_str(" |\n");
    }
    out
}

fn cell(s: &str) -> String {
    if s.is_empty() {
        "—".to_owned()
    } else {
        s.replace('|', "\\|").replace('\n', " ")
    }
}

/// An integer with thousands separators: `24,841`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rounded float with thousands separators.
pub fn thousands_f(x: f64) -> String {
    if x.is_finite() && x >= 0.0 {
        thousands(x.round() as u64)
    } else {
        format!("{x}")
    }
}

/// Nanoseconds as microseconds: `42.3 µs`, `1,204 µs`.
pub fn micros(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    if us < 100.0 {
        format!("{us:.1} µs")
    } else {
        format!("{} µs", thousands_f(us))
    }
}

/// Nanoseconds as milliseconds: `3.42 ms`.
pub fn millis(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 100.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{} ms", thousands_f(ms))
    }
}

/// Bytes in binary units: `512 B`, `143.2 KiB`, `12.5 MiB`.
pub fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let x = n as f64;
    if x < KIB {
        format!("{n} B")
    } else if x < KIB * KIB {
        format!("{:.1} KiB", x / KIB)
    } else if x < KIB * KIB * KIB {
        format!("{:.1} MiB", x / KIB / KIB)
    } else {
        format!("{:.2} GiB", x / KIB / KIB / KIB)
    }
}

/// A signed byte difference: `+1.2 MiB`, `-300.0 KiB`.
pub fn bytes_delta(delta: i64) -> String {
    let sign = if delta < 0 { '-' } else { '+' };
    format!("{sign}{}", bytes(delta.unsigned_abs()))
}

/// A ratio: `0.04×`, `3.3×`, `12×`.
pub fn ratio(x: f64) -> String {
    if !x.is_finite() {
        "—".to_owned()
    } else if x < 0.1 {
        format!("{x:.3}×")
    } else if x < 10.0 {
        format!("{x:.2}×")
    } else {
        format!("{x:.0}×")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(24_841), "24,841");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(micros(42_345), "42.3 µs");
        assert_eq!(micros(1_204_000), "1,204 µs");
        assert_eq!(millis(3_420_000), "3.42 ms");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(bytes_delta(-(300 << 10)), "-300.0 KiB");
        assert_eq!(ratio(0.0412), "0.041×");
        assert_eq!(ratio(3.3), "3.30×");
    }

    #[test]
    fn json_roundtrip() {
        let r = Row::new(5, "V8 v7 total", "1,010")
            .target("≥ 900", true)
            .peer("node", "0.04×");
        let back = Row::from_json(&r.to_json()).expect("a row");
        assert_eq!(render(&[r]), render(&[back]));
        assert!(Row::from_json(&serde_json::json!({"fail": "x"})).is_none());
    }

    #[test]
    fn renders_markdown() {
        let t = render(&[Row::new(1, "a|b", "1").target("≤ 2", true)]);
        assert!(t.contains("| 1 | a\\|b | 1 | ≤ 2 | — | — | met |"));
    }
}
