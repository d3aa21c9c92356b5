//! Group commit for execution records.
//!
//! Every execution is recorded before its response is sent, so an answered execution can always
//! be read back from `/v1/executions/{id}`, even after a crash. One transaction per record would
//! make the database the bottleneck under load; the recorder's thread instead commits whatever
//! records arrived while the previous commit ran, in one transaction, and then answers them all;
//! when records arrive concurrently it first waits up to [`LINGER`] for more.

use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::storage::{ExecutionRecord, Storage};

/// The most records one transaction takes.
const MAX_BATCH: usize = 256;
/// How long a batch waits for more records when records are arriving concurrently.
const LINGER: std::time::Duration = std::time::Duration::from_micros(500);

type Ack = oneshot::Sender<Result<(), String>>;

/// The recorder's handle. Dropping the last one ends its thread after the pending commits.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<(ExecutionRecord, Ack)>,
}

impl Recorder {
    /// Starts the recorder's thread over `storage`.
    pub fn start(storage: Arc<dyn Storage>) -> std::io::Result<Recorder> {
        let (tx, rx) = mpsc::channel::<(ExecutionRecord, Ack)>();
        std::thread::Builder::new()
            .name("palisade-recorder".into())
            .spawn(move || {
                let mut concurrent = false;
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    // Under concurrent load (the last batch had company), wait a little for
                    // more records: at 10,000 records/s a commit took 2-3 of them, and the
                    // commits (locks, WAL writes) cost more CPU than the inserts. A lone
                    // request is committed at once.
                    let until = std::time::Instant::now() + LINGER;
                    while batch.len() < MAX_BATCH {
                        let next = if concurrent {
                            let left = until.saturating_duration_since(std::time::Instant::now());
                            rx.recv_timeout(left).ok()
                        } else {
                            rx.try_recv().ok()
                        };
                        match next {
                            Some(next) => batch.push(next),
                            None => break,
                        }
                    }
                    concurrent = batch.len() > 1;
                    let (records, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    if records.len() > 1 && storage.put_executions(&records).is_ok() {
                        for ack in acks {
                            let _ = ack.send(Ok(()));
                        }
                        continue;
                    }
                    // One record, or a group that failed: commit each alone, so one bad record
                    // fails only its own execution.
                    for (record, ack) in records.iter().zip(acks) {
                        let result = storage.put_execution(record).map_err(|e| e.to_string());
                        let _ = ack.send(result);
                    }
                }
            })?;
        Ok(Recorder { tx })
    }

    /// Records `e`, returning once it is committed.
    pub async fn record(&self, e: ExecutionRecord) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((e, ack))
            .map_err(|_| "the recorder has stopped".to_owned())?;
        done.await
            .map_err(|_| "the recorder has stopped".to_owned())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SqliteStorage;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_records_are_all_committed() {
        let storage: Arc<dyn Storage> =
            Arc::new(SqliteStorage::open(std::path::Path::new(":memory:")).unwrap());
        let recorder = Recorder::start(storage.clone()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..500 {
            let r = recorder.clone();
            tasks.push(tokio::spawn(async move {
                let outcome =
                    palisade::Outcome::failed("quickjs", palisade::ExecError::internal("x"));
                r.record(ExecutionRecord {
                    id: format!("e{i}"),
                    tenant: "t".into(),
                    function: None,
                    engine: "quickjs".into(),
                    outcome: outcome.to_record(),
                    created_at: 0,
                })
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        for i in [0, 250, 499] {
            assert!(storage
                .get_execution("t", &format!("e{i}"))
                .unwrap()
                .is_some());
        }
        // A duplicate id fails, and says so.
        let dup = ExecutionRecord {
            id: "e0".into(),
            tenant: "t".into(),
            function: None,
            engine: "quickjs".into(),
            outcome: palisade::Outcome::failed("quickjs", palisade::ExecError::internal("x"))
                .to_record(),
            created_at: 0,
        };
        assert!(recorder.record(dup).await.is_err());
    }
}
