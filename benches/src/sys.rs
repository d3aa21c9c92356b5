//! What the machine and this process look like: `/proc`, `PATH`, the clock.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`, ...), in bytes.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    status_bytes("/proc/self/status", field)
}

/// A `kB` field of a `/proc/<pid>/status` file, in bytes.
fn status_bytes(path: impl AsRef<Path>, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// Resident set size now, in bytes.
pub fn rss() -> Option<u64> {
    proc_status_bytes("VmRSS")
}

/// Resident set size of this process plus its direct children (the v8 engine's worker
/// processes), in bytes.
pub fn rss_with_children() -> Option<u64> {
    let mut total = rss()?;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        for pid in children.split_whitespace() {
            total += status_bytes(format!("/proc/{pid}/status"), "VmRSS").unwrap_or(0);
        }
    }
    Some(total)
}

/// Peak resident set size so far, in bytes.
pub fn peak_rss() -> Option<u64> {
    proc_status_bytes("VmHWM")
}

/// The CPU's model name from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// How many CPUs this process may use.
pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// `/proc/loadavg`'s three load averages.
pub fn loadavg() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Process names that mean someone is compiling (or otherwise loading the CPU) next to us.
const HEAVY: [&str; 9] = [
    "rustc",
    "cc1",
    "cc1plus",
    "clippy-driver",
    "ld",
    "ld.lld",
    "rust-lld",
    "rustdoc",
    "node",
];

/// Other processes running now whose names say they are compilers (`rustc ×3, cc1 ×1`), or an
/// empty string.
pub fn heavy_neighbours() -> String {
    let me = std::process::id().to_string();
    let mut counts: Vec<(&str, usize)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return String::new();
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str() else { continue };
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if let Some(h) = HEAVY.iter().find(|h| **h == comm.trim()) {
            match counts.iter_mut().find(|(n, _)| n == h) {
                Some((_, c)) => *c += 1,
                None => counts.push((h, 1)),
            }
        }
    }
    counts
        .iter()
        .map(|(n, c)| format!("{n} ×{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`; 100 on every mainstream Linux).
pub const USER_HZ: f64 = 100.0;

/// Busy CPU time of the whole machine so far (every CPU's user, nice, system, irq, softirq and
/// steal time from `/proc/stat`), in ticks.
pub fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal ...
    Some(
        [0, 1, 2, 5, 6, 7]
            .iter()
            .map(|&i| f.get(i).copied().unwrap_or(0))
            .sum(),
    )
}

/// CPU time of this process and its waited-for children so far (`utime + stime + cutime +
/// cstime` from `/proc/self/stat`), in ticks.
pub fn own_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, which may itself contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime is field 14.
    (11..15).map(|i| f.get(i)?.parse::<u64>().ok()).sum()
}

/// Measures how much CPU *other* processes used between [`Interference::start`] and
/// [`Interference::report`]: a compiler next to us on a small machine skews every figure.
#[derive(Debug, Clone, Copy)]
pub struct Interference {
    machine: u64,
    own: u64,
    at: std::time::Instant,
}

impl Interference {
    /// Starts measuring.
    pub fn start() -> Option<Interference> {
        Some(Interference {
            machine: machine_busy_ticks()?,
            own: own_ticks()?,
            at: std::time::Instant::now(),
        })
    }

    /// Other processes' CPU use since the start, as a fraction of one CPU (0.5 = half a core).
    pub fn others(&self) -> Option<f64> {
        let machine = machine_busy_ticks()?.saturating_sub(self.machine);
        let own = own_ticks()?.saturating_sub(self.own);
        let secs = self.at.elapsed().as_secs_f64();
        (secs > 0.0).then(|| machine.saturating_sub(own) as f64 / USER_HZ / secs)
    }
}

/// The first executable called `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The first line a command prints on stdout, if it runs and succeeds.
pub fn command_line(program: &Path, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next().unwrap_or_default().trim().to_owned())
}

/// The short commit of the repository at `dir`, with `+dirty` and the size of the change when
/// the work tree has changes.
pub fn git_revision(dir: &Path) -> Option<String> {
    let git = Path::new("git");
    let rev = command_line(git, &["rev-parse", "--short", "HEAD"], Some(dir))?;
    let out = Command::new(git)
        .args(["status", "--porcelain"])
        .current_dir(dir)
        .output()
        .ok()?;
    if out.stdout.is_empty() {
        return Some(rev);
    }
    // Uncommitted changes: say how big they are, so two dirty runs can be told apart.
    let stat = command_line(git, &["diff", "HEAD", "--shortstat"], Some(dir)).unwrap_or_default();
    Some(if stat.is_empty() {
        format!("{rev}+dirty (untracked files)")
    } else {
        format!("{rev}+dirty ({stat}, untracked files not counted)")
    })
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after Howard Hinnant.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }

    #[test]
    fn reads_proc() {
        if std::path::Path::new("/proc/self/status").exists() {
            let rss = rss().expect("VmRSS");
            let peak = peak_rss().expect("VmHWM");
            assert!(rss > 0 && peak >= rss);
            assert!(machine_busy_ticks().is_some() && own_ticks().is_some());
            let i = Interference::start().expect("interference");
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(i.others().expect("others") >= 0.0);
        }
    }
}
