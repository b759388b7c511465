//! The upstream server's connections (processes or HTTP sessions): one
//! shared by plain calls, and one to itself for each call that can be
//! asked (from a pool of idle ones), so that whatever the upstream asks
//! mid-call belongs to the one call it serves; its tools; and how one
//! call is made, retried, stopped or given up.

use std::future::Future;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest, ServerResult, Tool};
use rmcp::service::{
    Peer, PeerRequestOptions, RequestHandle, RoleClient, RunningService, ServiceError,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::asker::Asker;
use super::calls::{Calls, Probe, Role, ToolList, UpstreamClient};
use super::lines::LineGuard;
use super::{GatewayError, UpstreamCause, UpstreamServer, UpstreamTransport};
use crate::error::RpcError;
use crate::server::{Preparation, ToolCall};
use crate::worker::{ToolExit, ToolOutcome, Worker};

/// One upstream connection (a process, or an HTTP session), as its MCP
/// client.
struct Connection {
    service: RunningService<RoleClient, UpstreamClient>,
    calls: Arc<Calls>,
    /// The upstream's process (stdio), ended when the connection goes.
    _process: UpstreamProcess,
}

/// How long an upstream process whose connection ended may take to exit
/// by itself before it is killed.
const PROCESS_EXIT_GRACE: Duration = Duration::from_secs(3);

/// A stdio upstream's process. When its connection goes (its stdin
/// closed), it gets [`PROCESS_EXIT_GRACE`] to exit by itself, so that it
/// acts on what was sent last (a call's cancellation), then is killed.
struct UpstreamProcess(Option<tokio::process::Child>);

impl Drop for UpstreamProcess {
    fn drop(&mut self) {
        let Some(mut child) = self.0.take() else {
            return;
        };
        // Outside a runtime, `kill_on_drop` kills it at once.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if tokio::time::timeout(PROCESS_EXIT_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
            });
        }
    }
}

/// The longest message the gateway reads from a stdio upstream, in bytes
/// without its newline: rmcp's own line limit (16 MiB) less the newline.
/// A longer one fails the calls in flight on its connection at once.
pub(super) const MAX_UPSTREAM_LINE: usize = rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH - 1;

impl Connection {
    fn alive(&self) -> bool {
        !self.service.peer().is_transport_closed()
    }
}

/// A connection held by one call that can be asked; back to the idle
/// pool when released reusable, ended otherwise.
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

    /// Gives the connection back: to the idle pool when `reusable` and
    /// there is room, else it ends (a process is killed).
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

/// How the gateway runs its upstream connections (from `GatewayOptions`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Task calls running at once (each holds a connection).
    pub(super) busy: usize,
    /// Idle connections kept ready for the next task call.
    pub(super) idle: usize,
    /// The longest the upstream may send nothing during a call while no
    /// input is awaited.
    pub(super) idle_timeout: Duration,
    /// The longest a connection may take to start.
    pub(super) start_timeout: Duration,
    /// How long input requests sent together are gathered.
    pub(super) input_settle: Duration,
}

/// The upstream server, as the gateway's tools see it.
pub(super) struct Upstream {
    server: UpstreamServer,
    limits: Limits,
    /// The connection plain calls share (none of them can be asked).
    shared: tokio::sync::Mutex<Option<Connection>>,
    /// Connections ready for a task call.
    idle: Mutex<Vec<Connection>>,
    /// Idle connections being made now.
    refilling: AtomicUsize,
    /// One permit per task call running.
    busy: Arc<Semaphore>,
    /// The tools the upstream listed last.
    tools: Arc<ToolList>,
}

impl Upstream {
    pub(super) fn new(server: UpstreamServer, limits: Limits) -> Self {
        Upstream {
            limits,
            shared: tokio::sync::Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            refilling: AtomicUsize::new(0),
            busy: Arc::new(Semaphore::new(limits.busy.max(1))),
            tools: Arc::new(ToolList::new(server.clone())),
            server,
        }
    }

    /// The tools the upstream listed last.
    pub(super) fn tools(&self) -> Arc<Vec<Tool>> {
        self.tools.current()
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the shared connection (listing the tools), if there is none.
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

    /// Keeps the idle pool full: makes, in the background, as many
    /// connections as it lacks (counting those being made), so that a task
    /// call rarely waits for an upstream to start.
    pub(super) fn refill(self: &Arc<Self>) {
        loop {
            let lacking = {
                let idle = self.idle();
                let coming = idle.len() + self.refilling.load(Ordering::SeqCst);
                self.limits.idle.saturating_sub(coming)
            };
            if lacking == 0 {
                return;
            }
            self.refilling.fetch_add(1, Ordering::SeqCst);
            let upstream = self.clone();
            tokio::spawn(async move {
                let made = upstream.start().await;
                upstream.refilling.fetch_sub(1, Ordering::SeqCst);
                match made {
                    Ok(connection) => {
                        let mut idle = upstream.idle();
                        if idle.len() < upstream.limits.idle {
                            idle.push(connection);
                        }
                    }
                    Err(e) => tracing::warn!(
                        upstream = %upstream.server.name,
                        error = %e,
                        "an idle upstream connection could not be made"
                    ),
                }
            });
        }
    }

    /// A connection for one call that can be asked: an idle one (the pool
    /// refilled behind it), or a new one.
    async fn lease(self: &Arc<Self>) -> Result<Lease<'_>, GatewayError> {
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
        self.refill();
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

    /// Makes a connection (starts a process, or opens a session) and
    /// lists the tools, within the start timeout.
    async fn start(&self) -> Result<Connection, GatewayError> {
        let waited = self.limits.start_timeout;
        tokio::time::timeout(waited, self.start_unbounded())
            .await
            .map_err(|_| GatewayError::Silent {
                name: self.server.name.clone(),
                waited,
            })?
    }

    async fn start_unbounded(&self) -> Result<Connection, GatewayError> {
        let name = self.server.name.clone();
        let calls = Arc::new(Calls::default());
        let client = UpstreamClient {
            calls: calls.clone(),
            tools: self.tools.clone(),
        };
        let handshake = |source: rmcp::service::ClientInitializeError| GatewayError::Handshake {
            name: name.clone(),
            source: UpstreamCause::of(&source, &self.server),
        };
        let (service, process) = match &self.server.transport {
            UpstreamTransport::Stdio { program, args } => {
                let spawn_error = |source| GatewayError::Spawn {
                    name: name.clone(),
                    source,
                };
                let mut process = tokio::process::Command::new(program)
                    .args(args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(spawn_error)?;
                let (Some(stdin), Some(stdout)) = (process.stdin.take(), process.stdout.take())
                else {
                    return Err(spawn_error(std::io::Error::other("no stdio pipes")));
                };
                let stdout = LineGuard::new(stdout, MAX_UPSTREAM_LINE, calls.oversized.clone());
                let service = client.serve((stdout, stdin)).await.map_err(handshake)?;
                (service, Some(process))
            }
            UpstreamTransport::Http { url } => {
                let transport = StreamableHttpClientTransport::from_uri(url.as_str());
                (client.serve(transport).await.map_err(handshake)?, None)
            }
        };
        self.tools
            .relist(service.peer())
            .await
            .map_err(|source| GatewayError::ListTools {
                name: name.clone(),
                source,
            })?;
        Ok(Connection {
            service,
            calls,
            _process: UpstreamProcess(process),
        })
    }

    /// Runs one call upstream: its result, or how it ended. A task call
    /// (`worker` given) runs on a connection of its own; a plain one on
    /// the shared connection. The call is made once, and again only when
    /// it never left the gateway, or, for up to `retries` more times, when
    /// the upstream was lost or went silent (for tools the operator
    /// declared idempotent).
    pub(super) async fn call(
        self: &Arc<Self>,
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
                // Stopped on the task's cancellation: the upstream stops
                // the call; the task ends cancelled whatever it answers.
                Attempt::Stopped => return Err(ToolExit::Cancelled),
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

    /// Learns what a call asks before it acts: runs it on a connection of
    /// its own until its first questions (then stops it: they are to be
    /// asked before any task exists) or its answer, whichever comes first.
    /// Only for tools the operator declared ask-first: one that acts
    /// before asking would act twice.
    pub(super) async fn probe(self: &Arc<Self>, call: ToolCall) -> Preparation {
        let lease = match self.lease().await {
            Ok(lease) => lease,
            Err(e) => return Preparation::Ran(Err(unreachable(e))),
        };
        let probe = Arc::new(Probe::default());
        let asked = async {
            probe.asked.notified().await;
            // Questions sent together are asked together.
            tokio::time::sleep(self.limits.input_settle).await;
            "asked before the task starts"
        };
        let role = Role::Probing(probe.clone());
        match self.call_leased(lease, call, role, asked).await {
            // Stopped first, so the upstream saw the cancel before its
            // questions' errors.
            Attempt::Stopped => Preparation::Ask(probe.finish()),
            Attempt::Final(outcome) => Preparation::Ran(outcome),
            Attempt::NotSent(exit) | Attempt::Lost(exit) => Preparation::Ran(Err(exit)),
        }
    }

    /// One attempt at the call: a task call, or one that brings answers
    /// the client gave ahead, on a connection of its own; any other on the
    /// shared connection.
    async fn attempt(self: &Arc<Self>, call: ToolCall, worker: Option<Worker>) -> Attempt {
        let settle = self.limits.input_settle;
        if worker.is_none() && call.input_responses.is_empty() {
            return match self.shared().await {
                Ok((peer, calls)) => {
                    let never = std::future::pending();
                    self.call_with(&peer, &calls, call, Role::Plain, never)
                        .await
                }
                Err(e) => Attempt::Final(Err(unreachable(e))),
            };
        }
        let lease = match self.lease().await {
            Ok(lease) => lease,
            Err(e) => return Attempt::Final(Err(unreachable(e))),
        };
        let cancel = worker.as_ref().map(|w| w.cancellation().clone());
        let cancelled = async {
            match &cancel {
                Some(cancel) => cancel.cancelled().await,
                None => std::future::pending().await,
            }
            "the task was cancelled"
        };
        let asker = Asker::new(worker, settle, call.input_responses.clone());
        let role = Role::Answering(Box::new(asker));
        self.call_leased(lease, call, role, cancelled).await
    }

    /// One attempt on the lease's connection, which then goes back to the
    /// idle pool if the attempt left it usable (answered, or stopped by
    /// the gateway), else ends.
    async fn call_leased(
        &self,
        lease: Lease<'_>,
        call: ToolCall,
        role: Role,
        stop: impl Future<Output = &'static str>,
    ) -> Attempt {
        let connection = lease.connection();
        let peer = connection.service.peer();
        let attempt = self
            .call_with(peer, &connection.calls, call, role, stop)
            .await;
        lease.release(matches!(attempt, Attempt::Final(_) | Attempt::Stopped));
        attempt
    }

    /// One attempt at the call on `peer`, whose calls in flight are
    /// `calls`, its questions going to `role`; stopped (its cancel sent
    /// upstream, with the reason `stop` gives) when `stop` resolves first.
    async fn call_with(
        &self,
        peer: &Peer<RoleClient>,
        calls: &Calls,
        call: ToolCall,
        role: Role,
        stop: impl Future<Output = &'static str>,
    ) -> Attempt {
        let idle_timeout = self.limits.idle_timeout;
        let open = calls.open(role);
        let discarded_before = calls.oversized.count();
        let Ok(mut handle) = send(peer, call).await else {
            return Attempt::NotSent(self.lost("before the call"));
        };
        let _ = open.call.token.set(handle.progress_token.clone());
        tokio::pin!(stop);
        loop {
            let idle_ends = open.call.last_heard() + idle_timeout;
            tokio::select! {
                answer = &mut handle.rx => return self.outcome(answer),
                reason = &mut stop => {
                    let _ = handle.cancel(Some(reason.into())).await;
                    return Attempt::Stopped;
                }
                // Its answer, or something sent for it, was over the
                // limit and is gone: waiting would only time out.
                () = calls.oversized.after(discarded_before) => {
                    let _ = handle.cancel(Some("the gateway discarded an oversized message".into())).await;
                    return Attempt::Final(Err(self.oversized(calls.oversized.last_bytes())));
                }
                () = tokio::time::sleep_until(idle_ends) => {
                    if open.call.idle_for(idle_timeout) {
                        let _ = handle.cancel(Some("the gateway gave up waiting".into())).await;
                        return Attempt::Lost(self.silent());
                    }
                }
            }
        }
    }

    /// The upstream was lost `when`.
    fn lost(&self, when: &str) -> ToolExit {
        failed(format!(
            "the upstream `{}` was lost {when} (it exited or closed the connection)",
            self.server.name
        ))
    }

    /// The upstream sent a message of `bytes`, over the gateway's limit.
    fn oversized(&self, bytes: u64) -> ToolExit {
        failed(format!(
            "the upstream `{}` sent a message of {bytes} bytes, over the gateway's limit of \
             {MAX_UPSTREAM_LINE} bytes for one message; it was discarded (the call's result, \
             likely)",
            self.server.name
        ))
    }

    /// The upstream sent nothing for the idle timeout.
    fn silent(&self) -> ToolExit {
        failed(format!(
            "the upstream `{}` sent nothing for {} ms and was given up",
            self.server.name,
            self.limits.idle_timeout.as_millis()
        ))
    }

    /// The attempt's end, from the upstream's answer.
    fn outcome(&self, answer: Answer) -> Attempt {
        let name = &self.server.name;
        match answer {
            Ok(Ok(ServerResult::CallToolResult(result))) => Attempt::Final(
                serde_json::to_value(result)
                    .map_err(|e| failed(format!("the upstream `{name}`'s result: {e}"))),
            ),
            Ok(Ok(_)) => Attempt::Final(Err(failed(format!(
                "the upstream `{name}` answered tools/call with something other than a tool result"
            )))),
            Ok(Err(ServiceError::McpError(error))) => {
                Attempt::Final(Err(ToolExit::Failed(RpcError {
                    code: error.code.0,
                    message: error.message.into_owned(),
                    data: error.data,
                })))
            }
            Ok(Err(error)) if error.is_authorization_required() => Attempt::Lost(failed(format!(
                "the upstream `{name}` asks for an authorization the gateway does not have"
            ))),
            // A request that could not be sent, or whose answer could not
            // come: the connection is gone.
            Ok(Err(ServiceError::TransportClosed | ServiceError::TransportSend(_))) | Err(_) => {
                Attempt::Lost(self.lost("during the call"))
            }
            Ok(Err(other)) => {
                let cause = UpstreamCause::of(&other, &self.server);
                Attempt::Lost(failed(format!("the upstream `{name}` failed: {cause}")))
            }
        }
    }
}

/// What the upstream's answer to a request arrives as.
type Answer = Result<Result<ServerResult, ServiceError>, tokio::sync::oneshot::error::RecvError>;

/// Sends the call's `tools/call`: its handle, or `Err` when it never left.
async fn send(peer: &Peer<RoleClient>, call: ToolCall) -> Result<RequestHandle<RoleClient>, ()> {
    let params = CallToolRequestParams::new(call.name).with_arguments(call.arguments);
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    peer.send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .map_err(drop)
}

/// The error of an upstream that could not be reached: what happened,
/// and its cause when there is one (a timeout has none).
fn unreachable(e: GatewayError) -> ToolExit {
    match std::error::Error::source(&e) {
        Some(cause) => failed(format!("{e}: {cause}")),
        None => failed(e.to_string()),
    }
}

/// How one attempt at a call ended.
enum Attempt {
    /// The upstream answered (a result or a JSON-RPC error): the call's
    /// end; its connection may serve another.
    Final(ToolOutcome),
    /// The gateway stopped the call before its answer (its cancel sent
    /// upstream); the connection may serve another.
    Stopped,
    /// The request never left the gateway (its connection was already
    /// gone): the upstream did not see it.
    NotSent(ToolExit),
    /// The connection was lost, or the upstream went silent, mid-call: the
    /// call may or may not have run there; the connection is done.
    Lost(ToolExit),
}

fn failed(message: String) -> ToolExit {
    ToolExit::Failed(RpcError::internal(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_upstream_s_error_ends_with_its_cause_or_with_what_happened() {
        let message = |e: GatewayError| match unreachable(e) {
            ToolExit::Failed(error) => error.to_value()["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            other => panic!("{other:?}"),
        };
        let silent = message(GatewayError::Silent {
            name: "server.py".into(),
            waited: Duration::from_millis(3000),
        });
        assert_eq!(
            silent,
            "the upstream `server.py` did not start within 3000 ms"
        );
        let spawn = message(GatewayError::Spawn {
            name: "server.py".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
        assert_eq!(spawn, "starting the upstream `server.py`: no such file");
    }
}
