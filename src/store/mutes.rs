//! Mutes: a participant silences a conversation's notifications for itself, until a time
//! or until it unmutes. Its messages still count as unread; the mute is the participant's
//! own business (its events go to it alone).

use sea_orm::{ActiveModelTrait, ActiveValue::Set};

use super::{Store, access, conversations, entities::participant};
use crate::domain::{
    Caller, Error, View,
    conversations::Mute,
    events::{Audience, EventKind, EventPayload, NewEvent},
    views::ConversationView,
};

/// Mutes the conversation for the caller with `mute`, or unmutes it with `None`. A mute
/// replaces the one in force; unmuting what is not muted changes nothing.
pub async fn set(store: &Store, caller: &Caller, id: String, mute: Option<Mute>) -> Result<ConversationView, Error> {
    let unit_id = id.clone();
    store
        .write(caller, move |tx, caller| {
            Box::pin(async move {
                let record = access::load_visible(tx.conn(), caller, &unit_id).await?;
                let own = record.own_row(caller)?.clone();
                let before = Mute::in_force(own.muted, own.mute_expire_time, tx.now);
                if before == mute {
                    return Ok(());
                }
                let mut active: participant::ActiveModel = own.into();
                active.muted = Set(mute.is_some());
                active.mute_expire_time = Set(mute.and_then(|mute| mute.expire_time));
                active.update(tx.conn()).await?;
                let kind = if mute.is_some() { EventKind::ConversationMuted } else { EventKind::ConversationUnmuted };
                tx.emit(NewEvent {
                    kind,
                    conversation_id: Some(record.row.id.clone()),
                    audience: Audience::User(caller.user_id.clone()),
                    payload: EventPayload::Muted { conversation: Box::new(record.snapshot(false)?), mute },
                });
                Ok(())
            })
        })
        .await?;
    conversations::get(store, caller, &id, View::Basic).await
}
