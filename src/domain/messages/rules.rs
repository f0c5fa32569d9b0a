//! Who may do what with a message. "Private notes are for staff" is stated here once,
//! [`visible_to`]; its SQL form is `store::access::visible_messages`, and a test there
//! proves the two equal.

use super::{Direction, MessageDraft, MessageKind};
use crate::domain::{Caller, Error};

/// Whether a viewer sees private notes: staff do, members never learn that notes exist.
pub fn sees_notes(viewer_is_staff: bool) -> bool {
    viewer_is_staff
}

/// Whether a viewer may see a message (`private`: a note), by [`sees_notes`]. The same rule
/// says who may write a note, counts unread messages (`domain::unread`) and addresses
/// message events (`events::Audience::for_message`).
pub fn visible_to(private: bool, viewer_is_staff: bool) -> bool {
    !private || sees_notes(viewer_is_staff)
}

impl MessageDraft {
    /// Checks what the caller's role allows: private notes, system messages, choosing the
    /// direction and a channel's external id are staff's (a member's message always comes
    /// in; external ids are a relay's dedupe keys, which a member must not be able to take
    /// before the relay, nor probe).
    pub fn authorize(&self, caller: &Caller) -> Result<(), Error> {
        let draft = self;
        if !caller.is_staff() && draft.direction.is_some_and(|d| d != Direction::Incoming) {
            return Err(Error::PermissionDenied(
                "direction: a member's messages are incoming; only staff send outgoing ones".into(),
            ));
        }
        if !visible_to(draft.private, caller.is_staff()) {
            return Err(Error::PermissionDenied("private: only staff may write private notes".into()));
        }
        if draft.kind == MessageKind::System && !caller.is_staff() {
            return Err(Error::PermissionDenied("kind: only staff may send system messages".into()));
        }
        if draft.envelope.as_ref().is_some_and(|e| e.external_id.is_some()) && !caller.is_staff() {
            return Err(Error::PermissionDenied(
                "envelope.external_id: only staff (a relay's key) may set a channel's message id".into(),
            ));
        }
        if draft.raw_payload.is_some() && !caller.is_staff() {
            return Err(Error::PermissionDenied(
                "raw_payload: only staff (a relay's key) may keep a channel's payload".into(),
            ));
        }
        Ok(())
    }

    /// The direction to store: as requested, else outgoing from staff, incoming from members.
    pub fn direction_for(&self, caller: &Caller) -> Direction {
        self.direction.unwrap_or(if caller.is_staff() { Direction::Outgoing } else { Direction::Incoming })
    }
}

/// Who sees a scheduled (or failed, or canceled) message: its sender, and staff. Until it
/// is sent it is nobody else's business.
pub fn sees_scheduled(caller: &Caller, sender_id: &str) -> bool {
    caller.user_id == sender_id || caller.is_staff()
}

/// Only the sender may edit a message, sent or scheduled.
pub fn may_edit(caller: &Caller, sender_id: &str) -> Result<(), Error> {
    if caller.user_id == sender_id {
        Ok(())
    } else {
        Err(Error::PermissionDenied("only the sender may edit a message".into()))
    }
}

/// The sender or staff may delete a message.
pub fn may_delete(caller: &Caller, sender_id: &str) -> Result<(), Error> {
    sender_or_staff(caller, sender_id, "delete a message")
}

/// The sender or staff may cancel a scheduled message, or send it at once.
pub fn may_dispatch(caller: &Caller, sender_id: &str) -> Result<(), Error> {
    sender_or_staff(caller, sender_id, "cancel or send a scheduled message")
}

fn sender_or_staff(caller: &Caller, sender_id: &str, action: &str) -> Result<(), Error> {
    if sees_scheduled(caller, sender_id) {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!("only the sender or staff may {action}")))
    }
}
