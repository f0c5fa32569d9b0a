//! What one key's requests may hold in memory at once. The gate bounds a key's calls in
//! progress (`--max-calls-in-flight-per-key`), but each may carry up to its method's decode
//! limit (about 52 MiB for a message with ten 5 MiB files), so one key could pin gigabytes.
//! Here the bytes of every request body are counted against the key's budget as they
//! arrive, before tonic buffers them, and held until the call has answered (the decoded
//! request lives that long). A body that would take its key over the budget ends at once
//! with RESOURCE_EXHAUSTED naming the flag, and gives back what it took.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
};

use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Status, codegen::Bytes};

/// The keys' budgets: bytes of request bodies each may hold at once.
pub struct RequestMemory {
    /// Bytes per key.
    limit: usize,
    /// The budgets of the keys with a call in progress; a key with none leaves no trace.
    budgets: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl RequestMemory {
    /// Budgets of `limit` bytes per key.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { limit, budgets: Mutex::default() })
    }

    /// `body`, a request of `key`'s, counted against the key's budget; what it takes is
    /// held until the returned [`Held`] is dropped, once the call has answered.
    pub fn count<B>(self: &Arc<Self>, key: &str, body: B) -> (Counted<B>, Held) {
        let budget = {
            let mut budgets = self.budgets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let limit = self.limit.min(Semaphore::MAX_PERMITS);
            Arc::clone(budgets.entry(key.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(limit))))
        };
        let taken = Arc::new(Mutex::new(None));
        let held = Held { memory: Arc::clone(self), key: key.to_owned(), budget, taken };
        let counted = Counted {
            inner: Box::pin(body),
            budget: Arc::clone(&held.budget),
            taken: Arc::clone(&held.taken),
            limit: self.limit,
            owner: (Arc::clone(self), key.to_owned()),
        };
        (counted, held)
    }

    /// Forgets `key`'s budget once nothing else holds it than the map and the one holder
    /// letting go: its call's [`Held`], or its body, whichever goes last.
    fn let_go(&self, key: &str, budget: &Arc<Semaphore>) {
        let mut budgets = self.budgets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if Arc::strong_count(budget) == 2 && budgets.get(key).is_some_and(|kept| Arc::ptr_eq(kept, budget)) {
            budgets.remove(key);
        }
    }
}

/// What a call's request took of its key's budget, given back when dropped.
pub struct Held {
    memory: Arc<RequestMemory>,
    key: String,
    budget: Arc<Semaphore>,
    taken: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.taken.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take());
        self.memory.let_go(&self.key, &self.budget);
    }
}

/// A request body whose bytes are taken from its key's budget as they arrive.
pub struct Counted<B> {
    inner: Pin<Box<B>>,
    budget: Arc<Semaphore>,
    taken: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    limit: usize,
    /// The budgets and the key, to let go of the key's budget if the body outlives its call.
    owner: (Arc<RequestMemory>, String),
}

impl<B> Drop for Counted<B> {
    fn drop(&mut self) {
        let (memory, key) = &self.owner;
        memory.let_go(key, &self.budget);
    }
}

impl<B> Counted<B> {
    /// Takes `bytes` more from the budget; false (having given back all it took) when the
    /// budget has not that much left.
    fn take(&self, bytes: usize) -> bool {
        let mut taken = self.taken.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match u32::try_from(bytes).ok().and_then(|n| Arc::clone(&self.budget).try_acquire_many_owned(n).ok()) {
            Some(more) => {
                match taken.as_mut() {
                    Some(held) => held.merge(more),
                    None => *taken = Some(more),
                }
                true
            }
            None => {
                *taken = None;
                false
            }
        }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = match ready!(self.inner.as_mut().poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(err)) => return Poll::Ready(Some(Err(err.into()))),
            None => return Poll::Ready(None),
        };
        let bytes = frame.data_ref().map_or(0, Bytes::len);
        if bytes > 0 && !self.take(bytes) {
            let mib = self.limit / (1024 * 1024);
            let status = Status::resource_exhausted(format!(
                "this API key's requests in progress would hold more than {mib} MiB at once \
                 (--max-request-memory-per-key); wait for some to finish"
            ));
            return Poll::Ready(Some(Err(Box::new(status))));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn body(chunks: &[usize]) -> http_body_util::StreamBody<impl futures::Stream<Item = Result<Frame<Bytes>, Status>>> {
        let frames: Vec<_> = chunks.iter().map(|&n| Ok(Frame::data(Bytes::from(vec![0u8; n])))).collect();
        http_body_util::StreamBody::new(futures::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_key_holds_at_most_its_budget_until_its_calls_answer() {
        let memory = RequestMemory::new(100);
        let (first, first_held) = memory.count("k", body(&[30, 30]));
        assert!(first.collect().await.is_ok(), "60 of 100");
        let (second, _second_held) = memory.count("k", body(&[30, 20]));
        let Err(refused) = second.collect().await else { panic!("60 + 50 is over 100") };
        let status = refused.downcast::<Status>().expect("a status");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("--max-request-memory-per-key"), "{status:?}");

        let (other, _other_held) = memory.count("other", body(&[100]));
        assert!(other.collect().await.is_ok(), "another key has its own budget");
        drop(first_held);
        let (third, third_held) = memory.count("k", body(&[100]));
        assert!(third.collect().await.is_ok(), "what an answered call held is given back");
        drop(third_held);
        drop(_second_held);
        assert!(!memory.budgets.lock().unwrap().contains_key("k"), "a key with no call leaves no trace");
    }

    #[test]
    fn a_body_that_outlives_its_call_leaves_no_trace_either() {
        let memory = RequestMemory::new(100);
        let (body, held) = memory.count("k", body(&[10]));
        drop(held);
        assert!(memory.budgets.lock().unwrap().contains_key("k"), "the body still holds the budget");
        drop(body);
        assert!(memory.budgets.lock().unwrap().is_empty());
    }
}
