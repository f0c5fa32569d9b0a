//! Logging: the tracing subscriber, built once at start-up (`RUST_LOG` overrides the
//! default filter), and the line each gRPC call logs when it ends.

use std::{io::IsTerminal, time::Duration};

use tonic::{Code, codegen::http::HeaderMap};
use tracing::Span;
use tracing_subscriber::{EnvFilter, fmt};

/// Logs to stderr, so that stdout stays for command output (such as a created key); in
/// colour only on a terminal.
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The gRPC status in `headers` (trailers, or the headers of a trailers-only response).
fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    headers.get("grpc-status").map(|value| Code::from_bytes(value.as_bytes()))
}

/// Records how long the call took to answer in its span, and logs it now when the
/// answer is only headers (an error status, before any message).
pub fn on_response(headers: &HeaderMap, latency: Duration, span: &Span) {
    span.record("millis", latency.as_secs_f64() * 1000.0);
    if let Some(code) = grpc_code(headers) {
        log_call(code);
    }
}

/// Logs a call whose response stream ended, with the status of its trailers.
pub fn on_end_of_stream(trailers: Option<&HeaderMap>) {
    log_call(trailers.and_then(grpc_code).unwrap_or(Code::Unknown));
}

fn log_call(code: Code) {
    match code {
        Code::Ok => tracing::info!(status = ?code, "call ok"),
        Code::Internal | Code::Unknown | Code::Unavailable | Code::DataLoss => {
            tracing::warn!(status = ?code, "call failed")
        }
        _ => tracing::info!(status = ?code, "call refused"),
    }
}
