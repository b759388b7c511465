//! [`Asker`]: a call's questions answered. Answers the client gave ahead
//! (a multi round-trip round before the task) answer them first, by key;
//! the rest go to the task's client, gathered: requests the upstream sends
//! together (in parallel) are asked together, so the client sees them
//! pending at once; a task asks one batch at a time, since a batch's wait
//! takes the task's answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pmcp_tasks_host::InputRequest;
use rmcp::model::ErrorData;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::worker::{ToolExit, Worker};

/// A question waiting to be asked, and where its answer goes.
type Pending = (InputRequest, oneshot::Sender<Result<Value, ErrorData>>);

/// Answers one call's questions: from the answers the client gave ahead
/// (multi round-trip, by key), else by asking the task's client, in batches.
pub(super) struct Asker {
    /// The task's worker; `None` for a plain call, which cannot ask.
    worker: Option<Worker>,
    /// Answers given ahead, by key; each answers one question.
    given: Mutex<Map<String, Value>>,
    settle: Duration,
    next_key: AtomicU64,
    pending: Mutex<Vec<Pending>>,
    /// Held by the batch being asked.
    turn: tokio::sync::Mutex<()>,
}

impl Asker {
    pub(super) fn new(worker: Option<Worker>, settle: Duration, given: Map<String, Value>) -> Self {
        Asker {
            worker,
            given: Mutex::new(given),
            settle,
            next_key: AtomicU64::new(0),
            pending: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// The task's worker, when the call runs as a task.
    pub(super) fn worker(&self) -> Option<&Worker> {
        self.worker.as_ref()
    }

    /// The key of a call's `n`th question (from 0), the same for a probe
    /// and the call that follows it, so answers given ahead match.
    pub(super) fn key(n: u64) -> String {
        format!("upstream-{n}")
    }

    /// Asks the client `method` with `params`: its answer, once given.
    pub(super) async fn ask(
        &self,
        method: &str,
        params: Map<String, Value>,
    ) -> Result<Value, ErrorData> {
        // Keys are unique over the task's life: its one call numbers them.
        let key = Asker::key(self.next_key.fetch_add(1, Ordering::Relaxed));
        let given = self
            .given
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        if let Some(answer) = given {
            return Ok(answer);
        }
        let Some(worker) = &self.worker else {
            return Err(ErrorData::invalid_request(
                "a call that does not run as a task has no client to ask for input",
                None,
            ));
        };
        let (answer, answered) = oneshot::channel();
        self.pending()
            .push((InputRequest::new(key, method, params), answer));
        {
            let _turn = self.turn.lock().await;
            // Whoever takes the turn asks everything pending by then, ours
            // included unless an earlier turn took it.
            if !self.pending().is_empty() {
                tokio::time::sleep(self.settle).await;
                let batch = std::mem::take(&mut *self.pending());
                ask_batch(worker, batch).await;
            }
        }
        answered.await.unwrap_or_else(|_| {
            Err(ErrorData::internal_error(
                "the question was dropped unanswered",
                None,
            ))
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Asks the task's client every question of `batch` at once.
async fn ask_batch(worker: &Worker, batch: Vec<Pending>) {
    let (requests, answers): (Vec<InputRequest>, Vec<_>) = batch.into_iter().unzip();
    match worker.ask(&requests).await {
        Ok(responses) => {
            for (response, answer) in responses.into_iter().zip(answers) {
                let _ = answer.send(Ok(response.response));
            }
        }
        Err(exit) => {
            let message = match exit {
                ToolExit::Cancelled => "the task was cancelled".to_owned(),
                ToolExit::Failed(e) => e.message,
                other => other.to_string(),
            };
            for answer in answers {
                let _ = answer.send(Err(ErrorData::internal_error(message.clone(), None)));
            }
        }
    }
}
