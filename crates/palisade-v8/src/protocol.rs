//! The pipe protocol between the engine (parent) and a worker process: one JSON message per line,
//! parent → worker on the worker's stdin, worker → parent on its (private) stdout.

use std::io::{BufRead, Write};

use palisade_core::{HostError, HostValue, OutcomeRecord, Request};
use serde::{Deserialize, Serialize};

/// Parent → worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run one request within this many microseconds (what is left of its timeout).
    Run(Box<Request>, u64),
    /// The answer to the worker's last [`FromWorker::HostCall`].
    HostReply(HostReply),
}

/// A host call's result, as it crosses the pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum HostReply {
    /// A string.
    Str(String),
    /// Bytes (an `ArrayBuffer`).
    Bytes(Vec<u8>),
    /// `undefined`.
    Undefined,
    /// A thrown error.
    Error {
        /// Its name.
        name: String,
        /// Its message.
        message: String,
    },
}

impl From<Result<HostValue, HostError>> for HostReply {
    fn from(r: Result<HostValue, HostError>) -> Self {
        match r {
            Ok(HostValue::Str(s)) => HostReply::Str(s),
            Ok(HostValue::Bytes(b)) => HostReply::Bytes(b),
            Ok(HostValue::Undefined) => HostReply::Undefined,
            Err(e) => HostReply::Error {
                name: e.name,
                message: e.message,
            },
        }
    }
}

/// Worker → parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// V8 is up; the worker takes requests.
    Ready {
        /// V8's version.
        version: String,
        /// The descriptor of the worker's output log (`ffi::OutputLog`), if it could make one.
        output_log: Option<i32>,
    },
    /// The worker cannot start.
    Failed {
        /// Why.
        message: String,
    },
    /// The guest made a host call; answer with [`ToWorker::HostReply`].
    HostCall {
        /// The operation.
        op: String,
        /// Its string argument.
        arg: String,
        /// Its bytes argument.
        bytes: Option<Vec<u8>>,
    },
    /// The run ended.
    Done {
        /// The outcome (wall time filled in by the parent).
        outcome: Box<OutcomeRecord>,
        /// Whether the worker should be replaced (a memory limit was hit).
        recycle: bool,
        /// An uncaught error carried a policy-denial message the engine did not throw: the
        /// parent asks the host whether it did.
        check_denied: Option<String>,
    },
}

/// Writes one message and flushes.
pub(crate) fn send<T: Serialize>(w: &mut impl Write, msg: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Reads one message; `Ok(None)` at end of stream.
/// The deepest message either side reads: a value as deep as the contract converts, inside a
/// few levels of envelope.
const MAX_MESSAGE_DEPTH: usize = palisade_core::MAX_RESULT_DEPTH + 8;

pub(crate) fn recv<T: for<'de> Deserialize<'de>>(
    r: &mut impl BufRead,
) -> std::io::Result<Option<T>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    // The recursion limit is off for values nested as deep as the contract converts; the depth
    // is checked first, so a message from a worker whose V8 was subverted cannot recurse the
    // reader off its stack.
    if palisade_core::json_depth(&line) > MAX_MESSAGE_DEPTH {
        return Err(std::io::Error::other(format!(
            "a message nested deeper than {MAX_MESSAGE_DEPTH} levels"
        )));
    }
    let mut de = serde_json::Deserializer::from_str(&line);
    de.disable_recursion_limit();
    T::deserialize(&mut de)
        .map(Some)
        .map_err(std::io::Error::other)
}
