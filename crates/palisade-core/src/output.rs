//! Console capture shared by all engines: line formatting is done in the guest by
//! [`CONSOLE_JS`](crate::CONSOLE_JS); this module owns the byte cap and the two streams.

/// Which stream a console method writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `console.log`, `info`, `debug`.
    Stdout,
    /// `console.warn`, `error`.
    Stderr,
}

impl Stream {
    /// The stream a console method writes to, or `None` for an unknown method.
    pub fn for_method(method: &str) -> Option<Stream> {
        match method {
            "log" | "info" | "debug" => Some(Stream::Stdout),
            "warn" | "error" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// Captured stdout and stderr under one shared byte cap.
///
/// ```
/// use palisade_core::output::{Output, Stream};
/// let mut out = Output::new(8);
/// out.write_line(Stream::Stdout, "hello");
/// out.write_line(Stream::Stderr, "world");
/// assert_eq!(out.stdout(), "hello\n");
/// assert_eq!(out.stderr(), "wo");
/// assert!(out.truncated());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Output {
    stdout: String,
    stderr: String,
    cap: usize,
    used: usize,
    truncated: bool,
}

impl Output {
    /// An empty capture with room for `cap` bytes across both streams.
    pub fn new(cap: u64) -> Self {
        Output {
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            ..Output::default()
        }
    }

    /// Appends `line` and a newline to `stream`, dropping whatever does not fit under the cap (cut
    /// at a character boundary).
    pub fn write_line(&mut self, stream: Stream, line: &str) {
        if self.truncated {
            return;
        }
        let room = self.cap - self.used;
        let buf = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        if line.len() < room {
            buf.push_str(line);
            buf.push('\n');
            self.used += line.len() + 1;
        } else {
            let mut cut = room.min(line.len());
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            buf.push_str(&line[..cut]);
            self.used += cut;
            self.truncated = true;
        }
    }

    /// Whether the cap was reached and output dropped.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Captured stdout.
    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    /// Captured stderr.
    pub fn stderr(&self) -> &str {
        &self.stderr
    }

    /// Takes the captured streams and the truncation flag.
    pub fn into_parts(self) -> (String, String, bool) {
        (self.stdout, self.stderr, self.truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_fit_is_not_truncated() {
        let mut o = Output::new(6);
        o.write_line(Stream::Stdout, "hello");
        assert_eq!(o.stdout(), "hello\n");
        assert!(!o.truncated());
        o.write_line(Stream::Stdout, "");
        assert!(o.truncated());
    }

    #[test]
    fn cuts_on_char_boundary() {
        let mut o = Output::new(3);
        o.write_line(Stream::Stdout, "aé€");
        assert_eq!(o.stdout(), "aé");
        assert!(o.truncated());
    }

    #[test]
    fn zero_cap_drops_everything() {
        let mut o = Output::new(0);
        o.write_line(Stream::Stderr, "x");
        assert_eq!(o.stderr(), "");
        assert!(o.truncated());
    }
}
