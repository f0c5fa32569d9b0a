//! Mutes: a participant silences a conversation's notifications for itself, until a time
//! or until it unmutes. Its messages still count as unread; the mute is the participant's
//! own business (its events go to it alone).

use sea_orm::ActiveValue::Set;

use super::{
    Store,
    conversations::{self, OwnChange},
    entities::participant,
};
use crate::domain::{
    Caller, Error,
    conversations::Mute,
    events::{EventKind, EventPayload},
    views::ConversationView,
};

/// Mutes the conversation for the caller with `mute`, or unmutes it with `None`. A mute
/// replaces the one in force; unmuting what is not muted changes nothing.
pub async fn set(store: &Store, caller: &Caller, id: String, mute: Option<Mute>) -> Result<ConversationView, Error> {
    conversations::change_own_row(store, caller, id, move |own, now| {
        (Mute::in_force(own.muted, own.mute_expire_time, now) != mute).then(|| {
            let mut active: participant::ActiveModel = own.into();
            active.muted = Set(mute.is_some());
            active.mute_expire_time = Set(mute.and_then(|mute| mute.expire_time));
            let kind = if mute.is_some() { EventKind::ConversationMuted } else { EventKind::ConversationUnmuted };
            OwnChange {
                row: active,
                kind,
                payload: Box::new(move |conversation| EventPayload::Muted { conversation, mute }),
            }
        })
    })
    .await
}
