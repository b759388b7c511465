//! The queue of tasks waiting for a worker, served by every replica: a
//! retryable task whose worker was lost (after its backoff) or that a
//! stopping replica handed off is claimed by whichever replica looks
//! first (one compare-and-swap: exactly one wins) and run again from its
//! stored call, with its attempt number and last checkpoint.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::error::RpcError;
use crate::server::{DurableTaskServer, TaskTools, ToolCall};
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
            match service.claim().await {
                Ok(claimed) => {
                    for (task, grant) in claimed {
                        let call = ToolCall {
                            name: task.detail.record.tool_name.clone().unwrap_or_default(),
                            arguments: task.detail.arguments.clone().unwrap_or_default(),
                            input_responses: Default::default(),
                        };
                        let tools = Arc::clone(self.tools());
                        let known = tools.tool(&call.name).is_some();
                        service.resume(task, grant, move |worker| {
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
                Err(error) => tracing::warn!(%error, "claiming queued tasks failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = service.stopped() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
