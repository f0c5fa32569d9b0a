//! Participants: add one (staff), remove one (staff anyone, a member itself), and which
//! conversations a user takes part in.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{
    Store, WriteTx,
    access::{self, ConversationRecord, participant_from_row},
    conversations,
    door::InConversation,
    entities::{conversation, participant},
    notifications, scheduled, unread,
};
use crate::domain::{
    Caller, Error, View,
    conversations::{NewParticipant, may_remove},
    events::{Audience, EventKind, EventPayload, Membership, NewEvent},
    notifications::{Notice, NotificationKind},
    unread::Reader,
    views::ConversationView,
};

/// NOT_FOUND unless the caller may see the conversation; FAILED_PRECONDITION unless it
/// takes part (staff may see without taking part).
pub async fn ensure_taking_part(store: &Store, caller: &Caller, conversation_id: &str) -> Result<(), Error> {
    let record = access::load_visible(&store.db, caller, conversation_id).await?;
    record.own_row(caller).map(|_| ())
}

/// The conversations `user_id` takes part in now, for a stream to follow.
pub async fn membership(store: &Store, account_id: &str, user_id: &str) -> Result<Membership, Error> {
    let ids: Vec<String> = participant::Entity::find()
        .select_only()
        .column(participant::Column::ConversationId)
        .filter(access::of_account::<participant::Entity>(account_id))
        .filter(participant::Column::UserId.eq(user_id))
        .into_tuple()
        .all(&store.db)
        .await?;
    Ok(Membership::new(ids))
}

/// Adds a participant; its unread counter starts at what it may already read.
pub async fn add(store: &Store, caller: &Caller, id: String, new: NewParticipant) -> Result<ConversationView, Error> {
    caller.require_staff("add participants")?;
    let unit_id = id.clone();
    store
        .write_in(caller, InConversation::new(caller, &id), move |tx, caller, mut record| {
            Box::pin(async move {
                let id = unit_id;
                if record.participant(&new.user_id).is_some() {
                    return Err(Error::AlreadyExists(format!(
                        "user {} already takes part in conversation {id}",
                        new.user_id
                    )));
                }
                access::check_users_exist(tx.conn(), &caller.account_id, &[&new.user_id], |_| {
                    "participant.user_id".into()
                })
                .await?;
                let reader = Reader {
                    user_id: &new.user_id,
                    is_staff: access::is_staff_held(tx.conn(), &caller.account_id, &new.user_id).await?,
                };
                let unread_count = unread::recount(tx.conn(), &caller.account_id, &id, reader).await?;
                let joined = participant::ActiveModel {
                    conversation_id: Set(id.clone()),
                    user_id: Set(new.user_id.clone()),
                    account_id: Set(caller.account_id.clone()),
                    label: Set(new.label),
                    archived: Set(false),
                    unread_count: Set(unread_count),
                    join_time: Set(tx.now),
                    muted: Set(false),
                    mute_expire_time: Set(None),
                }
                .insert(tx.conn())
                .await?;
                touch(tx, &mut record).await?;
                record.participants.push(joined.clone());
                emit(tx, EventKind::ParticipantAdded, &record, &joined, Audience::Conversation)?;
                if joined.user_id != caller.user_id {
                    let added = NotificationKind::AddedToConversation;
                    let title = &record.row.subject_title;
                    let notice = Notice::conversation(&joined.user_id, &caller.user_id, added, &record.row.id, title);
                    notifications::notify(tx, vec![notice]).await?;
                }
                Ok(())
            })
        })
        .await?;
    conversations::get(store, caller, &id, View::Basic).await
}

/// Removes a participant. A member that removed itself may no longer see the
/// conversation, so it gets the conversation as it left it.
pub async fn remove(store: &Store, caller: &Caller, id: String, user_id: String) -> Result<ConversationView, Error> {
    may_remove(caller, &user_id)?;
    let unit_id = id.clone();
    let left = store
        .write_in(caller, InConversation::new(caller, &id), move |tx, caller, mut record| {
            Box::pin(async move {
                let id = unit_id;
                let gone = record
                    .participant(&user_id)
                    .cloned()
                    .ok_or_else(|| Error::not_found("participant", format!("{user_id} of conversation {id}")))?;
                participant::Entity::delete_by_id((id.clone(), user_id.clone()))
                    .filter(access::of_account::<participant::Entity>(&caller.account_id))
                    .exec(tx.conn())
                    .await?;
                record.participants.retain(|p| p.user_id != user_id);
                touch(tx, &mut record).await?;
                // Staff may still write to it; a member's scheduled messages there cannot be sent.
                if !access::is_staff(tx.conn(), &caller.account_id, &user_id).await? {
                    notifications::forget_conversation(tx, &id, Some(&user_id)).await?;
                    scheduled::strand(tx, &id, Some(&user_id), &scheduled::left_reason(&id)).await?;
                }
                emit(tx, EventKind::ParticipantRemoved, &record, &gone, Audience::ConversationAnd(user_id.clone()))?;
                // A caller that removed itself may no longer see the conversation.
                let left = record.ensure_visible(caller).is_err();
                left.then(|| record.snapshot(false)).transpose()
            })
        })
        .await?;
    match left {
        Some(snapshot) => Ok(ConversationView::from(snapshot)),
        None => conversations::get(store, caller, &id, View::Basic).await,
    }
}

/// Marks the conversation changed now, for everyone.
async fn touch(tx: &WriteTx, record: &mut ConversationRecord) -> Result<(), Error> {
    let mut active: conversation::ActiveModel = record.row.clone().into();
    active.update_time = Set(tx.now);
    active.public_update_time = Set(tx.now);
    record.row = access::save(tx.conn(), tx.account_id(), active).await?;
    Ok(())
}

fn emit(
    tx: &mut WriteTx,
    kind: EventKind,
    record: &ConversationRecord,
    changed: &participant::Model,
    audience: Audience,
) -> Result<(), Error> {
    tx.emit(NewEvent {
        kind,
        conversation_id: Some(record.row.id.clone()),
        audience,
        payload: EventPayload::ParticipantChange {
            participant: participant_from_row(changed),
            conversation: Box::new(record.snapshot(false)?),
        },
    });
    Ok(())
}
