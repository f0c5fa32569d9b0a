//! The end of every call: logged in the call's span (with its time, `millis`; health
//! checks and reflection at `debug`, see [`level`]), counted by method and code
//! (`missive_calls_total`) and timed (`missive_call_duration_seconds`, to the end of the
//! response: for `Subscribe`, the stream's life). The code is read where
//! gRPC puts it: in the headers of a trailers-only answer, else in the trailers at the end
//! of the body; a call dropped before its end (its handler or its body) is one the client
//! cancelled. Methods are labelled by name only when they exist, so that requests for
//! made-up paths cannot grow the label set. (Without `--metrics-listen` no recorder is
//! installed and the metrics cost nothing.)

use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use http_body::{Frame, SizeHint};
use prost::Message;
use tonic::{Code, Status, body::Body, codegen::Bytes};
use tower::{Layer, Service};

use tracing::{Level, Span};

use super::{grpc_code, log_call};
use crate::api::pb;

/// The label of a path that names no method.
const UNKNOWN_METHOD: &str = "unknown";

/// The services whose calls are routine, not work: health checks (a load balancer's, every
/// few seconds) and server reflection (tools reading the API).
const ROUTINE_SERVICES: [&str; 2] = ["/grpc.health.v1.Health/", "/grpc.reflection."];

/// The level of the line that logs a call's end: `warn` for what may be a bug, `debug` for
/// routine calls, so that they do not bury the calls that do work, and `info` for the rest.
pub fn level(method: &str, code: Code) -> Level {
    match code {
        Code::Unknown | Code::DataLoss => Level::WARN,
        _ if ROUTINE_SERVICES.iter().any(|service| method.starts_with(service)) => Level::DEBUG,
        _ => Level::INFO,
    }
}

/// Logs and meters the end of every call of the services it wraps.
#[derive(Debug, Clone)]
pub struct CallEndLayer {
    /// `/package.Service/Method` of every method served.
    methods: Arc<HashSet<String>>,
}

impl CallEndLayer {
    /// A layer that knows the methods of Missive, health and reflection.
    pub fn new() -> Self {
        let sets = [
            pb::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut methods = HashSet::new();
        for set in sets {
            let set = prost_types::FileDescriptorSet::decode(set).expect("the built-in descriptors decode");
            for file in set.file {
                for service in &file.service {
                    for method in &service.method {
                        methods.insert(format!("/{}.{}/{}", file.package(), service.name(), method.name()));
                    }
                }
            }
        }
        Self { methods: Arc::new(methods) }
    }
}

impl Default for CallEndLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for CallEndLayer {
    type Service = CallEnd<S>;

    fn layer(&self, inner: S) -> CallEnd<S> {
        CallEnd { inner, methods: Arc::clone(&self.methods) }
    }
}

/// The service [`CallEndLayer`] makes.
#[derive(Debug, Clone)]
pub struct CallEnd<S> {
    inner: S,
    methods: Arc<HashSet<String>>,
}

impl<S, B> Service<http::Request<B>> for CallEnd<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let method = if self.methods.contains(path) { path.to_owned() } else { UNKNOWN_METHOD.to_owned() };
        // The call's span: the trace layer outside has entered it for this call.
        let call = Call { method, start: Instant::now(), span: Span::current(), recorded: false };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if let Some(code) = grpc_code(response.headers()) {
                call.end(code);
                return Ok(response);
            }
            Ok(response.map(|body| Body::new(MeteredBody { inner: body, call: Some(call) })))
        })
    }
}

/// A call being metered: recorded once, when it ends, or as cancelled when it is dropped
/// before (the client left, or the connection closed, before the answer was complete).
struct Call {
    method: String,
    start: Instant,
    span: Span,
    recorded: bool,
}

impl Call {
    fn end(mut self, code: Code) {
        self.record(code);
    }

    fn record(&mut self, code: Code) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let elapsed = self.start.elapsed();
        // Microseconds as milliseconds, without binary-fraction noise in the log.
        self.span.record("millis", elapsed.as_micros() as f64 / 1000.0);
        self.span.in_scope(|| log_call(code, level(&self.method, code)));
        metrics::histogram!("missive_call_duration_seconds", "method" => self.method.clone())
            .record(elapsed.as_secs_f64());
        metrics::counter!("missive_calls_total", "method" => self.method.clone(), "code" => code_name(code))
            .increment(1);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.record(Code::Cancelled);
    }
}

/// A response body that ends its call's metering when it ends.
struct MeteredBody {
    inner: Body,
    /// Until the call is recorded.
    call: Option<Call>,
}

impl MeteredBody {
    fn end(&mut self, code: Code) {
        if let Some(call) = self.call.take() {
            call.end(code);
        }
    }
}

impl http_body::Body for MeteredBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_code) {
                    self.end(code);
                }
            }
            Poll::Ready(Some(Err(status))) => self.end(status.code()),
            Poll::Ready(None) => self.end(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A code as gRPC's own libraries name it in metrics (`NotFound`).
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_checks_and_reflection_log_at_debug_and_other_calls_at_info() {
        for method in [
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            for code in [Code::Ok, Code::Cancelled, Code::NotFound, Code::Unavailable] {
                assert_eq!(level(method, code), Level::DEBUG, "{method} {code:?}");
            }
        }
        for method in ["/missive.v1.MessageService/SendMessage", "/missive.v1.EventService/Subscribe", UNKNOWN_METHOD] {
            for code in [Code::Ok, Code::Cancelled, Code::NotFound, Code::Unavailable] {
                assert_eq!(level(method, code), Level::INFO, "{method} {code:?}");
            }
        }
    }

    #[test]
    fn what_may_be_a_bug_warns_whatever_the_service() {
        for method in ["/grpc.health.v1.Health/Check", "/missive.v1.MessageService/SendMessage"] {
            assert_eq!(level(method, Code::Unknown), Level::WARN);
            assert_eq!(level(method, Code::DataLoss), Level::WARN);
        }
    }
}
