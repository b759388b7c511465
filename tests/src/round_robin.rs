//! A round-robin HTTP proxy on a free loopback port: every request (not
//! every connection) goes to the next upstream, so a client's consecutive
//! calls land on different replicas, as behind a stateless load balancer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running proxy; stops when dropped.
pub struct RoundRobin {
    /// Its MCP endpoint (`http://127.0.0.1:PORT/mcp`).
    pub url: String,
    task: JoinHandle<()>,
    /// Requests forwarded to each upstream, in upstream order.
    pub forwarded: Arc<Vec<AtomicUsize>>,
}

impl RoundRobin {
    /// Proxies to `upstreams` (`host:port` each) in turn, each request on
    /// a new upstream connection (so a replica that dies fails only the
    /// requests sent to it after).
    pub async fn start(upstreams: Vec<String>) -> RoundRobin {
        Self::start_forwarding(upstreams, Forwarding::Fresh).await
    }

    /// Like [`RoundRobin::start`], keeping idle upstream connections for
    /// the next request, as a production load balancer does (what the
    /// benchmarks measure behind).
    pub async fn pooled(upstreams: Vec<String>) -> RoundRobin {
        let pool = Client::builder(TokioExecutor::new()).build_http();
        Self::start_forwarding(upstreams, Forwarding::Pooled(Arc::new(pool))).await
    }

    async fn start_forwarding(upstreams: Vec<String>, forwarding: Forwarding) -> RoundRobin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
        let upstreams = Arc::new(upstreams);
        let forwarded: Arc<Vec<AtomicUsize>> =
            Arc::new(upstreams.iter().map(|_| AtomicUsize::new(0)).collect());
        let next = Arc::new(AtomicUsize::new(0));
        let counts = forwarded.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (upstreams, next, counts) = (upstreams.clone(), next.clone(), counts.clone());
                let forwarding = forwarding.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let turn = next.fetch_add(1, Ordering::Relaxed) % upstreams.len();
                        counts[turn].fetch_add(1, Ordering::Relaxed);
                        relay(forwarding.clone(), upstreams[turn].clone(), request)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RoundRobin {
            url,
            task,
            forwarded,
        }
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a request could not be forwarded.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How requests reach an upstream.
#[derive(Clone)]
enum Forwarding {
    /// On a connection of their own.
    Fresh,
    /// On a kept-alive connection of the pool.
    Pooled(Arc<Client<HttpConnector, Incoming>>),
}

/// Sends `request` to `upstream` as `forwarding` says.
async fn relay(
    forwarding: Forwarding,
    upstream: String,
    request: Request<Incoming>,
) -> Result<Response<Incoming>, BoxError> {
    match forwarding {
        Forwarding::Fresh => Ok(forward(upstream, request).await?),
        Forwarding::Pooled(pool) => Ok(forward_pooled(&pool, &upstream, request).await?),
    }
}

/// Sends `request` to `upstream` on a pooled connection and streams the
/// response back.
async fn forward_pooled(
    pool: &Client<HttpConnector, Incoming>,
    upstream: &str,
    mut request: Request<Incoming>,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = format!("http://{upstream}{path}")
        .parse()
        .expect("an upstream URI");
    pool.request(request).await
}

/// Sends `request` to `upstream` on a connection of its own and streams
/// the response back (server-sent events included).
async fn forward(
    upstream: String,
    request: Request<Incoming>,
) -> Result<Response<Incoming>, hyper::Error> {
    let stream = match TcpStream::connect(&upstream).await {
        Ok(stream) => stream,
        Err(e) => panic!("upstream {upstream} unreachable: {e}"),
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    sender.send_request(request).await
}
