//! The queue of tasks waiting for a worker, served by every replica with
//! room: a task created while its replica was full, and a retryable task
//! whose worker was lost (after its backoff) or that a stopping replica
//! handed off, is claimed by whichever replica looks first (one
//! compare-and-swap: exactly one wins) and run from its stored call, with
//! its attempt number and last checkpoint. A replica looks every claim
//! interval and at once when one of its workers ends.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::error::RpcError;
use crate::server::{DurableTaskServer, TaskTools, ToolCall};
use crate::service::Claimed;
use crate::worker::ToolExit;

impl<T: TaskTools> DurableTaskServer<T> {
    /// Claims and runs tasks waiting for a worker, every
    /// `ServiceConfig::claim_interval`, as long as this replica has room
    /// (`ServiceConfig::max_running_tasks`), until `stop` is cancelled or
    /// the service shuts down. Run it on every replica (a replica with no
    /// listener at all may run only this).
    pub async fn serve_queue(&self, stop: CancellationToken) {
        let service = self.service();
        let every = service.config().claim_interval;
        loop {
            // Enabled before the claim: a slot freed meanwhile is not missed.
            let room = service.room_freed();
            tokio::pin!(room);
            room.as_mut().enable();
            match service.claim().await {
                Ok(claimed) => {
                    for claimed in claimed {
                        self.run_claimed(service, claimed);
                    }
                }
                Err(error) => tracing::warn!(%error, "claiming queued tasks failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = service.stopped() => return,
                _ = &mut room => {}
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Runs a claimed task's stored call with this replica's tools.
    fn run_claimed(&self, service: &crate::service::TaskService, claimed: Claimed) {
        let detail = &claimed.task.detail;
        let call = ToolCall {
            name: detail.record.tool_name.clone().unwrap_or_default(),
            arguments: detail.arguments.clone().unwrap_or_default(),
            input_responses: Default::default(),
        };
        let tools = Arc::clone(self.tools());
        let known = tools.tool(&call.name).is_some();
        service.resume(claimed, move |worker| {
            if known {
                tools.call(call, Some(worker))
            } else {
                let error = RpcError::internal(format!(
                    "the replica that claimed this task offers no tool `{}`",
                    call.name
                ));
                Box::pin(std::future::ready(Err(ToolExit::Failed(error))))
            }
        });
    }
}
