//! The v8 engine's worker process, for deployments that prefer a dedicated executable to
//! re-executing the host program: point `PALISADE_V8_WORKER_EXE` at it. It speaks the engine's
//! pipe protocol on stdin/stdout and is started by the engine, never by hand.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(palisade_v8::worker::main());
}
