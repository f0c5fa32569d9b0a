//! The unread rule, the one statement of it: which messages a participant's unread counter
//! counts. Counters are kept in the transaction of every change that moves them (send,
//! read, delete, join, role change); `store::unread` applies this rule to the changed rows
//! and holds its query form for recounts, which a test there proves equal to this one.

/// What the rule needs to know of a message.
#[derive(Debug, Clone, Copy)]
pub struct MessageFacts<'a> {
    /// Who sent it.
    pub sender_id: &'a str,
    /// A private note (staff only).
    pub private: bool,
    /// Deleted to a tombstone.
    pub deleted: bool,
}

/// Who the counter belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    /// The participant.
    pub user_id: &'a str,
    /// Whether it is staff now: only staff see private notes.
    pub is_staff: bool,
}

/// Whether `message` counts for `reader` until it reads it: someone else's, not deleted,
/// and visible to it (private notes only for staff).
pub fn counts_for(message: MessageFacts<'_>, reader: Reader<'_>) -> bool {
    message.sender_id != reader.user_id
        && !message.deleted
        && super::messages::visible_to(message.private, reader.is_staff)
}

/// What a MarkRead did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkedRead {
    /// Messages that went from unread to read.
    pub marked: i64,
    /// The reader's unread count in the conversation after.
    pub unread_count: i64,
}

/// A user's unread totals over the conversations it has not archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreadTotals {
    /// Unread messages.
    pub messages: i64,
    /// Conversations with at least one.
    pub conversations: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMBER: Reader<'static> = Reader { user_id: "me", is_staff: false };
    const STAFF: Reader<'static> = Reader { user_id: "me", is_staff: true };

    fn message(sender_id: &str, private: bool, deleted: bool) -> MessageFacts<'_> {
        MessageFacts { sender_id, private, deleted }
    }

    #[test]
    fn someone_elses_live_public_message_counts_for_everyone() {
        assert!(counts_for(message("other", false, false), MEMBER));
        assert!(counts_for(message("other", false, false), STAFF));
    }

    #[test]
    fn own_and_deleted_messages_never_count() {
        for reader in [MEMBER, STAFF] {
            assert!(!counts_for(message("me", false, false), reader));
            assert!(!counts_for(message("other", false, true), reader));
        }
    }

    #[test]
    fn private_notes_count_for_staff_only() {
        assert!(counts_for(message("other", true, false), STAFF));
        assert!(!counts_for(message("other", true, false), MEMBER));
        assert!(!counts_for(message("me", true, false), STAFF));
    }
}
