//! Pre-warming: a background thread keeps a few runtimes ready that no guest code has touched.
//! A run takes one (never returning it); if none is ready it builds its own.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;

use crate::{lock, Fresh};

#[derive(Debug)]
pub(crate) struct Pool {
    ready: Mutex<Receiver<Fresh>>,
}

impl Pool {
    pub(crate) fn start(size: usize) -> Pool {
        let (tx, rx) = sync_channel::<Fresh>(size);
        let spawned = std::thread::Builder::new()
            .name("palisade-quickjs-prewarm".into())
            .spawn(move || {
                // Ends when the engine (the receiver) is dropped.
                while let Ok(fresh) = Fresh::new() {
                    if tx.send(fresh).is_err() {
                        break;
                    }
                }
            });
        // Without the thread, every take() misses and runs build their own runtime.
        drop(spawned);
        Pool {
            ready: Mutex::new(rx),
        }
    }

    pub(crate) fn take(&self) -> Option<Fresh> {
        lock(&self.ready).try_recv().ok()
    }
}
