//! `[telemetry]`: OpenTelemetry traces over OTLP/HTTP (protobuf), off unless an endpoint is
//! configured (or `OTEL_EXPORTER_OTLP_ENDPOINT` is set). Each call is one trace: a `call` span,
//! a `turn` span per agent turn and a span per stage under it (see
//! `callfunnel_media::engine::trace`). Spans leave in batches from a thread of their own: an
//! unreachable collector costs a call nothing (the batch queue drops what it cannot hold).

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL (`http://otel-collector:4318`); spans go to
    /// `{endpoint}/v1/traces`. Unset: `OTEL_EXPORTER_OTLP_ENDPOINT`, else no traces.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Share of calls traced, 0.0 to 1.0, decided per call (all of a call's turns or none).
    pub sample_ratio: f64,
    /// Longest wait between two exports.
    pub export_interval_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { otlp_endpoint: None, service_name: "callfunnel".into(), sample_ratio: 1.0, export_interval_ms: 2000 }
    }
}

impl TelemetryConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(e) = &self.otlp_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            anyhow::bail!("invalid [telemetry] otlp_endpoint `{e}`: expected an http:// or https:// URL (OTLP/HTTP, port 4318)");
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            anyhow::bail!("invalid [telemetry] sample_ratio {}: use 0.0 to 1.0", self.sample_ratio);
        }
        if self.service_name.is_empty() {
            anyhow::bail!("invalid [telemetry] service_name: empty");
        }
        if !(100..=60_000).contains(&self.export_interval_ms) {
            anyhow::bail!("invalid [telemetry] export_interval_ms {}: use 100 to 60000", self.export_interval_ms);
        }
        Ok(())
    }

    /// The traces URL, if tracing is on.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.clone().or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok()).filter(|e| !e.is_empty())?;
        let base = base.trim_end_matches('/');
        Some(if base.ends_with("/v1/traces") { base.to_string() } else { format!("{base}/v1/traces") })
    }
}

/// The installed tracer provider; [`Telemetry::shutdown`] exports what is left.
pub struct Telemetry {
    provider: SdkTracerProvider,
    pub url: String,
}

impl Telemetry {
    /// Installs the global tracer provider when tracing is configured; `None` when it is off.
    pub fn install(cfg: &TelemetryConfig, node_id: &str) -> anyhow::Result<Option<Telemetry>> {
        cfg.validate()?;
        let Some(url) = cfg.traces_url() else { return Ok(None) };
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .with_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| anyhow::anyhow!("[telemetry] cannot build the OTLP exporter for {url}: {e}"))?;
        let batch = BatchConfigBuilder::default().with_scheduled_delay(Duration::from_millis(cfg.export_interval_ms)).with_max_queue_size(8192).build();
        let processor = BatchSpanProcessor::builder(exporter).with_batch_config(batch).build();
        let resource = Resource::builder()
            .with_service_name(cfg.service_name.clone())
            .with_attributes([KeyValue::new("service.instance.id", node_id.to_string()), KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))])
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::TraceIdRatioBased(cfg.sample_ratio))
            .with_resource(resource)
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        tracing::info!(url, sample_ratio = cfg.sample_ratio, "OTLP traces on");
        Ok(Some(Telemetry { provider, url }))
    }

    /// Exports the spans still queued (used before exit and by tests).
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "OTLP traces not flushed");
        }
    }

    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OTLP exporter did not shut down cleanly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_limits() {
        let mut c = TelemetryConfig { otlp_endpoint: Some("http://collector:4318/".into()), ..Default::default() };
        assert_eq!(c.traces_url().as_deref(), Some("http://collector:4318/v1/traces"));
        c.otlp_endpoint = Some("https://c.example/otlp/v1/traces".into());
        assert_eq!(c.traces_url().as_deref(), Some("https://c.example/otlp/v1/traces"));
        c.otlp_endpoint = Some("collector:4317".into());
        assert!(c.validate().unwrap_err().to_string().contains("http://"));
        c = TelemetryConfig { sample_ratio: 1.5, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("sample_ratio"));
    }
}
