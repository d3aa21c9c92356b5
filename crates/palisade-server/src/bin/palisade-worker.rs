//! A stand-alone Palisade worker (the same as `palisade worker`): JSON jobs on stdin, outcomes
//! on stdout.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    let mut options = palisade_server::WorkerOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secrets" => options.secrets = args.next().map(Into::into),
            "--audit-db" => options.audit_db = args.next().map(Into::into),
            "--prewarm" => options.prewarm = args.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "--nice" => options.nice = args.next().and_then(|n| n.parse().ok()),
            _ => {}
        }
    }
    match palisade_server::worker_main(&options) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palisade-worker: {e}");
            std::process::ExitCode::from(3)
        }
    }
}
