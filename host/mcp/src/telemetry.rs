//! What an operator's tools read: the buckets of the duration histograms,
//! and (the `otlp` feature) the export of the request, worker and
//! store-call spans over OTLP/HTTP, for an application that has no OpenTelemetry pipeline
//! of its own; one that has adds `tracing_opentelemetry`'s layer with its
//! own tracer and [`span_filter`], and the spans parent and link the same.
//!
//! Spans are batched on a thread of the exporter's own and sent as
//! protobuf (OTLP's default encoding) to
//! `{endpoint}/v1/traces`. [`OtlpTracing::start`] and
//! [`OtlpTraces::shutdown`] block: call them outside an async context (or
//! in `tokio::task::spawn_blocking`).

#[cfg(feature = "otlp")]
pub use otlp::*;

/// Bucket bounds (seconds) for the duration histograms
/// (`pmcp_tasks_store_call_duration_seconds`): 10 µs to 10 s, finest
/// where a store call usually falls.
pub const SECONDS_BUCKETS: [f64; 13] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.01, 0.05, 0.25,
    1.0, 10.0,
];

#[cfg(feature = "otlp")]
mod otlp {
    use std::time::Duration;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::trace::{
        BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
    };
    use opentelemetry_sdk::Resource;
    use tracing::Subscriber;
    use tracing_subscriber::filter::{FilterFn, Filtered};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    use crate::trace::SPAN_TARGET;

    /// Why traces cannot be exported.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum TelemetryError {
        /// The exporter could not be built (a bad endpoint, say).
        #[error("the OTLP exporter could not be built")]
        Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
        /// Spans still queued could not be sent at shutdown.
        #[error("the last spans could not be exported")]
        Flush(#[source] opentelemetry_sdk::error::OTelSdkError),
    }

    /// Where and how spans are exported.
    #[derive(Debug, Clone)]
    #[non_exhaustive]
    pub struct OtlpTracing {
        endpoint: String,
        service_name: String,
        export_every: Duration,
        sample_ratio: f64,
    }

    impl OtlpTracing {
        /// Export to the OTLP/HTTP receiver at `endpoint` (its base URL, as
        /// `OTEL_EXPORTER_OTLP_ENDPOINT` gives it, for example
        /// `http://collector:4318`).
        pub fn new(endpoint: impl Into<String>) -> Self {
            OtlpTracing {
                endpoint: endpoint.into(),
                service_name: "pmcp-tasks".into(),
                export_every: Duration::from_secs(5),
                sample_ratio: 1.0,
            }
        }

        /// The `service.name` the spans carry (default `pmcp-tasks`).
        pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
            self.service_name = name.into();
            self
        }

        /// How long a span may wait in the batch before it is sent (default 5 s).
        pub fn with_export_interval(mut self, every: Duration) -> Self {
            self.export_every = every;
            self
        }

        /// The share of traces kept (0 to 1, default 1: all) for requests
        /// that bring no trace context; one that does follows its
        /// client's sampling decision, and a span's children follow it.
        pub fn with_sample_ratio(mut self, ratio: f64) -> Self {
            self.sample_ratio = ratio.clamp(0.0, 1.0);
            self
        }

        /// Starts the exporter (blocking; see the module docs).
        pub fn start(self) -> Result<OtlpTraces, TelemetryError> {
            let endpoint = format!("{}/v1/traces", self.endpoint.trim_end_matches('/'));
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(endpoint)
                .build()
                .map_err(TelemetryError::Exporter)?;
            let batch = BatchConfigBuilder::default()
                .with_scheduled_delay(self.export_every)
                .build();
            let processor = BatchSpanProcessor::builder(exporter)
                .with_batch_config(batch)
                .build();
            let sampler =
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(self.sample_ratio)));
            let provider = SdkTracerProvider::builder()
                .with_span_processor(processor)
                .with_sampler(sampler)
                .with_resource(
                    Resource::builder()
                        .with_service_name(self.service_name)
                        .build(),
                )
                .build();
            Ok(OtlpTraces { provider })
        }
    }

    /// A running exporter: its tracing layer, and the flush at the end.
    #[derive(Debug)]
    pub struct OtlpTraces {
        provider: SdkTracerProvider,
    }

    impl OtlpTraces {
        /// The layer that exports this crate's spans and the store's (see
        /// [`span_filter`]); add it to the application's subscriber.
        pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
        where
            S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
        {
            let tracer = self.provider.tracer("pmcp-tasks");
            // What each span records beyond its fields costs on every
            // poll (busy/idle time, the OpenTelemetry context entered) or
            // says nothing here (source location, thread): all off.
            let layer: Filtered<_, _, S> = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_tracked_inactivity(false)
                .with_context_activation(false)
                .with_location(false)
                .with_threads(false)
                .with_filter(span_filter());
            layer
        }

        /// Sends what is queued and stops (blocking; see the module docs).
        pub fn shutdown(self) -> Result<(), TelemetryError> {
            self.provider.shutdown().map_err(TelemetryError::Flush)
        }
    }

    /// What an OpenTelemetry layer should see of this project: the spans (not
    /// the log events) of the protocol layer (`mcp.request`,
    /// `pmcp_tasks.worker`) and of the host (`pmcp_tasks.call`, at debug level).
    pub fn span_filter() -> FilterFn<fn(&tracing::Metadata<'_>) -> bool> {
        FilterFn::new(is_exported)
    }

    fn is_exported(meta: &tracing::Metadata<'_>) -> bool {
        meta.is_span()
            && (meta.target() == SPAN_TARGET || meta.target().starts_with("pmcp_tasks_host"))
    }
}
