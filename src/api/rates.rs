//! Rates per key (an API key, or a user): governor's keyed limiters with what each of
//! Missive's rates needs around them, written once: quiet keys forgotten now and then, so
//! that the limiter's memory follows the keys in use, and a refusal that says when to
//! retry (RESOURCE_EXHAUSTED with RetryInfo).

use std::sync::atomic::{AtomicU64, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};

use crate::domain::Error;

/// How often (in checks) a rate forgets keys that have been quiet.
const FORGET_EVERY: u64 = 4096;

/// One rate, kept per key.
pub struct KeyedRate {
    limiter: DefaultKeyedRateLimiter<String>,
    checked: AtomicU64,
}

impl KeyedRate {
    /// A rate of `quota` for each key.
    pub fn new(quota: Quota) -> Self {
        Self { limiter: DefaultKeyedRateLimiter::keyed(quota), checked: AtomicU64::new(0) }
    }

    /// Takes one cell of `key`'s rate, or RESOURCE_EXHAUSTED: `refusal` says what is over
    /// its rate, and the message adds when to retry.
    pub fn take(&self, key: &str, refusal: impl FnOnce() -> String) -> Result<(), Error> {
        if self.checked.fetch_add(1, Ordering::Relaxed).is_multiple_of(FORGET_EVERY) {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            Error::ResourceExhausted {
                message: format!("{}; retry after {} ms", refusal(), wait.as_millis()),
                retry_after: Some(wait),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    #[test]
    fn a_key_over_its_rate_is_told_when_to_retry() {
        let rate = KeyedRate::new(Quota::per_second(NonZeroU32::MIN).allow_burst(NonZeroU32::new(2).unwrap()));
        let refusal = || "over".to_owned();
        assert!(rate.take("k", refusal).is_ok());
        assert!(rate.take("k", refusal).is_ok());
        assert!(rate.take("other", refusal).is_ok(), "each key has its own");
        let Err(Error::ResourceExhausted { message, retry_after: Some(wait) }) = rate.take("k", refusal) else {
            panic!("the third call in a second is over the rate")
        };
        assert!(wait <= std::time::Duration::from_secs(1));
        assert!(message.starts_with("over; retry after "), "{message}");
    }
}
