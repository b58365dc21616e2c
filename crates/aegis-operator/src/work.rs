//! Long work beside reconcile. A shadow verification (up to its deadline, minutes) and production's
//! monitoring window run as tasks keyed by incident; reconcile starts one, looks at it on each pass
//! (an in-memory check, no API call) and records its outcome once it has finished. So a reconcile
//! returns in milliseconds and the controller's few slots stay free for approvals, rejections and
//! expiries while verifications run.
//!
//! A task belongs to one *attempt*: the incident's uid, its phase and when it entered that phase. A
//! task of another attempt (the incident was recreated, or moved on and came back) is stopped and
//! its outcome never recorded. The tasks live as long as the leader's work: dropping the registry (the
//! lease was lost, the process stops) aborts them all, and the next leader starts them again from the
//! Incident's status, as it resumes any phase.
//!
//! A finished outcome stays until the step that records it calls [`Tasks::forget`]: a status write
//! that fails (409: someone wrote the Incident meanwhile) is retried with the same outcome instead of
//! verifying again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::task::JoinHandle;

/// Which attempt of which incident a task works for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// `namespace/name`.
    pub incident: String,
    pub uid: String,
    pub phase: crate::crd::Phase,
    /// When the incident entered `phase` (its status' transition time).
    pub since: String,
}

/// What a look at an attempt's task finds.
#[derive(Debug)]
pub enum Poll<T> {
    /// No task for this attempt: start one.
    Idle,
    /// Still working.
    Running,
    /// Finished. `Err` when the task panicked.
    Done(Arc<Result<T, String>>),
}

enum State<T> {
    Running(JoinHandle<T>),
    Finished(Arc<Result<T, String>>),
}

struct Task<T> {
    attempt: Attempt,
    started: Instant,
    state: State<T>,
}

impl<T> Task<T> {
    fn abort(&self) {
        if let State::Running(handle) = &self.state {
            handle.abort();
        }
    }

    fn is_running(&self) -> bool {
        matches!(&self.state, State::Running(handle) if !handle.is_finished())
    }
}

/// The running (and finished, not yet recorded) tasks of one kind, by incident.
pub struct Tasks<T> {
    tasks: Mutex<HashMap<String, Task<T>>>,
}

impl<T> Default for Tasks<T> {
    fn default() -> Self {
        Tasks { tasks: Mutex::new(HashMap::new()) }
    }
}

/// A finished outcome nobody came for (its incident was deleted) is dropped after this long.
const UNCLAIMED: Duration = Duration::from_secs(3600);

impl<T: Send + 'static> Tasks<T> {
    /// The state of `attempt`'s task. A task of another attempt of the same incident is aborted.
    pub fn poll(&self, attempt: &Attempt) -> Poll<T> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let Some(task) = tasks.get_mut(&attempt.incident) else { return Poll::Idle };
        if task.attempt != *attempt {
            tracing::info!(incident = %attempt.incident, stale = ?task.attempt.phase, "stopping the work of an earlier attempt");
            task.abort();
            tasks.remove(&attempt.incident);
            return Poll::Idle;
        }
        if task.is_running() {
            return Poll::Running;
        }
        if let State::Running(handle) = &mut task.state {
            let outcome = match handle.now_or_never() {
                Some(Ok(out)) => Ok(out),
                Some(Err(e)) => Err(format!("the task stopped: {e}")),
                // is_finished() said otherwise; look again on the next pass.
                None => return Poll::Running,
            };
            task.state = State::Finished(Arc::new(outcome));
        }
        match &task.state {
            State::Finished(outcome) => Poll::Done(outcome.clone()),
            State::Running(_) => Poll::Running,
        }
    }

    /// Start `work` for `attempt` (replacing, and aborting, any task of the same incident).
    pub fn start(&self, attempt: Attempt, work: impl Future<Output = T> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|_, t| t.is_running() || t.started.elapsed() < UNCLAIMED);
        let task = Task { attempt: attempt.clone(), started: Instant::now(), state: State::Running(tokio::spawn(work)) };
        if let Some(old) = tasks.insert(attempt.incident, task) {
            old.abort();
        }
    }

    /// Stop and forget `incident`'s task, if any: its outcome is recorded, or its incident ended.
    pub fn forget(&self, incident: &str) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = tasks.remove(incident) {
            task.abort();
        }
    }

    /// How many tasks are running.
    pub fn running(&self) -> usize {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).values().filter(|t| t.is_running()).count()
    }
}

impl<T> Drop for Tasks<T> {
    fn drop(&mut self) {
        let tasks = self.tasks.get_mut().unwrap_or_else(|e| e.into_inner());
        for task in tasks.values() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Phase;

    fn attempt(phase: Phase, since: &str) -> Attempt {
        Attempt { incident: "shop/i-1".into(), uid: "u1".into(), phase, since: since.into() }
    }

    async fn settle<T: Send + 'static>(tasks: &Tasks<T>, a: &Attempt) -> Poll<T> {
        for _ in 0..200 {
            match tasks.poll(a) {
                Poll::Running => tokio::time::sleep(Duration::from_millis(5)).await,
                other => return other,
            }
        }
        panic!("the task did not finish");
    }

    #[tokio::test]
    async fn a_finished_outcome_stays_until_it_is_recorded() {
        let tasks = Tasks::default();
        let a = attempt(Phase::Verifying, "t1");
        assert!(matches!(tasks.poll(&a), Poll::Idle));
        tasks.start(a.clone(), async { 7 });
        assert!(matches!(settle(&tasks, &a).await, Poll::Done(o) if *o == Ok(7)));
        assert!(matches!(tasks.poll(&a), Poll::Done(o) if *o == Ok(7)), "a failed status write sees it again");
        tasks.forget(&a.incident);
        assert!(matches!(tasks.poll(&a), Poll::Idle));
    }

    #[tokio::test]
    async fn a_running_task_is_reported_running_without_waiting_for_it() {
        let tasks = Tasks::default();
        let a = attempt(Phase::Verifying, "t1");
        tasks.start(a.clone(), std::future::pending::<()>());
        assert!(matches!(tasks.poll(&a), Poll::Running));
        assert_eq!(tasks.running(), 1);
    }

    #[tokio::test]
    async fn another_attempt_of_the_same_incident_stops_the_earlier_task() {
        let tasks = Tasks::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let earlier = attempt(Phase::Verifying, "t1");
        tasks.start(earlier.clone(), async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        assert!(matches!(tasks.poll(&attempt(Phase::Verifying, "t2")), Poll::Idle));
        assert!(rx.await.is_err(), "the earlier task was aborted (its sender dropped)");
        assert_eq!(tasks.running(), 0);
    }

    #[tokio::test]
    async fn dropping_the_registry_aborts_its_tasks() {
        let tasks = Tasks::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.start(attempt(Phase::Monitoring, "t1"), async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        drop(tasks);
        assert!(rx.await.is_err(), "a lost lease stops the work");
    }

    #[tokio::test]
    async fn a_panicking_task_is_done_with_an_error() {
        let tasks: Tasks<u8> = Tasks::default();
        let a = attempt(Phase::Verifying, "t1");
        tasks.start(a.clone(), async { panic!("boom") });
        assert!(matches!(settle(&tasks, &a).await, Poll::Done(o) if o.as_ref().as_ref().is_err_and(|e| e.contains("panic"))));
    }
}
