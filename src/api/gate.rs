//! The gate every Missive call passes before its body is read: the caller's key is
//! checked, and the key is held to its limits (calls per second, calls in progress,
//! streams opened per second, streams open, request bytes held: `memory.rs`). A call
//! without a valid key, or over a rate or stream limit, is answered at once; a call beyond
//! the key's calls in progress waits for one of them to finish, its body unread. So no one
//! can make the server read (and hold) a request body without a key, and a key holds at
//! most its memory budget of request bodies.
//!
//! The gate hands the handler its [`Caller`] (and a Subscribe its [`StreamSeat`]) in the
//! request's extensions. Only health and reflection need no key and pass through; every
//! other path, known or not, is gated.
//!
//! It also gives two transport errors their proper codes: a request over its decode
//! limit is RESOURCE_EXHAUSTED (tonic says OUT_OF_RANGE), a frame with a bad compression
//! flag INVALID_ARGUMENT (tonic says INTERNAL).

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use governor::Quota;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Status, body::Body};

use super::{memory::RequestMemory, rates::KeyedRate, status};
use crate::{
    auth,
    domain::{Caller, Error},
    store::Store,
};

/// The services that need no key: health and server reflection.
const OPEN_PATHS: [&str; 3] =
    ["/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"];

/// How many calls of one key may wait for a place, per place: beyond that the key is told
/// to slow down instead of queueing without end.
const WAITING_PER_PLACE: usize = 4;

/// The one streaming call, held to the stream limits instead of the call limits.
const SUBSCRIBE_PATH: &str = "/missive.v1.EventService/Subscribe";

/// What one API key may take (the operators' flags of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimits {
    /// Unary calls per second, sustained.
    pub calls_per_second: u32,
    /// Unary calls at once above the sustained rate.
    pub call_burst: u32,
    /// Calls in progress at once; more wait.
    pub max_calls_in_flight: u32,
    /// Streams opened per second, sustained.
    pub stream_opens_per_second: u32,
    /// Streams opened at once above the sustained rate.
    pub stream_open_burst: u32,
    /// Streams open at once.
    pub max_streams: u32,
    /// The longest a unary call may take, from admission to answer.
    pub request_timeout: std::time::Duration,
    /// Bytes of request bodies one key's calls may hold at once.
    pub max_request_memory: usize,
}

/// The gate's state, shared by every connection.
pub struct Gate {
    store: Arc<Store>,
    limits: KeyLimits,
    calls: KeyedRate,
    stream_opens: KeyedRate,
    in_flight: Arc<CallQueues>,
    open_streams: Arc<Occupancy>,
    memory: Arc<RequestMemory>,
}

impl Gate {
    /// A gate over `store`'s keys with these limits.
    pub fn new(store: Arc<Store>, limits: KeyLimits) -> Arc<Self> {
        let quota = |rate: u32, burst: u32| Quota::per_second(nonzero(rate)).allow_burst(nonzero(burst.max(rate)));
        Arc::new(Self {
            store,
            calls: KeyedRate::new(quota(limits.calls_per_second, limits.call_burst)),
            stream_opens: KeyedRate::new(quota(limits.stream_opens_per_second, limits.stream_open_burst)),
            limits,
            in_flight: Arc::default(),
            open_streams: Arc::default(),
            memory: RequestMemory::new(limits.max_request_memory),
        })
    }

    /// The caller, with what it holds while its call runs; or why it may not call now.
    async fn admit(&self, headers: &http::HeaderMap, path: &str) -> Result<(Caller, Admitted), Error> {
        // While the database does not answer, nothing could be served: say so at once.
        self.store.ensure_reachable()?;
        let caller = auth::authenticate(&self.store, headers).await?;
        if path == SUBSCRIBE_PATH {
            // The count first: a stream refused for it takes nothing from the rate.
            let seat = self.open_streams.enter(&caller.limit_key(), self.limits.max_streams).ok_or_else(|| {
                exhausted(format!(
                    "this API key already has {} Subscribe streams open, the most one key may hold \
                     (--max-streams-per-key); close one first",
                    self.limits.max_streams
                ))
            })?;
            self.stream_opens
                .take(&caller.limit_key(), || over_rate("Subscribe streams opened", "--stream-opens-per-second"))?;
            return Ok((caller, Admitted::Stream(StreamSeat { _held: Arc::new(seat) })));
        }
        self.calls.take(&caller.limit_key(), || over_rate("calls", "--calls-per-second"))?;
        let seat =
            self.in_flight.enter(&caller.limit_key(), self.limits.max_calls_in_flight).await.ok_or_else(|| {
                exhausted(format!(
                    "this API key has {} calls in progress and more waiting (--max-calls-in-flight-per-key); \
                 wait for some to finish",
                    self.limits.max_calls_in_flight
                ))
            })?;
        Ok((caller, Admitted::Call(seat)))
    }
}

fn nonzero(value: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(value).unwrap_or(std::num::NonZeroU32::MIN)
}

fn exhausted(message: String) -> Error {
    Error::ResourceExhausted { message, retry_after: None }
}

/// Each key's calls in progress: a queue of `limit` places per key.
#[derive(Default)]
struct CallQueues {
    queues: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl CallQueues {
    /// A place among `key`'s calls in progress, once one is free; `None` when too many
    /// calls of the key wait already.
    async fn enter(self: &Arc<Self>, key: &str, limit: u32) -> Option<CallSeat> {
        let places = limit.max(1) as usize;
        // Made before the queue is taken, so that it is dropped after it: a call given up
        // while it waits then finds the queue's count right, and cleans up.
        let mut seat = CallSeat { queues: Arc::clone(self), key: key.to_owned(), permit: None };
        let queue = {
            let mut queues = self.queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let queue = queues.entry(key.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(places)));
            // Held by the map, each call in a place, and each call waiting for one.
            if Arc::strong_count(queue) > 1 + places + places * WAITING_PER_PLACE {
                return None;
            }
            Arc::clone(queue)
        };
        seat.permit = queue.acquire_owned().await.ok();
        Some(seat)
    }
}

/// A call's place, given back when dropped; a key with no call in progress or waiting
/// leaves no trace.
struct CallSeat {
    queues: Arc<CallQueues>,
    key: String,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for CallSeat {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut queues = self.queues.queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Only the map holds it: no call of this key holds or waits for a place.
        if queues.get(&self.key).is_some_and(|queue| Arc::strong_count(queue) == 1) {
            queues.remove(&self.key);
        }
    }
}

/// What a key over one of its rates is told (the rate's flag names it).
fn over_rate(what: &str, flag: &str) -> String {
    format!("this API key is over its rate of {what} ({flag})")
}

/// What an admitted call holds until it is done.
enum Admitted {
    /// A unary call's place among its key's calls in progress.
    Call(CallSeat),
    /// A stream's place, handed to the stream itself.
    Stream(StreamSeat),
}

/// A Subscribe stream's place among its key's open streams: the stream keeps it for as
/// long as it is open.
#[derive(Clone)]
pub struct StreamSeat {
    _held: Arc<Seat>,
}

/// How many places each key holds in one kind of limit.
#[derive(Default)]
struct Occupancy {
    held: Mutex<HashMap<String, u32>>,
}

impl Occupancy {
    /// A place for `key` if it holds fewer than `limit`.
    fn enter(self: &Arc<Self>, key: &str, limit: u32) -> Option<Seat> {
        let mut held = self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = held.entry(key.to_owned()).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Seat { occupancy: Arc::clone(self), key: key.to_owned() })
    }
}

/// One place, given back when dropped.
struct Seat {
    occupancy: Arc<Occupancy>,
    key: String,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut held = self.occupancy.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The gate as a tower layer.
#[derive(Clone)]
pub struct GateLayer(pub Arc<Gate>);

impl<S> tower::Layer<S> for GateLayer {
    type Service = GateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GateService { inner, gate: Arc::clone(&self.0) }
    }
}

/// The gate in front of the services.
#[derive(Clone)]
pub struct GateService<S> {
    inner: S,
    gate: Arc<Gate>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for GateService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone is ready only if polled; the one that was polled serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = Arc::clone(&self.gate);
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            if OPEN_PATHS.iter().any(|open| path.starts_with(open)) {
                return Ok(proper_code(inner.call(request.map(Body::new)).await?, &path));
            }
            if path == SUBSCRIBE_PATH {
                return pass(&gate, inner, request, &path).await;
            }
            // Unary calls are bounded here rather than by tonic's timeout, which answers
            // outside every layer: this way the answer has its ErrorInfo, its CORS headers
            // and grpc-web framing, and is counted like any other.
            let limit = gate.limits.request_timeout;
            match tokio::time::timeout(limit, pass(&gate, inner, request, &path)).await {
                Ok(answer) => answer,
                Err(_) => {
                    let message =
                        format!("the call took longer than {} (--request-timeout)", humantime::format_duration(limit));
                    let code = Code::DeadlineExceeded;
                    Ok(status::with_reason(code, message, status::transport_reason(code)).into_http())
                }
            }
        })
    }
}

/// A gated call: admitted (or refused), then served with what it holds.
async fn pass<S, B>(
    gate: &Gate,
    mut inner: S,
    request: http::Request<B>,
    path: &str,
) -> Result<http::Response<Body>, S::Error>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    B: http_body::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    let (caller, admitted) = match gate.admit(request.headers(), path).await {
        Ok(admitted) => admitted,
        Err(err) => return Ok(Status::from(err).into_http()),
    };
    let (parts, body) = request.into_parts();
    let (body, _memory) = gate.memory.count(&caller.limit_key(), body);
    let mut request = http::Request::from_parts(parts, Body::new(body));
    request.extensions_mut().insert(caller);
    let held = match admitted {
        Admitted::Call(seat) => Some(seat),
        Admitted::Stream(seat) => {
            request.extensions_mut().insert(seat);
            None
        }
    };
    let response = inner.call(request).await?;
    drop(held);
    Ok(proper_code(response, path))
}

/// The response, with tonic's own error answers given the code gRPC's table gives and an
/// `ErrorInfo` like every other error. (Only trailers-only answers, whose status is in the
/// headers, come from tonic; Missive's own statuses already carry their details.)
fn proper_code(mut response: http::Response<Body>, path: &str) -> http::Response<Body> {
    let headers = response.headers();
    if headers.contains_key("grpc-status-details-bin") {
        return response;
    }
    let code = match headers.get("grpc-status") {
        Some(code) => Code::from_bytes(code.as_bytes()),
        None => return response,
    };
    if code == Code::Ok {
        return response;
    }
    let message = headers.get("grpc-message").map(|value| percent_decoded(value.as_bytes())).unwrap_or_default();
    let (code, message) = match code {
        Code::OutOfRange if message.starts_with("Error, decoded message length too large") => (
            Code::ResourceExhausted,
            format!("the request is larger than this method accepts: {}", message.trim_start_matches("Error, ")),
        ),
        Code::Internal if message.starts_with("protocol error: received message with invalid compression flag") => {
            (Code::InvalidArgument, format!("the request body is malformed: {message}"))
        }
        Code::Unimplemented if message.is_empty() => (code, format!("no method {path} on this server")),
        _ => (code, message),
    };
    let replaced = status::with_reason(code, message, status::transport_reason(code)).into_http::<Body>();
    *response.headers_mut() = replaced.headers().clone();
    response
}

/// `grpc-message` is percent-encoded.
fn percent_decoded(bytes: &[u8]) -> String {
    percent_encoding::percent_decode(bytes).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_limit_and_gets_places_back() {
        let occupancy = Arc::<Occupancy>::default();
        let first = occupancy.enter("k", 2).unwrap();
        let _second = occupancy.enter("k", 2).unwrap();
        assert!(occupancy.enter("k", 2).is_none(), "a third is over the limit");
        assert!(occupancy.enter("other", 2).is_some(), "another key has its own places");
        drop(first);
        assert!(occupancy.enter("k", 2).is_some(), "a place given back is free again");
    }

    #[tokio::test]
    async fn a_call_over_its_keys_limit_waits_for_a_place_and_idle_keys_leave_no_trace() {
        let queues = Arc::<CallQueues>::default();
        let first = queues.enter("k", 1).await.unwrap();
        let waiting = tokio::spawn({
            let queues = Arc::clone(&queues);
            async move { queues.enter("k", 1).await.unwrap() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the second call waits");
        drop(first);
        let second = waiting.await.unwrap();
        drop(second);
        assert!(queues.queues.lock().unwrap().is_empty());
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(percent_decoded(b"50%25 off%0A"), "50% off\n");
        assert_eq!(percent_decoded(b"trailing %"), "trailing %");
    }
}
