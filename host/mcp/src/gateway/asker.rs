//! [`Asker`]: a task call's questions to its client, gathered. Requests
//! the upstream sends together (in parallel) are asked together, so the
//! client sees them pending at once; a task asks one batch at a time,
//! since a batch's wait takes the task's answers.

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

/// Asks one task's client, in batches.
pub(super) struct Asker {
    worker: Worker,
    settle: Duration,
    next_key: AtomicU64,
    pending: Mutex<Vec<Pending>>,
    /// Held by the batch being asked.
    turn: tokio::sync::Mutex<()>,
}

impl Asker {
    pub(super) fn new(worker: Worker, settle: Duration) -> Self {
        Asker {
            worker,
            settle,
            next_key: AtomicU64::new(0),
            pending: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// The task's worker.
    pub(super) fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Asks the client `method` with `params`: its answer, once given.
    pub(super) async fn ask(
        &self,
        method: &str,
        params: Map<String, Value>,
    ) -> Result<Value, ErrorData> {
        // Keys are unique over the task's life: its one call numbers them.
        let key = format!("upstream-{}", self.next_key.fetch_add(1, Ordering::Relaxed));
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
                self.ask_batch(batch).await;
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

    async fn ask_batch(&self, batch: Vec<Pending>) {
        let (requests, answers): (Vec<InputRequest>, Vec<_>) = batch.into_iter().unzip();
        match self.worker.ask(&requests).await {
            Ok(responses) => {
                for (response, answer) in responses.into_iter().zip(answers) {
                    let _ = answer.send(Ok(response.response));
                }
            }
            Err(exit) => {
                let message = match exit {
                    ToolExit::Cancelled => "the task was cancelled".to_owned(),
                    ToolExit::Failed(e) => e.message,
                };
                for answer in answers {
                    let _ = answer.send(Err(ErrorData::internal_error(message.clone(), None)));
                }
            }
        }
    }
}
