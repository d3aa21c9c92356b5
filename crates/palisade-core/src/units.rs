//! Parsing and printing of the human units used on the command line and in policy files:
//! sizes such as `64MiB` or `512KiB`, and durations such as `500ms` or `2s`.

use std::time::Duration;

/// A size or duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{input}`: {reason}")]
pub struct UnitError {
    what: &'static str,
    input: String,
    reason: &'static str,
}

fn split_number(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let n = s[..end].parse().ok()?;
    Some((n, s[end..].trim()))
}

/// Parses a byte size: a whole number with an optional unit, `B`, `KiB`, `MiB`, `GiB` (powers of
/// 1024) or `KB`, `MB`, `GB` (powers of 1000). Units are case-insensitive. A bare number is bytes.
///
/// ```
/// use palisade_core::units::parse_size;
/// assert_eq!(parse_size("64MiB").unwrap(), 64 * 1024 * 1024);
/// assert_eq!(parse_size("512KiB").unwrap(), 512 * 1024);
/// assert_eq!(parse_size("1000").unwrap(), 1000);
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    let err = |reason| UnitError {
        what: "size",
        input: input.to_owned(),
        reason,
    };
    let (n, unit) = split_number(input).ok_or_else(|| err("expected a number such as 64MiB"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(err("unknown unit; use B, KiB, MiB, GiB, KB, MB or GB")),
    };
    n.checked_mul(mult).ok_or_else(|| err("too large"))
}

/// Parses a duration: a number with a unit, `us`, `ms`, `s`, `m` or `min` (minutes), `h`
/// (hours). The number may have a fraction (`1.5s`), kept to the nanosecond. A bare number is
/// milliseconds. Until 2026-12-02 neither `h` nor a fraction was read, though the timeout's
/// range is written `1ms..=1h`.
///
/// ```
/// use std::time::Duration;
/// use palisade_core::units::parse_duration;
/// assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
/// assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
/// assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
/// assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
/// assert!(parse_duration("2 fortnights").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let err = |reason| UnitError {
        what: "duration",
        input: input.to_owned(),
        reason,
    };
    let s = input.trim();
    let digits = |from: usize| {
        s[from..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(s.len(), |n| from + n)
    };
    let whole_end = digits(0);
    let (frac, end) = match s[whole_end..].strip_prefix('.') {
        Some(_) => {
            let end = digits(whole_end + 1);
            (&s[whole_end + 1..end], end)
        }
        None => ("", whole_end),
    };
    if whole_end == 0 && frac.is_empty() {
        return Err(err("expected a number such as 500ms"));
    }
    let unit_ns: u128 = match s[end..].trim().to_ascii_lowercase().as_str() {
        "us" | "µs" => 1_000,
        "" | "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(err("unknown unit; use us, ms, s, m or h")),
    };
    if frac.len() > 18 {
        return Err(err("too many decimal places"));
    }
    let whole: u128 = match &s[..whole_end] {
        "" => 0,
        w => w.parse().map_err(|_| err("too large"))?,
    };
    let scale = 10u128.pow(frac.len() as u32);
    let frac: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| err("too large"))?
    };
    let nanos = whole
        .checked_mul(unit_ns)
        .and_then(|w| w.checked_add(frac * unit_ns / scale))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| err("too large"))?;
    Ok(Duration::from_nanos(nanos))
}

/// Formats a byte count with the largest binary unit that divides it exactly.
///
/// ```
/// assert_eq!(palisade_core::units::format_size(64 << 20), "64MiB");
/// assert_eq!(palisade_core::units::format_size(1500), "1500B");
/// ```
pub fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

/// Formats a duration with the largest of min, s and ms that divides it exactly, units
/// [`parse_duration`] reads back (the API takes milliseconds, the CLI `500ms`); what no
/// millisecond divides is shown as Rust prints it. Until 2026-12-02 a rejected timeout of 0
/// read "0ns".
///
/// ```
/// use std::time::Duration;
/// use palisade_core::units::format_duration;
/// assert_eq!(format_duration(Duration::ZERO), "0ms");
/// assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
/// assert_eq!(format_duration(Duration::from_secs(7200)), "120min");
/// assert_eq!(format_duration(Duration::from_secs(90)), "90s");
/// assert_eq!(format_duration(Duration::from_micros(500)), "500µs");
/// ```
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if d != Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)) {
        return format!("{d:?}");
    }
    for (unit, per) in [("min", 60_000), ("s", 1_000)] {
        if ms != 0 && ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// `d` in whole milliseconds, saturating (as limits and receipts report times).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("2mb").unwrap(), 2_000_000);
        assert_eq!(parse_size(" 7 KiB ").unwrap(), 7 << 10);
        assert!(parse_size("").is_err());
        assert!(parse_size("-1MiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert!(parse_size("1.5MiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("3m").unwrap(), Duration::from_secs(180));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_millis(10));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration(".s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1d").is_err());
        // Hours and fractions (the timeout's range is written 1ms..=1h).
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("0.25s").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration(".5ms").unwrap(), Duration::from_micros(500));
        assert_eq!(parse_duration("1.5 min").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0.0000001ms").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_duration("1.000000001s").unwrap(),
            Duration::from_nanos(1_000_000_001)
        );
        assert!(parse_duration("99999999999h").is_err());
        assert!(parse_duration("1.0000000000000000000s").is_err());
    }

    #[test]
    fn format_roundtrip() {
        for s in ["64MiB", "512KiB", "1GiB", "100B"] {
            assert_eq!(format_size(parse_size(s).unwrap()), s);
        }
    }
}
