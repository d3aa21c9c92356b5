//! The front door: accepts connections and serves HTTP/1.1 on each, with the bounds that keep
//! slow or silent clients from holding the server's connections and memory.
//!
//! - **`max_connections`.** Past it the server stops accepting (new connections wait in the
//!   kernel's backlog) until one closes, so a flood of connections costs neither file
//!   descriptors past the cap nor tasks.
//! - **`header_timeout_ms`** (hyper's header-read timer). A connection must send a request's
//!   whole head within it, and a kept-alive connection may sit idle between requests no longer:
//!   hyper arms the same timer whenever it waits for a head. Past it the connection is closed.
//! - **`body_timeout_ms`.** Enforced where the body is read ([`BodyTimeout`], used by
//!   `api::body_bytes`): a body that has not all arrived in time is answered 408 and the
//!   connection closed.
//! - **`send_timeout_ms`** ([`SendTimeout`]). A client that takes no byte of a response for this
//!   long (the socket stays full) loses its connection, and the response it held is freed.
//!
//! On shutdown the door stops accepting, asks every connection to close once its current
//! request is answered (an idle one closes at once), and returns when all have closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use crate::metrics::{ClientTimeout, Metrics};

/// The front door's bounds (see the module docs; `Config` documents the defaults).
#[derive(Debug, Clone, Copy)]
pub struct Door {
    /// The most connections open at once.
    pub max_connections: u32,
    /// The longest a request's head may take to arrive, or a kept-alive connection stay idle.
    pub header_timeout: Duration,
    /// The longest the socket may refuse every byte of a response.
    pub send_timeout: Duration,
}

/// How long a request's body may take to arrive, from when the server starts reading it, and
/// where to count a body that did not: a request extension set by the router.
#[derive(Debug, Clone)]
pub struct BodyTimeout {
    /// `body_timeout_ms`.
    pub limit: Duration,
    /// The server's counters.
    pub metrics: Arc<Metrics>,
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets every open connection finish
/// its request and returns once all have closed.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    door: Door,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    fit_open_files(door.max_connections);
    let permits = Arc::new(Semaphore::new(door.max_connections as usize));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // A permit first: at the cap, connections wait in the backlog, not in tasks.
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(
                    stream,
                    app.clone(),
                    door,
                    Arc::clone(&metrics),
                    stopping.clone(),
                    permit,
                ));
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of file descriptors or the like: give closing connections a moment,
                // rather than spin on accept.
                tracing::error!(error = %e, "accept failed");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = &mut shutdown => break,
                }
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it has closed.
    let _ = permits.acquire_many(door.max_connections).await;
}

/// File descriptors kept for what is not a connection: the database, the workers' pipes, logs.
const OTHER_FILES: u64 = 256;

/// Raises the soft open-file limit, within the hard one, so that `max_connections` can all be
/// open, and warns when the hard limit is too low. (A common soft default is 1024, below the
/// default `max_connections`; past it accept fails, and so would the database and new workers.)
fn fit_open_files(max_connections: u32) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let want = u64::from(max_connections) + OTHER_FILES;
    let limit = getrlimit(Resource::Nofile);
    let fits = |n: Option<u64>| n.is_none_or(|n| n >= want);
    if fits(limit.current) {
        return;
    }
    let current = match limit.maximum {
        Some(hard) => Some(want.min(hard)),
        None => Some(want),
    };
    let raised = rustix::process::Rlimit { current, ..limit };
    if setrlimit(Resource::Nofile, raised).is_ok() {
        tracing::info!(open_files = current, "raised the open-file limit");
    }
    let now = getrlimit(Resource::Nofile).current;
    if !fits(now) {
        tracing::warn!(
            max_connections,
            open_files = now,
            "the open-file limit is below max_connections plus {OTHER_FILES}: accept will fail \
             before the cap is reached; raise the hard limit (ulimit -Hn) or lower max_connections"
        );
    }
}

/// An error of one connection that went away before it was accepted.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn connection(
    stream: TcpStream,
    app: axum::Router,
    door: Door,
    metrics: Arc<Metrics>,
    mut stopping: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _open = metrics.connection_opened();
    let io = TokioIo::new(SendTimeout::new(stream, door.send_timeout));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(door.header_timeout);
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    if let Some(which) = timed_out(&e) {
                        metrics.client_timeout(which);
                    }
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            _ = stopping.wait_for(|s| *s), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Which of the door's timeouts ended a connection, if one did.
fn timed_out(e: &hyper::Error) -> Option<ClientTimeout> {
    if e.is_timeout() {
        return Some(ClientTimeout::Head);
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::TimedOut
                && io.get_ref().is_some_and(|i| i.is::<SendTimedOut>())
            {
                return Some(ClientTimeout::Send);
            }
        }
        source = s.source();
    }
    None
}

/// The error of a write that waited out `send_timeout_ms`.
#[derive(Debug, thiserror::Error)]
#[error("the client took no byte of the response for {0:?}")]
struct SendTimedOut(Duration);

/// A socket whose writes fail with `TimedOut` once one has waited `limit` for room: a client
/// that reads nothing cannot hold its connection, and the response, forever.
#[derive(Debug)]
pub struct SendTimeout {
    inner: TcpStream,
    limit: Duration,
    /// Armed when a write finds the socket full; cleared by any write that makes progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl SendTimeout {
    /// Wraps `inner`.
    pub fn new(inner: TcpStream, limit: Duration) -> SendTimeout {
        SendTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// After `poll` of the inner socket: passes a ready result on (the stall is over), or
    /// arms the timer on `Pending` and fails once it has run out.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                SendTimedOut(limit),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for SendTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}
