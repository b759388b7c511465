//! What the upstream sends during a call, routed to that call: its
//! questions (`elicitation/create`, `sampling/createMessage`,
//! `roots/list`) to the task's client, to answers the
//! client gave ahead (multi round-trip), or to a probe that only collects
//! them; its progress to the task's status message. A connection serving
//! a task call serves no other, so its requests are that call's. And what
//! it says of every call: that its tools changed ([`ToolList`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

// Sampling and roots are deprecated as of 2026-07-28 (SEP-2577) and still
// input requests there; the servers behind a gateway are the ones that
// use them.
use rmcp::model::{
    ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ErrorData, Implementation,
    ProgressNotificationParam, ProgressToken, Tool,
};
#[allow(deprecated)]
use rmcp::model::{CreateMessageRequestParams, CreateMessageResult, ListRootsResult};
use rmcp::service::{NotificationContext, Peer, RequestContext, RoleClient};
use rmcp::ClientHandler;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::asker::Asker;
use super::lines::Oversized;
use super::{UpstreamCause, UpstreamServer};

/// The calls in flight on one connection.
#[derive(Default)]
pub(super) struct Calls {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Call>>>,
    /// Told when the upstream sent a message over the gateway's limit.
    pub(super) oversized: Arc<Oversized>,
}

/// Who answers a call's questions.
pub(super) enum Role {
    /// Nobody: a plain call on the shared connection.
    Plain,
    /// The answers the client gave ahead, then the task's client.
    Answering(Box<Asker>),
    /// Nobody yet: the questions are collected, to be asked before the
    /// task exists (the call is then stopped).
    Probing(Arc<Probe>),
}

/// The questions of a call run only to learn them.
#[derive(Default)]
pub(super) struct Probe {
    questions: Mutex<Vec<(String, Map<String, Value>)>>,
    /// Woken at the first question.
    pub(super) asked: Notify,
    /// Cancelled when the probe is over: the questions get an error.
    over: CancellationToken,
}

impl Probe {
    /// Ends the probe: the questions so far, as input requests keyed in
    /// the order an [`Asker`] numbers them.
    pub(super) fn finish(&self) -> Map<String, Value> {
        self.over.cancel();
        let questions = std::mem::take(
            &mut *self
                .questions
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        questions
            .into_iter()
            .enumerate()
            .map(|(n, (method, params))| {
                (
                    Asker::key(n as u64),
                    json!({"method": method, "params": params}),
                )
            })
            .collect()
    }

    async fn record(&self, method: &str, params: Map<String, Value>) -> Result<Value, ErrorData> {
        self.questions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((method.to_owned(), params));
        self.asked.notify_one();
        self.over.cancelled().await;
        Err(ErrorData::invalid_request(
            "the gateway asks this before the task starts; this call is stopped",
            None,
        ))
    }
}

/// One call in flight.
pub(super) struct Call {
    /// The progress token the upstream's notifications name.
    pub(super) token: OnceLock<ProgressToken>,
    role: Role,
    /// When the upstream last sent anything for this call.
    heard: Mutex<Instant>,
    /// Questions of this call waiting for the client.
    waiting_for_input: AtomicUsize,
    /// The highest `progress` value relayed so far: notifications can be
    /// handled out of order, and one older than it is dropped (the value
    /// increases with each notification of a call, the specification
    /// says), so the status message never goes backwards.
    progress_seen: Mutex<Option<f64>>,
}

impl Call {
    fn heard_now(&self) {
        *self.heard.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// Whether `progress` is past every value relayed so far (and is now
    /// the highest).
    fn advances_progress(&self, progress: f64) -> bool {
        let mut seen = self
            .progress_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.is_some_and(|last| progress <= last) {
            return false;
        }
        *seen = Some(progress);
        true
    }

    pub(super) fn last_heard(&self) -> Instant {
        *self.heard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the upstream has been silent for `timeout` while no input
    /// was awaited (waiting for the client is not the upstream's silence).
    pub(super) fn idle_for(&self, timeout: Duration) -> bool {
        if self.waiting_for_input.load(Ordering::SeqCst) > 0 {
            self.heard_now();
            return false;
        }
        self.last_heard().elapsed() >= timeout
    }
}

/// A call's place among the open ones; leaving it closes the call.
pub(super) struct OpenCall<'a> {
    calls: &'a Calls,
    id: u64,
    pub(super) call: Arc<Call>,
}

impl Drop for OpenCall<'_> {
    fn drop(&mut self) {
        self.calls
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_relayed_late_never_moves_the_message_back() {
        let calls = Calls::default();
        let open = calls.open(Role::Plain);
        let relayed: Vec<f64> = [1.0, 3.0, 2.0, 3.0, 4.0]
            .into_iter()
            .filter(|p| open.call.advances_progress(*p))
            .collect();
        assert_eq!(relayed, [1.0, 3.0, 4.0]);
    }
}

impl Calls {
    /// Opens a call whose questions go to `role`, before its request is sent.
    pub(super) fn open(&self, role: Role) -> OpenCall<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let call = Arc::new(Call {
            token: OnceLock::new(),
            role,
            heard: Mutex::new(Instant::now()),
            waiting_for_input: AtomicUsize::new(0),
            progress_seen: Mutex::new(None),
        });
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, call.clone());
        OpenCall {
            calls: self,
            id,
            call,
        }
    }

    fn by_token(&self, token: &ProgressToken) -> Option<Arc<Call>> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.values()
            .find(|c| c.token.get() == Some(token))
            .cloned()
    }

    /// The call an upstream request belongs to: the only one in flight.
    /// (A call that can be asked has its connection to itself; several
    /// calls in flight are plain calls, and this is a guard.)
    fn sole_call(&self) -> Result<Arc<Call>, ErrorData> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mut calls = open.values();
        match (calls.next(), calls.next()) {
            (Some(call), None) => Ok(call.clone()),
            (None, _) => Err(ErrorData::invalid_request(
                "the gateway has no call in flight to ask for",
                None,
            )),
            (Some(_), Some(_)) => Err(ErrorData::invalid_request(
                format!(
                    "{} calls are in flight here and stdio does not say which one this \
                     request serves, so the gateway asks nobody",
                    open.len()
                ),
                None,
            )),
        }
    }

    /// Routes a question of the call it serves; its answer.
    async fn ask(&self, method: &str, params: Map<String, Value>) -> Result<Value, ErrorData> {
        let call = self.sole_call()?;
        call.heard_now();
        let answer = match &call.role {
            Role::Plain => Err(ErrorData::invalid_request(
                "a call that does not run as a task has no client to ask for input",
                None,
            )),
            Role::Probing(probe) => probe.record(method, params).await,
            Role::Answering(asker) => {
                call.waiting_for_input.fetch_add(1, Ordering::SeqCst);
                let answer = asker.ask(method, params).await;
                call.waiting_for_input.fetch_sub(1, Ordering::SeqCst);
                answer
            }
        };
        call.heard_now();
        answer
    }

    /// A progress notification: the status message of the call's task.
    async fn progress(&self, params: ProgressNotificationParam) {
        let Some(call) = self.by_token(&params.progress_token) else {
            return;
        };
        call.heard_now();
        let Role::Answering(asker) = &call.role else {
            return;
        };
        let Some(worker) = asker.worker() else {
            return;
        };
        if !call.advances_progress(params.progress) {
            return;
        }
        let message = params.message.unwrap_or_else(|| match params.total {
            Some(total) => format!("{} of {total}", params.progress),
            None => format!("{}", params.progress),
        });
        if let Err(e) = worker.progress(&message).await {
            tracing::debug!(task = worker.task_id(), error = %e, "progress not stored");
        }
    }
}

/// The tools the upstream listed last: when a connection started, or when
/// one said its list changed (`notifications/tools/list_changed`), so
/// that the gateway offers what the upstream offers now.
pub(super) struct ToolList {
    server: UpstreamServer,
    tools: RwLock<Arc<Vec<Tool>>>,
}

impl ToolList {
    /// None yet, of `server`.
    pub(super) fn new(server: UpstreamServer) -> Self {
        ToolList {
            server,
            tools: RwLock::default(),
        }
    }

    /// The tools as last listed.
    pub(super) fn current(&self) -> Arc<Vec<Tool>> {
        self.tools
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Lists the tools (again) through `peer`.
    pub(super) async fn relist(&self, peer: &Peer<RoleClient>) -> Result<(), UpstreamCause> {
        let tools = peer
            .list_all_tools()
            .await
            .map_err(|e| UpstreamCause::of(&e, &self.server))?;
        *self.tools.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tools);
        Ok(())
    }
}

/// The gateway as the upstream's MCP client.
#[derive(Clone)]
pub(super) struct UpstreamClient {
    pub(super) calls: Arc<Calls>,
    /// Listed again when the upstream says its tools changed.
    pub(super) tools: Arc<ToolList>,
}

/// `value`'s fields (the params of an input request).
fn fields<T: serde::Serialize>(value: &T) -> Result<Map<String, Value>, ErrorData> {
    match serde_json::to_value(value) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(ErrorData::internal_error(
            "the request's params are not an object",
            None,
        )),
    }
}

/// The client's answer as the result type the upstream expects.
fn answer_as<T: serde::de::DeserializeOwned>(answer: Value, what: &str) -> Result<T, ErrorData> {
    serde_json::from_value(answer).map_err(|e| {
        ErrorData::internal_error(format!("the client's answer is not a {what}: {e}"), None)
    })
}

impl ClientHandler for UpstreamClient {
    /// Every kind of question a task can ask its client (an input request
    /// of MCP 2026-07-28: elicitation, sampling, roots).
    #[allow(deprecated)]
    fn get_info(&self) -> ClientConfig {
        let capabilities = ClientCapabilities::builder()
            .enable_elicitation()
            .enable_sampling()
            .enable_roots()
            .build();
        ClientConfig::new(
            capabilities,
            Implementation::new("pmcp-tasks-gateway", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let answer = self
            .calls
            .ask("elicitation/create", fields(&request)?)
            .await?;
        answer_as(answer, "elicitation result")
    }

    #[allow(deprecated)]
    async fn create_message(
        &self,
        request: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let answer = self
            .calls
            .ask("sampling/createMessage", fields(&request)?)
            .await?;
        answer_as(answer, "sampling result")
    }

    #[allow(deprecated)]
    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let answer = self.calls.ask("roots/list", Map::new()).await?;
        answer_as(answer, "roots list")
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.calls.progress(params).await;
    }

    async fn on_tool_list_changed(&self, context: NotificationContext<RoleClient>) {
        if let Err(error) = self.tools.relist(&context.peer).await {
            tracing::warn!(%error, "the upstream said its tools changed, and did not list them");
        }
    }
}
