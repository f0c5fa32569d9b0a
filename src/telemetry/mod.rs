//! Logging and the calls' record: the tracing subscriber, built once at start-up
//! (`RUST_LOG` overrides the default filter), and the trace of each gRPC call: one span with
//! the method, the caller and account (recorded by `auth` once known) and the call's time,
//! and one line when the call ends, with its status, also when the client went away first
//! ([`calls`], which counts it for the metrics too). Causes of internal errors are logged
//! once, by `api::status`, not again here.

pub mod calls;

use std::io::IsTerminal;

use tonic::{
    Code,
    codegen::http::{HeaderMap, Request},
};
use tower_http::{
    classify::{GrpcErrorsAsFailures, SharedClassifier},
    trace::{MakeSpan, TraceLayer},
};
use tracing::{Level, Span};
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

/// The per-call trace layer.
pub type CallTrace = TraceLayer<SharedClassifier<GrpcErrorsAsFailures>, CallSpan, (), (), (), (), ()>;

/// The per-call trace layer: a [`CallSpan`] around each call (its end is logged by
/// [`calls`], which sees calls that never end on their own).
pub fn call_trace() -> CallTrace {
    TraceLayer::new_for_grpc()
        .make_span_with(CallSpan)
        .on_request(())
        .on_response(())
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// Opens one span per call.
#[derive(Debug, Clone, Copy)]
pub struct CallSpan;

impl<B> MakeSpan<B> for CallSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        tracing::info_span!(
            "rpc",
            method = %request.uri().path(),
            caller = tracing::field::Empty,
            account = tracing::field::Empty,
            millis = tracing::field::Empty,
        )
    }
}

/// An error with its causes, for a person to read ("transport error: … : invalid peer
/// certificate: UnknownIssuer"): libraries' top-level messages alone are often empty. A
/// cause that the text already ends with is said once: some errors repeat their cause's
/// message in theirs, and some layers wrap an error in another with the same words.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// The gRPC status in `headers` (trailers, or the headers of a trailers-only response).
pub fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    headers.get("grpc-status").map(|value| Code::from_bytes(value.as_bytes()))
}

/// The line a call's end logs, in its span, at `level` (see [`calls::level`]).
fn log_call(code: Code, level: Level) {
    let outcome = match code {
        Code::Ok => "call ok",
        Code::Cancelled => "call cancelled",
        // Their causes were logged where the status was made (`api::status`).
        Code::Internal | Code::Unavailable | Code::Unknown | Code::DataLoss => "call failed",
        _ => "call refused",
    };
    // tracing's macros take a level known when they are compiled.
    match level {
        Level::WARN => tracing::warn!(status = ?code, "{outcome}"),
        Level::INFO => tracing::info!(status = ?code, "{outcome}"),
        _ => tracing::debug!(status = ?code, "{outcome}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and, perhaps, a cause.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|cause| cause as _)
        }
    }

    fn chain(messages: &[&'static str]) -> Layer {
        let (last, rest) = messages.split_last().unwrap();
        rest.iter().rev().fold(Layer(last, None), |cause, message| Layer(message, Some(Box::new(cause))))
    }

    #[test]
    fn an_error_chain_names_each_cause_once() {
        let refused = chain(&["transport error", "tcp connect error", "tcp connect error", "Connection refused"]);
        assert_eq!(error_chain(&refused), "transport error: tcp connect error: Connection refused");
        let certificate = chain(&[
            "transport error",
            "invalid peer certificate: CaUsedAsEndEntity",
            "invalid peer certificate: CaUsedAsEndEntity",
        ]);
        assert_eq!(error_chain(&certificate), "transport error: invalid peer certificate: CaUsedAsEndEntity");
        let repeats_its_cause = chain(&["could not connect: refused", "refused"]);
        assert_eq!(error_chain(&repeats_its_cause), "could not connect: refused");
        assert_eq!(error_chain(&chain(&["a", "b", "c"])), "a: b: c");
    }
}
