//! `SendTypingIndicator`: a participant tells the conversation's other participants that it
//! is typing. Nothing is stored: the signal goes to the streams open now, on every replica
//! (`events::signals`). Each user may send a burst of `TYPING_BURST`, then one every
//! `TYPING_REFILL` (per replica, like the per-key limits): clients send one every few
//! seconds while their user types, and more would only load every participant's stream.

use std::sync::atomic::{AtomicU64, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};

use super::ApiState;
use crate::{
    domain::{
        Caller, Error,
        presence::{TYPING_BURST, TYPING_REFILL},
    },
    events::signals::SignalKind,
    store,
};

/// Checks forgotten users out of the limiter's memory this often.
const FORGET_EVERY: u64 = 4096;

/// Each user's allowance of typing signals.
pub struct TypingLimits {
    limiter: DefaultKeyedRateLimiter<String>,
    checked: AtomicU64,
}

impl Default for TypingLimits {
    fn default() -> Self {
        let burst = std::num::NonZeroU32::new(TYPING_BURST).expect("a burst of at least one");
        let quota = Quota::with_period(TYPING_REFILL).expect("a refill period above zero").allow_burst(burst);
        Self { limiter: DefaultKeyedRateLimiter::keyed(quota), checked: AtomicU64::new(0) }
    }
}

impl TypingLimits {
    /// Takes one of `user_id`'s signals, or RESOURCE_EXHAUSTED saying when to retry.
    fn take(&self, user_id: &str) -> Result<(), Error> {
        if self.checked.fetch_add(1, Ordering::Relaxed).is_multiple_of(FORGET_EVERY) {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&user_id.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            Error::ResourceExhausted {
                message: format!("too many typing indicators from this user; retry after {} ms", wait.as_millis()),
                retry_after: Some(wait),
            }
        })
    }
}

/// Tells the conversation's other participants that `caller` is typing (or stopped).
pub async fn send(state: &ApiState, caller: &Caller, conversation_id: String, typing: bool) -> Result<(), Error> {
    // The allowance first: a flood costs no reads.
    state.typing.take(&caller.user_id)?;
    store::participants::ensure_taking_part(&state.store, caller, &conversation_id).await?;
    let signal = SignalKind::Typing { conversation_id, user_id: caller.user_id.clone(), typing };
    state.streams.signals.publish(&caller.account_id, signal).await
}
