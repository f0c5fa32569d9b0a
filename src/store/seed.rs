//! The store's one entry point for code outside the crate that writes data directly
//! rather than through the API: the benchmark's seeding (a million messages sent one RPC
//! at a time would take most of an hour), and the first account and key of the fuzz
//! target and the black-box tests, with the unread recount those tests check counters
//! against (and the count of kept file bytes, which they check forwards against). Each is
//! the use case the API's own handlers call, so seeded data is exactly what the API would
//! have written. Everything else in `store` is the crate's own.

pub use super::{
    accounts::{create as create_account, ids as account_ids, set_search_language},
    api_keys::create_in as create_key,
    conversations::create as create_conversation,
    credentials::SHARED_FILE_MAX_AGE,
    files::kept as kept_files,
    messages::import as import_messages,
    mutes::set as set_mute,
    unread::{UnreadDrift, drift as unread_drift},
    users::{authenticate, create_in as create_user},
};
