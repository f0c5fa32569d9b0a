//! `SendTypingIndicator`: a participant tells the conversation's other participants that it
//! is typing. Nothing is stored: the signal goes to the streams open now, on every replica
//! (`events::signals`). Each user may send a burst of `TYPING_BURST`, then one every
//! `TYPING_REFILL` (per replica, like the per-key limits): clients send one every few
//! seconds while their user types, and more would only load every participant's stream.

use governor::Quota;

use super::{ApiState, rates::KeyedRate};
use crate::{
    domain::{
        Caller, Error,
        presence::{TYPING_BURST, TYPING_REFILL},
    },
    events::signals::SignalKind,
    store,
};

/// Each user's allowance of typing signals.
pub struct TypingLimits(KeyedRate);

impl Default for TypingLimits {
    fn default() -> Self {
        let burst = std::num::NonZeroU32::new(TYPING_BURST).expect("a burst of at least one");
        let quota = Quota::with_period(TYPING_REFILL).expect("a refill period above zero").allow_burst(burst);
        Self(KeyedRate::new(quota))
    }
}

/// Tells the conversation's other participants that `caller` is typing (or stopped).
pub async fn send(state: &ApiState, caller: &Caller, conversation_id: String, typing: bool) -> Result<(), Error> {
    // The allowance first: a flood costs no reads.
    state.typing.0.take(&caller.user_id, || "too many typing indicators from this user".to_owned())?;
    store::participants::ensure_taking_part(&state.store, caller, &conversation_id).await?;
    let signal = SignalKind::Typing { conversation_id, user_id: caller.user_id.clone(), typing };
    state.streams.signals.publish(&caller.account_id, signal).await
}
