//! Pre-warming: a background thread keeps a few runtimes ready that no guest code has touched.
//! A run takes one (never returning it); if none is ready it builds its own.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Mutex;

use crate::{lock, Fresh};

#[derive(Debug)]
pub(crate) struct Pool {
    ready: Mutex<Receiver<Fresh>>,
    reaper: Option<SyncSender<Fresh>>,
}

impl Pool {
    pub(crate) fn start(size: usize) -> Pool {
        let (tx, rx) = sync_channel::<Fresh>(size);
        let spawned = std::thread::Builder::new()
            .name("palisade-quickjs-prewarm".into())
            .spawn(move || {
                // Ends when the engine (the receiver) is dropped.
                while let Ok(fresh) = Fresh::new_malloc() {
                    if tx.send(fresh).is_err() {
                        break;
                    }
                }
            });
        // Without the thread, every take() misses and runs build their own runtime.
        drop(spawned);
        // Bounded: when runs come faster than the reaper frees, callers free their own runtimes
        // instead of piling up spent heaps.
        let (reap_tx, reap_rx) = sync_channel::<Fresh>(size.max(1));
        let reaper = std::thread::Builder::new()
            .name("palisade-quickjs-reaper".into())
            .spawn(move || {
                // Ends when the engine (the sender) is dropped.
                while let Ok(spent) = reap_rx.recv() {
                    drop(spent);
                }
            })
            .ok()
            .map(|_| reap_tx);
        Pool {
            ready: Mutex::new(rx),
            reaper,
        }
    }

    /// Frees a used runtime off the caller's thread when the reaper has room, else here.
    pub(crate) fn retire(&self, spent: Fresh) {
        let rejected = match &self.reaper {
            Some(tx) => match tx.try_send(spent) {
                Ok(()) => None,
                Err(TrySendError::Full(s) | TrySendError::Disconnected(s)) => Some(s),
            },
            None => Some(spent),
        };
        drop(rejected);
    }

    pub(crate) fn take(&self) -> Option<Fresh> {
        lock(&self.ready).try_recv().ok()
    }
}
