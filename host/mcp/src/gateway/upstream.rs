//! The upstream server's processes: one shared by plain calls, and one
//! to itself for each task call (from a pool of idle ones), so that any
//! request a process sends mid-call belongs to the one task it serves;
//! their tools; and the client side of MCP that turns the upstream's
//! requests and progress into task state.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientCapabilities, ClientConfig, ClientRequest,
    ElicitRequestParams, ElicitResult, ErrorData, Implementation, ProgressNotificationParam,
    ProgressToken, ServerResult, Tool,
};
use rmcp::service::{
    NotificationContext, Peer, PeerRequestOptions, RequestContext, RoleClient, RunningService,
    ServiceError,
};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::asker::Asker;
use super::{GatewayError, UpstreamServer, UpstreamTransport};
use crate::error::RpcError;
use crate::server::ToolCall;
use crate::worker::{ToolExit, ToolOutcome, Worker};

/// One running upstream process, as its MCP client.
struct Connection {
    service: RunningService<RoleClient, UpstreamClient>,
    calls: Arc<Calls>,
}

impl Connection {
    fn alive(&self) -> bool {
        !self.service.peer().is_transport_closed()
    }
}

/// A process held by one task call; back to the idle pool when released
/// reusable, ended otherwise.
struct Lease<'a> {
    upstream: &'a Upstream,
    connection: Option<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl Lease<'_> {
    fn connection(&self) -> &Connection {
        self.connection
            .as_ref()
            .expect("a lease holds its connection until released")
    }

    /// Gives the process back: to the idle pool when `reusable` and
    /// there is room, else it ends.
    fn release(mut self, reusable: bool) {
        if let Some(connection) = self.connection.take() {
            if reusable && connection.alive() {
                let mut idle = self.upstream.idle();
                if idle.len() < self.upstream.limits.idle {
                    idle.push(connection);
                }
            }
        }
    }
}

/// How the gateway runs its upstream processes (from `GatewayOptions`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Task calls running at once (each holds a process).
    pub(super) busy: usize,
    /// Idle processes kept ready for the next task call.
    pub(super) idle: usize,
    /// The longest a process may send nothing: while it starts, and
    /// during a call while no input is awaited.
    pub(super) idle_timeout: Duration,
    /// How long input requests sent together are gathered.
    pub(super) input_settle: Duration,
}

/// The upstream server, as the gateway's tools see it.
pub(super) struct Upstream {
    server: UpstreamServer,
    limits: Limits,
    /// The process plain calls share (none of them can be asked for input).
    shared: tokio::sync::Mutex<Option<Connection>>,
    /// Processes ready for a task call.
    idle: Mutex<Vec<Connection>>,
    /// One permit per task call running.
    busy: Arc<Semaphore>,
    /// The tools the upstream listed when a process last started.
    tools: RwLock<Arc<Vec<Tool>>>,
}

impl Upstream {
    pub(super) fn new(server: UpstreamServer, limits: Limits) -> Self {
        Upstream {
            server,
            limits,
            shared: tokio::sync::Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            busy: Arc::new(Semaphore::new(limits.busy.max(1))),
            tools: RwLock::new(Arc::default()),
        }
    }

    /// The tools the upstream listed when a process last started.
    pub(super) fn tools(&self) -> Arc<Vec<Tool>> {
        self.tools
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the shared process (listing the tools), if it is not running.
    pub(super) async fn connect(&self) -> Result<(), GatewayError> {
        self.shared().await.map(drop)
    }

    /// The shared connection (its peer and calls in flight), made (again)
    /// if there is none or it was lost. Cloned out, so that plain
    /// calls do not queue on the lock.
    async fn shared(&self) -> Result<(Peer<RoleClient>, Arc<Calls>), GatewayError> {
        let mut shared = self.shared.lock().await;
        if let Some(connection) = shared.as_ref().filter(|c| c.alive()) {
            return Ok((connection.service.peer().clone(), connection.calls.clone()));
        }
        if shared.is_some() {
            tracing::warn!(upstream = %self.server.name, "the upstream was lost; reaching it again");
        }
        let connection = self.start().await?;
        let handles = (connection.service.peer().clone(), connection.calls.clone());
        *shared = Some(connection);
        Ok(handles)
    }

    /// A process for one task call: an idle one, or a new one.
    async fn lease(&self) -> Result<Lease<'_>, GatewayError> {
        let permit = self
            .busy
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let ready = {
            let mut idle = self.idle();
            idle.retain(Connection::alive);
            idle.pop()
        };
        let connection = match ready {
            Some(connection) => connection,
            None => self.start().await?,
        };
        Ok(Lease {
            upstream: self,
            connection: Some(connection),
            _permit: permit,
        })
    }

    /// Starts a process, within the idle timeout.
    async fn start(&self) -> Result<Connection, GatewayError> {
        let waited = self.limits.idle_timeout;
        tokio::time::timeout(waited, self.start_unbounded())
            .await
            .map_err(|_| GatewayError::Silent {
                name: self.server.name.clone(),
                waited,
            })?
    }

    async fn start_unbounded(&self) -> Result<Connection, GatewayError> {
        let name = self.server.name.clone();
        let calls = Arc::new(Calls::new(self.limits.input_settle));
        let client = UpstreamClient {
            calls: calls.clone(),
        };
        let handshake = |source| GatewayError::Handshake {
            name: name.clone(),
            source: Box::new(source),
        };
        let service = match &self.server.transport {
            UpstreamTransport::Stdio { program, args } => {
                let mut command = tokio::process::Command::new(program);
                command.args(args).kill_on_drop(true);
                let (transport, _) = TokioChildProcess::builder(command)
                    .stderr(Stdio::inherit())
                    .spawn()
                    .map_err(|source| GatewayError::Spawn {
                        name: name.clone(),
                        source,
                    })?;
                client.serve(transport).await.map_err(handshake)?
            }
            UpstreamTransport::Http { url } => {
                let transport = StreamableHttpClientTransport::from_uri(url.as_str());
                client.serve(transport).await.map_err(handshake)?
            }
        };
        let tools =
            service
                .peer()
                .list_all_tools()
                .await
                .map_err(|source| GatewayError::ListTools {
                    name: name.clone(),
                    source,
                })?;
        *self.tools.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tools);
        Ok(Connection { service, calls })
    }

    /// Runs one call upstream: its result, or how it ended. A task call
    /// (`worker` given) runs on a connection of its own; a plain one on
    /// the shared connection. The call is made once, and again only when
    /// it never left the gateway, or, for up to `retries` more times, when
    /// the upstream was lost or went silent (for tools the operator
    /// declared idempotent).
    pub(super) async fn call(
        &self,
        call: ToolCall,
        worker: Option<Worker>,
        mut retries: u32,
    ) -> ToolOutcome {
        let mut unsent_retried = false;
        loop {
            let cancelled = worker
                .as_ref()
                .is_some_and(|w| w.cancellation().is_cancelled());
            match self.attempt(call.clone(), worker.clone()).await {
                Attempt::Final(outcome) => return outcome,
                Attempt::NotSent(exit) if !unsent_retried && !cancelled => {
                    unsent_retried = true;
                    tracing::info!(upstream = %self.server.name, error = %exit, "the call never left; sending it on a new connection");
                }
                Attempt::Lost(exit) if retries > 0 && !cancelled => {
                    retries -= 1;
                    tracing::warn!(upstream = %self.server.name, tool = %call.name, error = %exit, "calling the idempotent tool again");
                }
                Attempt::NotSent(exit) | Attempt::Lost(exit) => return Err(exit),
            }
        }
    }

    async fn attempt(&self, call: ToolCall, worker: Option<Worker>) -> Attempt {
        let unreachable = |e: GatewayError| failed(format!("{e}: {}", source_text(&e)));
        match worker {
            Some(worker) => {
                let lease = match self.lease().await {
                    Ok(lease) => lease,
                    Err(e) => return Attempt::Final(Err(unreachable(e))),
                };
                let connection = lease.connection();
                let attempt = self
                    .call_with(
                        connection.service.peer(),
                        &connection.calls,
                        call,
                        Some(worker),
                    )
                    .await;
                lease.release(matches!(attempt, Attempt::Final(_)));
                attempt
            }
            None => match self.shared().await {
                Ok((peer, calls)) => self.call_with(&peer, &calls, call, None).await,
                Err(e) => Attempt::Final(Err(unreachable(e))),
            },
        }
    }

    /// One attempt at the call on `peer`, whose calls in flight are `calls`.
    async fn call_with(
        &self,
        peer: &Peer<RoleClient>,
        calls: &Calls,
        call: ToolCall,
        worker: Option<Worker>,
    ) -> Attempt {
        let name = &self.server.name;
        let idle_timeout = self.limits.idle_timeout;
        let open = calls.open(worker.clone());
        let params = CallToolRequestParams::new(call.name).with_arguments(call.arguments);
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let mut handle = match peer
            .send_cancellable_request(request, PeerRequestOptions::no_options())
            .await
        {
            Ok(handle) => handle,
            Err(_) => {
                let lost = failed(format!("the upstream `{name}` was lost before the call"));
                return Attempt::NotSent(lost);
            }
        };
        let _ = open.call.token.set(handle.progress_token.clone());
        let cancelled = async {
            match &worker {
                Some(worker) => worker.cancellation().cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(cancelled);
        let ended = loop {
            let idle_ends = open.call.last_heard() + idle_timeout;
            tokio::select! {
                answer = &mut handle.rx => break Ended::Answered(outcome(name, answer)),
                () = &mut cancelled => break Ended::Cancelled,
                () = tokio::time::sleep_until(idle_ends) => {
                    if open.call.idle_for(idle_timeout) {
                        break Ended::Silent;
                    }
                }
            }
        };
        match ended {
            Ended::Answered(attempt) => attempt,
            Ended::Cancelled => {
                // The upstream stops the call; the task ends cancelled
                // whatever it answers.
                let _ = handle.cancel(Some("the task was cancelled".into())).await;
                Attempt::Final(Err(ToolExit::Cancelled))
            }
            Ended::Silent => {
                let _ = handle
                    .cancel(Some("the gateway gave up waiting".into()))
                    .await;
                Attempt::Lost(failed(format!(
                    "the upstream `{name}` sent nothing for {} ms and was given up",
                    idle_timeout.as_millis()
                )))
            }
        }
    }
}

/// How one attempt at a call ended.
enum Attempt {
    /// The upstream answered (a result or a JSON-RPC error), or the task
    /// was cancelled: the call's end; its connection may serve another.
    Final(ToolOutcome),
    /// The request never left the gateway (its connection was already
    /// gone): the upstream did not see it.
    NotSent(ToolExit),
    /// The connection was lost, or the upstream went silent, mid-call: the
    /// call may or may not have run there; the connection is done.
    Lost(ToolExit),
}

/// How the wait for an upstream answer ended.
enum Ended {
    Answered(Attempt),
    Cancelled,
    Silent,
}

/// The attempt's end, from the upstream's answer.
fn outcome(
    name: &str,
    answer: Result<Result<ServerResult, ServiceError>, tokio::sync::oneshot::error::RecvError>,
) -> Attempt {
    match answer {
        Ok(Ok(ServerResult::CallToolResult(result))) => Attempt::Final(
            serde_json::to_value(result)
                .map_err(|e| failed(format!("the upstream `{name}`'s result: {e}"))),
        ),
        Ok(Ok(_)) => Attempt::Final(Err(failed(format!(
            "the upstream `{name}` answered tools/call with something other than a tool result"
        )))),
        Ok(Err(ServiceError::McpError(error))) => Attempt::Final(Err(ToolExit::Failed(RpcError {
            code: error.code.0,
            message: error.message.into_owned(),
            data: error.data,
        }))),
        Ok(Err(ServiceError::TransportClosed)) | Err(_) => Attempt::Lost(failed(format!(
            "the upstream `{name}` was lost during the call (it exited or closed the connection)"
        ))),
        Ok(Err(other)) => Attempt::Lost(failed(format!("the upstream `{name}` failed: {other}"))),
    }
}

fn failed(message: String) -> ToolExit {
    ToolExit::Failed(RpcError::internal(message))
}

/// The cause of `error`, for a message that must stand alone.
fn source_text(error: &GatewayError) -> String {
    std::error::Error::source(error).map_or_else(String::new, ToString::to_string)
}

/// The calls in flight on the connection.
pub(super) struct Calls {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Call>>>,
    input_settle: Duration,
}

/// One call in flight.
pub(super) struct Call {
    /// The progress token the upstream's notifications name.
    token: OnceLock<ProgressToken>,
    /// Asks the task's client, when the call runs as a task.
    asker: Option<Asker>,
    /// When the upstream last sent anything for this call.
    heard: Mutex<Instant>,
    /// Input requests of this call waiting for the client.
    waiting_for_input: AtomicUsize,
}

impl Call {
    fn heard_now(&self) {
        *self.heard.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn last_heard(&self) -> Instant {
        *self.heard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the upstream has been silent for `timeout` while no input
    /// was awaited (waiting for the client is not the upstream's silence).
    fn idle_for(&self, timeout: Duration) -> bool {
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
    call: Arc<Call>,
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

impl Calls {
    fn new(input_settle: Duration) -> Self {
        Calls {
            next_id: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
            input_settle,
        }
    }

    /// Opens a call, before its request is sent.
    fn open(&self, worker: Option<Worker>) -> OpenCall<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let call = Arc::new(Call {
            token: OnceLock::new(),
            asker: worker.map(|w| Asker::new(w, self.input_settle)),
            heard: Mutex::new(Instant::now()),
            waiting_for_input: AtomicUsize::new(0),
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

    /// The call an upstream request belongs to: the only one in flight,
    /// if it runs as a task. (A task call has its process to itself, so
    /// the other cases are plain calls, and a guard.)
    fn sole_task_call(&self) -> Result<Arc<Call>, ErrorData> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let refuse = |why: String| Err(ErrorData::invalid_request(why, None));
        match open.len() {
            0 => refuse("the gateway has no call in flight to ask for".into()),
            1 => match open.values().next() {
                Some(call) if call.asker.is_some() => Ok(call.clone()),
                _ => refuse(
                    "a call that does not run as a task has no client to ask for input".into(),
                ),
            },
            n => refuse(format!(
                "{n} calls are in flight here and stdio does not say which one this request \
                 serves, so the gateway asks nobody"
            )),
        }
    }

    /// Asks the client of the call this request serves; its answer.
    async fn ask(&self, method: &str, params: Map<String, Value>) -> Result<Value, ErrorData> {
        let call = self.sole_task_call()?;
        let Some(asker) = &call.asker else {
            unreachable!("sole_task_call returns task calls only")
        };
        call.waiting_for_input.fetch_add(1, Ordering::SeqCst);
        let answer = asker.ask(method, params).await;
        call.waiting_for_input.fetch_sub(1, Ordering::SeqCst);
        call.heard_now();
        answer
    }

    /// A progress notification: the status message of the call's task.
    async fn progress(&self, params: ProgressNotificationParam) {
        let Some(call) = self.by_token(&params.progress_token) else {
            return;
        };
        call.heard_now();
        let Some(asker) = &call.asker else {
            return;
        };
        let message = params.message.unwrap_or_else(|| match params.total {
            Some(total) => format!("{} of {total}", params.progress),
            None => format!("{}", params.progress),
        });
        if let Err(e) = asker.worker().progress(&message).await {
            tracing::debug!(task = asker.worker().task_id(), error = %e, "progress not stored");
        }
    }
}

/// The gateway as the upstream's MCP client.
#[derive(Clone)]
pub(super) struct UpstreamClient {
    calls: Arc<Calls>,
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
    fn get_info(&self) -> ClientConfig {
        let capabilities = ClientCapabilities::builder().enable_elicitation().build();
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

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.calls.progress(params).await;
    }
}
