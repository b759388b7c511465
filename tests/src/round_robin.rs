//! A round-robin HTTP proxy on a free loopback port: every request (not
//! every connection) goes to the next upstream, so a client's consecutive
//! calls land on different replicas, as behind a stateless load balancer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
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
    /// Proxies to `upstreams` (`host:port` each) in turn.
    pub async fn start(upstreams: Vec<String>) -> RoundRobin {
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
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let turn = next.fetch_add(1, Ordering::Relaxed) % upstreams.len();
                        counts[turn].fetch_add(1, Ordering::Relaxed);
                        forward(upstreams[turn].clone(), request)
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
