//! Durability off the SQLite writer's path.
//!
//! With `synchronous=FULL` every commit waited for its fsync inside the one writer, and the writer
//! spent two thirds of each commit waiting for the disk (about 300 µs of 460 µs on these machines):
//! commits could not overlap, so the receiver topped out near 15,000 alerts/s at 16 connections
//! whatever the CPU had left. Now the writer commits without waiting (`synchronous=NORMAL`: the log
//! is written, not yet synced) and hands each commit's answers here. One thread syncs the
//! write-ahead log and then answers every commit the log held when the sync began; meanwhile the
//! writer commits the next group. A sender is still told "stored" only once its alerts are on disk.
//!
//! Why this is the same durability: a WAL commit is durable once its log frames are synced, which is
//! all `FULL` does at commit (SQLite syncs the log before every checkpoint in `NORMAL` too, so the
//! database never holds a page whose log frame was not synced). `fdatasync` acts on the file, not
//! the descriptor, so syncing the log through a descriptor of our own covers what the writer wrote
//! through its own; the log file stays the same file while the writer's connection is open.
//!
//! A failed sync may have dropped the dirty pages it was meant to write (Linux forgets them), so a
//! later sync that succeeds proves nothing about them: after one failure every answer and every
//! later write is an error, and the receiver answers 503 until it is restarted.

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use tokio::sync::oneshot;

use super::{InsertOutcome, StoreError};

/// One request's answer, sent once the commit that holds it is durable.
pub(super) type Answer = (oneshot::Sender<Result<InsertOutcome, StoreError>>, InsertOutcome);

/// Syncs the log for committed groups and answers them.
pub(super) struct WalSync {
    groups: mpsc::Sender<Vec<Answer>>,
    failed: Arc<OnceLock<String>>,
}

impl WalSync {
    /// Start the syncing thread; `sync` makes everything written to the log so far durable.
    pub(super) fn start(mut sync: impl FnMut() -> std::io::Result<()> + Send + 'static) -> std::io::Result<WalSync> {
        // Not a rendezvous: making the writer wait for each sync so that one commit holds everything
        // that arrived meanwhile was tried, and was no faster (docs/benchmarks.md).
        let (groups, rx) = mpsc::channel::<Vec<Answer>>();
        let failed = Arc::new(OnceLock::<String>::new());
        let failed_here = failed.clone();
        std::thread::Builder::new().name("falco-store-sync".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                // Every group committed before this sync starts is covered by it.
                let waiting: Vec<Vec<Answer>> = std::iter::once(first).chain(rx.try_iter()).collect();
                let result = match failed_here.get() {
                    Some(reason) => Err(reason.clone()),
                    None => sync().map_err(|e| {
                        let reason = format!("syncing the write-ahead log failed ({e}); restart the receiver");
                        tracing::error!(%reason, "falco store refuses further writes");
                        failed_here.get_or_init(|| reason).clone()
                    }),
                };
                for (reply, outcome) in waiting.into_iter().flatten() {
                    let _ = reply.send(result.clone().map(|()| outcome).map_err(StoreError::Backend));
                }
            }
        })?;
        Ok(WalSync { groups, failed })
    }

    /// Answer a committed group once the log is synced.
    pub(super) fn answer_when_durable(&self, answers: Vec<Answer>) {
        if let Err(mpsc::SendError(answers)) = self.groups.send(answers) {
            for (reply, _) in answers {
                let _ = reply.send(Err(StoreError::Closed));
            }
        }
    }

    /// Why writes are refused, after a failed sync.
    pub(super) fn failure(&self) -> Option<StoreError> {
        self.failed.get().map(|reason| StoreError::Backend(reason.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn answer() -> (Answer, oneshot::Receiver<Result<InsertOutcome, StoreError>>) {
        let (tx, rx) = oneshot::channel();
        ((tx, InsertOutcome { stored: 1, duplicates: 0 }), rx)
    }

    #[tokio::test]
    async fn a_commit_is_answered_only_once_the_log_is_synced() {
        let (allow, allowed) = std::sync::mpsc::channel::<()>();
        let sync = WalSync::start(move || allowed.recv().map_err(std::io::Error::other)).unwrap();
        let (first, mut first_rx) = answer();
        let (second, second_rx) = answer();
        sync.answer_when_durable(vec![first, second]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(first_rx.try_recv().is_err(), "answered before the log was synced");
        allow.send(()).unwrap();
        assert_eq!(first_rx.await.unwrap().unwrap().stored, 1);
        assert_eq!(second_rx.await.unwrap().unwrap().stored, 1);
    }

    #[tokio::test]
    async fn after_a_failed_sync_every_answer_and_every_later_write_is_an_error() {
        let mut calls = 0;
        let sync = WalSync::start(move || {
            calls += 1;
            if calls == 1 { Err(std::io::Error::other("EIO")) } else { Ok(()) }
        })
        .unwrap();
        let (first, first_rx) = answer();
        sync.answer_when_durable(vec![first]);
        let err = first_rx.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("EIO"), "{err}");
        assert!(sync.failure().is_some(), "writes go on after a failed sync");
        let (later, later_rx) = answer();
        sync.answer_when_durable(vec![later]);
        assert!(later_rx.await.unwrap().is_err(), "a sync that succeeds after a failure proves nothing about the pages it lost");
    }
}
