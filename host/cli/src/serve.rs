//! `pmcp-tasks serve`: an MCP server with the demonstration tools, its
//! tool calls running as durable tasks, plus the store's upkeep; and the
//! serving `pmcp-tasks gateway` shares, with its upstream's tools.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use pmcp_tasks_host::{ReapReport, RetryPolicy, TaskHost};
use pmcp_tasks_mcp::{DurableTaskServer, ServiceConfig, TaskService, TaskTools};
use pmcp_tasks_mcp::{
    HostPolicy, HttpOptions, JwksSource, JwtVerifier, OriginPolicy, ProtectedResource, SessionSeal,
    StaticTokens, TokenDigest, TrustedHeader, LOOPBACK_ORIGINS,
};
use tokio_util::sync::CancellationToken;
use url::Url;

/// How to serve.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Serve Streamable HTTP at http://ADDR/mcp (a loopback address unless
    /// you put authentication in front); without it, serve stdio.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The task owner of stdio, and over HTTP of every caller when no
    /// authentication option is given (allowed on loopback addresses only).
    #[arg(long, default_value = "anonymous")]
    identity: String,
    #[command(flatten)]
    auth: AuthArgs,
    /// A browser origin allowed to call (`scheme://host[:port]`, port `*` for
    /// any); repeat for more. Default: pages on loopback. A request with
    /// any other Origin gets 403; one without Origin is not from a page.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// A host name (or `name:port`) the server answers to besides the
    /// loopback names and --resource's host; repeat for more. Any other
    /// `Host` gets 403 (DNS rebinding).
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// How long a 2025-11-25 session lives from its `initialize`, in
    /// seconds; then every replica answers its requests 404 and the client
    /// opens a new one. Sessions cannot be ended early (`DELETE` answers
    /// 405).
    #[arg(long, default_value_t = 24 * 3600)]
    session_max_age_s: u64,
    /// HTTP connections served at once (more wait in the listen backlog).
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// The longest a connection may take to send a request's headers, and
    /// may stay idle between requests, in ms.
    #[arg(long, default_value_t = 15_000)]
    header_timeout_ms: u64,
    /// The longest a request body may take to arrive, in ms.
    #[arg(long, default_value_t = 30_000)]
    body_timeout_ms: u64,
    /// The largest HTTP request body, in bytes.
    #[arg(long, default_value_t = pmcp_tasks_mcp::MAX_MESSAGE_BYTES)]
    max_body_bytes: usize,
    /// How long a cancelled task's tool may run on to return its own
    /// outcome before it is stopped, in ms.
    #[arg(long, default_value_t = 5_000)]
    cancel_grace_ms: u64,
    /// On SIGTERM or Ctrl-C: how long running tools get to finish before
    /// their tasks end `failed` ("the replica shut down"), in ms.
    #[arg(long, default_value_t = 10_000)]
    shutdown_grace_ms: u64,
    /// Serve this replica's metrics (Prometheus text) at
    /// http://ADDR/metrics, on a listener of its own.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// This replica's name (lease holders are NAME/N).
    #[arg(long, default_value = "replica")]
    replica: String,
    /// A worker's lease, in ms: a task whose worker is gone this long is failed.
    #[arg(long, default_value_t = 30_000)]
    lease_ms: u64,
    /// How often this replica reaps lost workers and removes expired tasks, in ms.
    #[arg(long, default_value_t = 5_000)]
    upkeep_ms: u64,
    /// A tool safe to run twice (idempotent, or resuming from its
    /// checkpoint): its task runs again on another replica when its
    /// replica is lost (up to --retry-attempts runs) or hands it off at
    /// shutdown; repeat for more tools. Every other tool's task runs at
    /// most once. (The gateway also calls it again when the upstream was
    /// lost mid-call.)
    #[arg(long = "retry-tool", value_name = "NAME")]
    pub(crate) retry_tools: Vec<String>,
    /// Runs a retryable task may have after lost replicas, the first included.
    #[arg(long, default_value_t = 3)]
    retry_attempts: u32,
    /// Wait before a retryable task whose replica was lost runs again, in
    /// ms (doubled for each later attempt, up to 30 s; jittered).
    #[arg(long, default_value_t = 1_000)]
    retry_backoff_ms: u64,
    /// On SIGTERM: how long a retryable task's tool has to checkpoint
    /// before its task is handed off to another replica, in ms.
    #[arg(long, default_value_t = 500)]
    handoff_grace_ms: u64,
    /// How often this replica looks for tasks to claim (handed off, or
    /// whose replica was lost), in ms.
    #[arg(long, default_value_t = 250)]
    claim_interval_ms: u64,
    /// Task workers this replica runs at most: a task call beyond them
    /// waits in the queue (`working`, "queued") for any replica with room,
    /// owners served in turn.
    #[arg(long, default_value_t = 256)]
    max_running_tasks: usize,
    /// Serve no MCP at all (neither HTTP nor stdio): only claim and run
    /// queued tasks (and do the store's upkeep), as a worker pool that
    /// scales apart from the replicas that take the calls.
    #[arg(long, conflicts_with = "listen")]
    worker_only: bool,
}

/// Who an HTTP caller is: at most one of the verifiers.
#[derive(Args, Debug)]
#[group(multiple = false)]
struct AuthMode {
    /// Verify OAuth access tokens (JWT) against this JWKS: a file, or an
    /// https:// URL (fetched and cached, fetched again for an unknown key).
    /// Needs --auth-issuer. The owner is the token's issuer and subject.
    #[arg(long, value_name = "FILE|URL", requires = "auth_issuer")]
    auth_jwks: Option<String>,
    /// Accept the bearer tokens of this file, one `TOKEN SUBJECT` per line
    /// (`#` comments); the owner is the subject.
    #[arg(long, value_name = "FILE")]
    auth_token_file: Option<std::path::PathBuf>,
    /// Take the owner from this header, set by a reverse proxy that
    /// verified the caller (only when every request passes that proxy).
    #[arg(long, value_name = "HEADER")]
    auth_trusted_header: Option<String>,
    /// Development only, on loopback: every bearer token is an owner of its
    /// own (a keyed digest of it), verified by nobody.
    #[arg(long)]
    insecure_token_owners: bool,
}

impl AuthMode {
    /// Whether callers are verified (the development modes verify nobody).
    fn verifies_callers(&self) -> bool {
        self.auth_jwks.is_some()
            || self.auth_token_file.is_some()
            || self.auth_trusted_header.is_some()
    }
}

/// Refuses, before binding it, an address that is not loopback: without
/// authentication every caller there would be served as `--identity`.
async fn refuse_beyond_loopback(address: &str) -> Result<()> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(address)
        .await
        .with_context(|| format!("resolving {address}"))?
        .collect();
    if let Some(open) = resolved.iter().find(|a| !a.ip().is_loopback()) {
        bail!(
            "refusing to serve {open} without authentication: give --auth-jwks, \
             --auth-token-file or --auth-trusted-header to listen on an address other than loopback"
        );
    }
    Ok(())
}

/// Authentication options of `serve` over HTTP.
#[derive(Args, Debug)]
struct AuthArgs {
    #[command(flatten)]
    mode: AuthMode,
    /// The issuer (`iss`) of accepted access tokens.
    #[arg(long, value_name = "URL")]
    auth_issuer: Option<String>,
    /// An audience (`aud`) accepted tokens may name; repeat for more.
    /// Default: this server's resource URI (--resource).
    #[arg(long = "auth-audience", value_name = "AUD")]
    auth_audiences: Vec<String>,
    /// A JWS algorithm allowed; repeat for more. Default: every asymmetric
    /// one (RS*, PS*, ES256, ES384, EdDSA); HMAC and `none` never.
    #[arg(long = "auth-algorithm", value_name = "ALG")]
    auth_algorithms: Vec<String>,
    /// A scope every token must carry (403 otherwise); repeat for more.
    #[arg(long = "auth-required-scope", value_name = "SCOPE")]
    auth_required_scopes: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[arg(long, default_value_t = 30)]
    auth_leeway_s: u64,
    /// The least time between two reads of the JWKS (for a token naming
    /// an unknown key, a URL whose caching says not to keep it, a read
    /// that failed), in ms.
    #[arg(long, default_value_t = 10_000)]
    auth_jwks_refresh_ms: u64,
    /// The longest the JWKS is used without reading it again, in seconds:
    /// a URL's keys are kept as long as its HTTP caching says, up to this,
    /// so a key the issuer removes is refused within it (a file is checked
    /// for changes every second).
    #[arg(long, default_value_t = 300)]
    auth_jwks_max_age_s: u64,
    /// Also accept access tokens whose JWT `typ` is `JWT` or absent, for
    /// authorization servers that do not type them `at+jwt` (RFC 9068)
    /// as Microsoft Entra ID and Keycloak do; an ID token of the same
    /// issuer and audience then passes as an access token too.
    #[arg(long)]
    auth_untyped_tokens: bool,
    /// This server's resource URI (the MCP endpoint's public URL), named
    /// in its OAuth metadata and the default token audience. Default:
    /// http://ADDR/mcp of --listen.
    #[arg(long, value_name = "URI")]
    resource: Option<String>,
    /// An authorization server listed in the metadata; repeat for more.
    /// Default: --auth-issuer.
    #[arg(long = "authorization-server", value_name = "URL")]
    authorization_servers: Vec<String>,
}

/// Serves until stdin closes (stdio) or the process is told to stop
/// (SIGTERM or Ctrl-C). Then it stops cleanly: no new connection or task,
/// in-flight requests answered, running tools given
/// `--shutdown-grace-ms` to finish, and the tasks of those still running
/// failed with "the replica shut down" rather than left `working` until
/// their leases lapse. `secret` is the deployment's secret (the cursor
/// secret), if one was given. The server offers `tools`.
pub(crate) async fn run<T: TaskTools>(
    host: TaskHost,
    args: ServeArgs,
    secret: Option<&[u8]>,
    tools: Arc<T>,
) -> Result<()> {
    let mut config = ServiceConfig::default();
    config.replica = args.replica.clone();
    config.lease = Duration::from_millis(args.lease_ms);
    config.cancel_grace = Duration::from_millis(args.cancel_grace_ms);
    config.handoff_grace = Duration::from_millis(args.handoff_grace_ms);
    config.claim_interval = Duration::from_millis(args.claim_interval_ms.max(1));
    config.max_running_tasks = args.max_running_tasks;
    let service = TaskService::new(host.clone(), config);
    let mut server = DurableTaskServer::new(service.clone(), tools, args.identity.clone());
    let policy = RetryPolicy {
        max_attempts: args.retry_attempts.max(1),
        backoff_ms: args.retry_backoff_ms,
        backoff_max_ms: args.retry_backoff_ms.max(30_000),
    };
    for name in &args.retry_tools {
        server = server.with_retry_policy(name.clone(), policy);
    }
    let shutdown = CancellationToken::new();
    let queue = server.clone();
    let stop_queue = shutdown.clone();
    tokio::spawn(async move { queue.serve_queue(stop_queue).await });
    tokio::spawn(upkeep(
        host,
        Duration::from_millis(args.upkeep_ms),
        shutdown.clone(),
    ));
    if let Some(address) = &args.metrics_listen {
        let handle = crate::metrics::install()?;
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding {address}"))?;
        crate::announce(&format!(
            "serving metrics at http://{}/metrics",
            listener.local_addr()?
        ));
        tokio::spawn(crate::metrics::serve(
            listener,
            handle,
            service.clone(),
            shutdown.clone(),
        ));
    }
    let grace = Duration::from_millis(args.shutdown_grace_ms);
    let mut serving = match args.listen.clone() {
        Some(address) => {
            if !args.auth.mode.verifies_callers() {
                refuse_beyond_loopback(&address).await?;
            }
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .with_context(|| format!("binding {address}"))?;
            let local = listener.local_addr()?;
            let options = http_options(&args, secret, local).await?;
            crate::announce(&format!("serving MCP at http://{local}/mcp"));
            let stop = shutdown.clone();
            tokio::spawn(async move {
                pmcp_tasks_mcp::serve_http(listener, server, options, stop)
                    .await
                    .context("serving HTTP")
            })
        }
        None if args.worker_only => {
            crate::announce("working queued tasks only (no MCP served)");
            let stop = shutdown.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                Ok(())
            })
        }
        None => tokio::spawn(async move {
            pmcp_tasks_mcp::serve_lines(server, tokio::io::stdin(), tokio::io::stdout())
                .await
                .context("serving stdio")
        }),
    };
    let served = tokio::select! {
        served = &mut serving => Some(served),
        () = stop_signal() => None,
    };
    crate::announce(&format!(
        "stopping: running tools get {} ms to finish",
        grace.as_millis()
    ));
    shutdown.cancel();
    let (served, report) = match served {
        Some(served) => (served, service.shutdown(grace).await),
        None => tokio::join!(serving, service.shutdown(grace)),
    };
    crate::announce(&format!(
        "stopped ({} tasks finished in the grace period, {} handed off, {} failed as shut down)",
        report.finished.saturating_sub(report.handed_off),
        report.handed_off,
        report.abandoned
    ));
    served.context("the server task")?
}

/// Resolves on SIGTERM (how orchestrators stop a process) or Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "SIGTERM cannot be caught; Ctrl-C still stops"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The HTTP guards from the command line.
async fn http_options(
    args: &ServeArgs,
    secret: Option<&[u8]>,
    local: SocketAddr,
) -> Result<HttpOptions> {
    let origins = if args.allow_origins.is_empty() {
        OriginPolicy::new(LOOPBACK_ORIGINS)
    } else {
        OriginPolicy::new(&args.allow_origins)
    }?;
    let mut hosts = HostPolicy::default();
    for host in &args.allow_hosts {
        hosts = hosts.with(host);
    }
    if let Some(host) = args
        .auth
        .resource
        .as_deref()
        .and_then(|r| Url::parse(r).ok())
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        hosts = hosts.with(&host);
    }
    let mut options = HttpOptions::default()
        .with_origins(origins)
        .with_hosts(hosts);
    let seal = match secret {
        Some(secret) => SessionSeal::new(secret),
        None => {
            tracing::warn!(
                "no --cursor-secret: 2025-11-25 sessions are sealed by a random key, so only \
                 this replica serves them"
            );
            SessionSeal::random()
        }
    };
    options =
        options.with_session_seal(seal.with_max_age(Duration::from_secs(args.session_max_age_s)));
    let auth = &args.auth;
    let resource = match &auth.resource {
        Some(uri) => Url::parse(uri).with_context(|| format!("--resource {uri}"))?,
        None => Url::parse(&format!("http://{local}/mcp"))?,
    };
    let mode = &auth.mode;
    if let Some(jwks) = &mode.auth_jwks {
        let issuer = auth.auth_issuer.clone().unwrap_or_default();
        let audiences = if auth.auth_audiences.is_empty() {
            vec![resource.to_string()]
        } else {
            auth.auth_audiences.clone()
        };
        warn_unless_audience(&resource, &audiences);
        let mut verifier = JwtVerifier::new(JwksSource::parse(jwks)?, &issuer, "")
            .with_audiences(audiences)?
            .with_leeway(Duration::from_secs(auth.auth_leeway_s))
            .with_required_scopes(auth.auth_required_scopes.clone())
            .with_untyped_tokens(auth.auth_untyped_tokens)
            .with_key_refresh(
                Duration::from_millis(auth.auth_jwks_refresh_ms),
                Duration::from_secs(auth.auth_jwks_max_age_s),
            );
        if !auth.auth_algorithms.is_empty() {
            verifier = verifier.with_algorithms(&auth.auth_algorithms)?;
        }
        verifier
            .load_keys()
            .await
            .with_context(|| format!("reading the key set {jwks}"))?;
        let servers = if auth.authorization_servers.is_empty() {
            vec![issuer]
        } else {
            auth.authorization_servers.clone()
        };
        options = options
            .with_authenticate(Arc::new(verifier))
            .with_protected_resource(
                ProtectedResource::new(resource)
                    .with_authorization_servers(servers)
                    .with_scopes_supported(auth.auth_required_scopes.clone()),
            );
    } else if let Some(file) = &mode.auth_token_file {
        options = options
            .with_authenticate(Arc::new(StaticTokens::load(file)?))
            .with_protected_resource(ProtectedResource::new(resource));
    } else if let Some(header) = &mode.auth_trusted_header {
        let trusted = TrustedHeader::new(header)
            .with_context(|| format!("--auth-trusted-header {header}"))?;
        options = options.with_authenticate(Arc::new(trusted));
    } else if mode.insecure_token_owners {
        let digest = match secret {
            Some(secret) => TokenDigest::new(secret),
            None => {
                tracing::warn!(
                    "no --cursor-secret: bearer tokens are keyed by a random secret, so their \
                     tasks are visible on this replica only and only until it exits"
                );
                TokenDigest::random()
            }
        };
        tracing::warn!(
            "--insecure-token-owners: every bearer token is an owner, verified by nobody \
             (development only)"
        );
        options = options.with_authenticate(Arc::new(digest));
    }
    Ok(options
        .with_max_connections(args.max_connections)
        .with_header_timeout(Duration::from_millis(args.header_timeout_ms))
        .with_body_timeout(Duration::from_millis(args.body_timeout_ms))
        .with_max_body_bytes(args.max_body_bytes))
}

/// Warns when the resource the OAuth metadata names is not an audience
/// tokens may carry: a client that follows the metadata asks for tokens
/// for that resource (RFC 8707), and every one of them would be refused.
fn warn_unless_audience(resource: &Url, audiences: &[String]) {
    let advertised = resource.as_str();
    if !audiences.iter().any(|aud| same_resource(aud, advertised)) {
        tracing::warn!(
            resource = advertised,
            audiences = ?audiences,
            "the protected resource metadata names {advertised}, which no --auth-audience \
             accepts: clients that ask their authorization server for a token for it will be \
             refused. Give --resource with the URL clients use, or add it as an --auth-audience"
        );
    }
}

/// Whether audience `aud` names `resource` (a URL as parsed, so
/// `http://h:80/mcp` and `http://h/mcp` agree).
fn same_resource(aud: &str, resource: &str) -> bool {
    aud == resource || Url::parse(aud).is_ok_and(|url| url.as_str() == resource)
}

/// Every `every`: fail the tasks whose worker was lost (on any replica)
/// and remove expired records, a bounded batch each.
async fn upkeep(host: TaskHost, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match host.reap_lost_workers(1_000).await {
            Ok(report) if report == ReapReport::default() => {}
            Ok(report) => {
                metrics::counter!("pmcp_tasks_tasks_reaped_total").increment(report.failed);
                metrics::counter!("pmcp_tasks_retries_total", "reason" => "replica_lost")
                    .increment(report.requeued);
                tracing::info!(
                    failed = report.failed,
                    requeued = report.requeued,
                    "reaped tasks of lost workers"
                );
            }
            Err(e) => tracing::warn!(error = %e, "reaping lost workers failed"),
        }
        match host.cleanup_expired(1_000).await {
            Ok(n) => metrics::counter!("pmcp_tasks_expired_removed_total").increment(n),
            Err(e) => tracing::warn!(error = %e, "removing expired tasks failed"),
        }
    }
}
