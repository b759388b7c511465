//! `serve --metrics-listen`: the replica's metrics in the Prometheus text
//! format at `http://ADDR/metrics`, on a listener of its own (off the MCP
//! path, never behind its authentication: bind it where only the
//! scraper reaches).
//!
//! The counters and histograms come from the task layer and the store
//! (the `metrics` facade); the gauges of this replica's state are read
//! at each scrape.

use std::convert::Infallible;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use pmcp_tasks_mcp::TaskService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Installs the process's metrics recorder.
pub(crate) fn install() -> Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets(&pmcp_tasks_mcp::SECONDS_BUCKETS)
        .context("metric buckets")?
        .install_recorder()
        .context("installing the metrics recorder")
}

/// Serves `/metrics` on `listener` until `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    service: TaskService,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a metrics connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (handle, service) = (handle.clone(), service.clone());
        tokio::spawn(async move {
            let answer = hyper::service::service_fn(move |request: Request<_>| {
                let response = if request.uri().path() == "/metrics" {
                    record_gauges(&service);
                    Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(Full::new(Bytes::from(handle.render())))
                } else {
                    Response::builder()
                        .status(404)
                        .body(Full::new(Bytes::from_static(
                            b"the metrics are at /metrics\n",
                        )))
                };
                let response = response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), answer)
                .await;
        });
    }
}

/// This replica's state now: tasks its workers run, tasks somebody waits
/// on (open `tasks/result` calls and workers), component instances live
/// and idle.
fn record_gauges(service: &TaskService) {
    metrics::gauge!("pmcp_tasks_running_tasks").set(service.running_tasks() as f64);
    metrics::gauge!("pmcp_tasks_waiting_tasks").set(service.waiting_tasks() as f64);
    let instances = service.host().instances();
    metrics::gauge!("pmcp_tasks_instances", "state" => "live").set(instances.live as f64);
    metrics::gauge!("pmcp_tasks_instances", "state" => "idle").set(instances.idle as f64);
}
