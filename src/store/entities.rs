//! sea-orm entities, one module per table of `migrations/`. Relations are not declared:
//! the queries that join tables build their joins explicitly in the module that owns them.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod account {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub create_time: i64,
        /// Its conversations, kept in the unit of every create and delete.
        pub conversation_count: i64,
        /// Signs its user tokens: made at the first, replaced by a rotation. Never sent.
        pub token_secret: Option<String>,
        /// Seals its event cursors (32 hex digits): made with the account. Never sent.
        pub cursor_key: String,
        /// The language its messages are searched in: PostgreSQL's text search
        /// configuration (`simple`, `english`…); always `simple` on SQLite.
        pub search_language: String,
    }

    no_relations!();
}

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub role: String,
        pub display_name: String,
        pub external_id: Option<String>,
        pub email: String,
        pub phone: String,
        /// The user (an admin) whose request created it; request ids are theirs.
        pub creator_id: Option<String>,
        pub create_request_id: Option<String>,
        /// A digest of the create request (`domain::idempotency`).
        pub request_fingerprint: Option<String>,
        pub create_time: i64,
        pub update_time: i64,
        /// Set while deactivated: its keys and tokens do not work.
        pub deactivate_time: Option<i64>,
        /// Advanced by each deactivation: tokens minted under an older one stay void.
        pub token_generation: i64,
        /// "" for none.
        pub avatar_url: String,
        pub verified: bool,
        /// The presence last announced (see `store::presence`).
        pub online: bool,
        pub last_seen_time: Option<i64>,
    }

    no_relations!();
}

pub mod api_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub user_id: String,
        pub name: String,
        pub prefix: String,
        pub key_hash: String,
        pub create_time: i64,
        pub revoke_time: Option<i64>,
    }

    no_relations!();
}

pub mod conversation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "conversations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub subject_kind: String,
        pub subject_external_id: String,
        pub subject_title: String,
        /// "" for none.
        pub subject_image_url: String,
        /// `Metadata` as JSON, or NULL for none.
        pub subject_attributes: Option<String>,
        /// JSON object of strings.
        pub metadata: String,
        pub creator_id: String,
        pub create_request_id: Option<String>,
        /// A digest of the request that created it (`domain::idempotency`).
        pub request_fingerprint: Option<String>,
        pub create_time: i64,
        /// Changes on every change, private notes included: what staff see.
        pub update_time: i64,
        /// Changes on every change but private notes: what members see, so that a note
        /// never moves a conversation in a member's list.
        pub public_update_time: i64,
        /// The sequence of the newest public message; the next one gets this plus one.
        pub message_sequence: i64,
        /// Private notes written since that message; the next note gets this plus one.
        pub note_sequence: i64,
        /// Every private note of the conversation (with `message_sequence`, its total).
        pub note_count: i64,
        pub last_message_id: Option<String>,
        /// The newest message that is not a private note: what members see as the last one.
        pub last_public_message_id: Option<String>,
        /// Set while staff have it marked handled, with who did.
        pub handle_time: Option<i64>,
        pub handler_id: Option<String>,
    }

    no_relations!();
}

pub mod participant {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "participants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub conversation_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub account_id: String,
        pub label: String,
        pub archived: bool,
        /// Exactly the messages that count as unread for this user (see
        /// `domain::unread::counts_for`), kept in the transaction of every change.
        pub unread_count: i64,
        pub join_time: i64,
        /// Muted by this user: no notifications, until `mute_expire_time` when set.
        pub muted: bool,
        pub mute_expire_time: Option<i64>,
    }

    no_relations!();
}

pub mod message {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "messages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub conversation_id: String,
        /// Position among the public messages (a note has the one of the message before it).
        pub sequence: i64,
        /// 0 for a public message; for a private note, its position after that message.
        pub note_sequence: i64,
        pub sender_id: String,
        pub kind: String,
        pub content: String,
        pub content_type: String,
        /// JSON object, or NULL.
        pub content_attributes: Option<String>,
        pub private: bool,
        pub direction: String,
        /// JSON object of strings.
        pub metadata: String,
        pub send_request_id: Option<String>,
        /// A digest of the request that created it (`domain::idempotency`).
        pub request_fingerprint: Option<String>,
        pub create_time: i64,
        pub edit_time: Option<i64>,
        pub delete_time: Option<i64>,
        /// The template it was rendered from, and the values (a JSON map of strings).
        pub template_id: Option<String>,
        pub template_variables: Option<String>,
        /// The channel it was relayed through (NULL: in-app), its addresses and its id there.
        pub channel: Option<String>,
        pub channel_from: Option<String>,
        pub channel_to: Option<String>,
        pub external_id: Option<String>,
        /// The time it was scheduled for.
        pub schedule_time: Option<i64>,
        /// Sent even to a suppressed address.
        pub transactional: bool,
        /// An outgoing relayed message's `domain::relays::DeliveryState` (NULL for any
        /// other message), the channel's error when it failed, and when it last moved.
        pub delivery_state: Option<String>,
        pub delivery_error_code: Option<String>,
        pub delivery_error_message: Option<String>,
        pub delivery_update_time: Option<i64>,
        /// Set while staff have it marked handled, with who did.
        pub handle_time: Option<i64>,
        pub handler_id: Option<String>,
    }

    no_relations!();
}

pub mod scheduled_message {
    use sea_orm::entity::prelude::*;

    /// A message waiting for its time (or failed at it): the columns of a message to send,
    /// with the state of its schedule.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "scheduled_messages")]
    pub struct Model {
        /// The id the message keeps when delivered.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub conversation_id: String,
        pub sender_id: String,
        pub kind: String,
        pub content: String,
        pub content_type: String,
        pub content_attributes: Option<String>,
        pub private: bool,
        pub direction: String,
        pub metadata: String,
        pub template_id: Option<String>,
        pub template_variables: Option<String>,
        pub channel: Option<String>,
        pub channel_from: Option<String>,
        pub channel_to: Option<String>,
        pub transactional: bool,
        pub send_request_id: Option<String>,
        /// A digest of the request that created it (`domain::idempotency`).
        pub request_fingerprint: Option<String>,
        pub schedule_time: i64,
        /// `scheduled`, `failed` or `canceled` (`domain::messages::MessageState`).
        pub state: String,
        pub failure_reason: Option<String>,
        pub create_time: i64,
        /// When its content, metadata or time were last changed.
        pub edit_time: Option<i64>,
        pub update_time: i64,
    }

    no_relations!();
}

pub mod scheduled_attachment {
    use sea_orm::entity::prelude::*;

    /// A file of a waiting message; it keeps its id when the message is delivered.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "scheduled_attachments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub scheduled_message_id: String,
        pub position: i64,
        pub filename: String,
        pub media_type: String,
        /// 0 for a link whose size is not known.
        pub size_bytes: i64,
        /// The key of its bytes in `attachment_blobs` ("" for a link).
        pub sha256: String,
        /// A link's address, whose bytes the server never holds.
        pub url: Option<String>,
    }

    no_relations!();
}

pub mod template {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "templates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub scope: String,
        pub owner_id: Option<String>,
        /// Where the name (and the alias) is unique: the owner's id, or the account's.
        pub namespace: String,
        pub name: String,
        /// A stable key to send it by (`offer_accepted`), or NULL.
        pub alias: Option<String>,
        pub category: String,
        pub content: String,
        /// JSON array of the placeholder names.
        pub variables: String,
        pub creator_id: String,
        pub create_request_id: Option<String>,
        /// A digest of the request that created it (`domain::idempotency`).
        pub request_fingerprint: Option<String>,
        pub create_time: i64,
        pub update_time: i64,
    }

    no_relations!();
}

pub mod attachment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "attachments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub message_id: String,
        pub position: i64,
        pub filename: String,
        pub media_type: String,
        /// 0 for a link whose size is not known.
        pub size_bytes: i64,
        /// The key of its bytes in `attachment_blobs` ("" for a link).
        pub sha256: String,
        /// A link's address, whose bytes the server never holds.
        pub url: Option<String>,
    }

    no_relations!();
}

pub mod message_read {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "message_reads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub conversation_id: String,
        pub account_id: String,
        pub read_time: i64,
    }

    no_relations!();
}

pub mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        /// The row's id, in the order of all accounts' appends: never shown.
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub account_id: String,
        /// The transaction that appended it (0 on SQLite): with `seq`, its position.
        pub tx: i64,
        /// Its number within the account, for events appended before positions (cursors
        /// from then name these); 0 for later ones.
        pub account_seq: i64,
        pub event_type: String,
        pub conversation_id: Option<String>,
        pub actor_id: String,
        pub audience_user_id: Option<String>,
        pub subject_user_id: Option<String>,
        pub staff_only: bool,
        /// Every user of the account may see it.
        pub everyone: bool,
        pub create_time: i64,
        /// `domain::events::EventPayload` as JSON.
        pub payload: String,
    }

    no_relations!();
}

pub mod event_retention {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_retention")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        /// Every event of the account up to this account number has been pruned (for
        /// cursors from before positions).
        pub pruned_through: i64,
        /// Every event of the account up to this position has been pruned.
        pub pruned_tx: i64,
        pub pruned_seq: i64,
    }

    no_relations!();
}

pub mod report {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub conversation_id: String,
        pub message_id: String,
        pub reporter_id: String,
        pub reason: String,
        pub details: String,
        pub status: String,
        /// `domain::messages::Message` as JSON, as the reporter saw it.
        pub snapshot: String,
        pub create_time: i64,
        pub resolve_time: Option<i64>,
        pub resolver_id: Option<String>,
        pub resolution_note: Option<String>,
    }

    no_relations!();
}

pub mod notification {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub user_id: String,
        pub kind: String,
        pub conversation_id: Option<String>,
        pub actor_id: String,
        pub message_id: Option<String>,
        pub report_id: Option<String>,
        pub count: i64,
        pub summary: String,
        /// Set while unread and able to grow; one per user and key.
        pub coalesce_key: Option<String>,
        pub read_time: Option<i64>,
        pub create_time: i64,
        pub update_time: i64,
    }

    no_relations!();
}

pub mod presence {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "presence")]
    pub struct Model {
        /// The replica holding the user's streams.
        #[sea_orm(primary_key, auto_increment = false)]
        pub replica_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub account_id: String,
        /// Renewed while the streams stay open; a row not renewed for
        /// `presence::LEASE` belongs to a replica that is gone.
        pub renew_time: i64,
    }

    no_relations!();
}

pub mod suppression {
    use sea_orm::entity::prelude::*;

    /// An address the account does not write to on a channel (`domain::relays`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "suppressions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub channel: String,
        /// Normalized as envelopes store it.
        #[sea_orm(primary_key, auto_increment = false)]
        pub address: String,
        pub reason: String,
        pub note: String,
        pub creator_id: String,
        pub create_time: i64,
    }

    no_relations!();
}

pub mod raw_payload {
    use sea_orm::entity::prelude::*;

    /// The channel's original payload of a relayed message: apart from the message, so
    /// that no read of messages carries it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "raw_payloads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: String,
        pub account_id: String,
        pub data: Vec<u8>,
        pub update_time: i64,
    }

    no_relations!();
}

pub mod attachment_blob {
    use sea_orm::entity::prelude::*;

    /// The bytes of an account's files, once per digest, whatever number of attachments
    /// (sent or waiting) name them.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "attachment_blobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub sha256: String,
        pub data: Vec<u8>,
    }

    no_relations!();
}
