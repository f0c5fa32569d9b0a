//! Unread counters, shared by the aggregates. A participant's `unread_count` is kept in
//! the transaction of every change that moves it (send, read, delete, join, role change)
//! and must always equal [`recount`]. The rule is `domain::unread::counts_for`:
//! [`readers_of`] applies it to one message, [`unread_messages`] is its query form (a test
//! below proves the two agree).

use std::collections::HashSet;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{
    Store, WriteTx, access,
    entities::{message, message_read, participant},
};
use crate::domain::{
    Error,
    unread::{MessageFacts, Reader, counts_for},
};

/// A participant whose stored counter differs from the recount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadDrift {
    /// The conversation.
    pub conversation_id: String,
    /// The participant.
    pub user_id: String,
    /// Its stored counter.
    pub stored: i64,
    /// What a recount from the messages gives.
    pub recounted: i64,
}

/// The messages of a conversation that count as unread for `reader`: the query form of
/// `counts_for`, with no read receipt of the reader.
pub(super) fn unread_messages(
    account_id: &str,
    conversation_id: &str,
    reader: Reader<'_>,
) -> sea_orm::Select<message::Entity> {
    let find = message::Entity::find()
        .filter(access::of_account::<message::Entity>(account_id))
        .filter(message::Column::ConversationId.eq(conversation_id))
        .filter(message::Column::SenderId.ne(reader.user_id))
        .filter(message::Column::DeleteTime.is_null())
        .filter(
            message::Column::Id.not_in_subquery(
                Query::select()
                    .column(message_read::Column::MessageId)
                    .from(message_read::Entity)
                    .and_where(Expr::col(message_read::Column::AccountId).eq(account_id))
                    .and_where(Expr::col(message_read::Column::ConversationId).eq(conversation_id))
                    .and_where(Expr::col(message_read::Column::UserId).eq(reader.user_id))
                    .to_owned(),
            ),
        );
    find.filter(access::visible_messages(reader.is_staff))
}

/// The participants for whom `message` counts (before any of them read it).
pub(super) fn readers_of(
    message: MessageFacts<'_>,
    participants: &[participant::Model],
    staff: &HashSet<String>,
) -> Vec<String> {
    participants
        .iter()
        .filter(|p| counts_for(message, Reader { user_id: &p.user_id, is_staff: staff.contains(&p.user_id) }))
        .map(|p| p.user_id.clone())
        .collect()
}

/// Counts, from the messages themselves, what `reader` has unread in a conversation.
pub(super) async fn recount<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    conversation_id: &str,
    reader: Reader<'_>,
) -> Result<i64, Error> {
    Ok(unread_messages(account_id, conversation_id, reader).count(conn).await? as i64)
}

/// Adds `delta` to the unread counters of `readers` in a conversation.
pub(super) async fn adjust(tx: &WriteTx, conversation_id: &str, readers: &[String], delta: i64) -> Result<(), Error> {
    if readers.is_empty() {
        return Ok(());
    }
    participant::Entity::update_many()
        .col_expr(participant::Column::UnreadCount, Expr::col(participant::Column::UnreadCount).add(delta))
        .filter(access::of_account::<participant::Entity>(tx.account_id()))
        .filter(participant::Column::ConversationId.eq(conversation_id))
        .filter(participant::Column::UserId.is_in(readers.to_vec()))
        .exec(tx.conn())
        .await?;
    Ok(())
}

/// Recounts every counter of one user (after its role changed what it may see; the unit
/// holds the role, see `access::hold_role`).
pub(super) async fn recount_user(tx: &WriteTx, user_id: &str) -> Result<(), Error> {
    let reader = Reader { user_id, is_staff: access::is_staff(tx.conn(), tx.account_id(), user_id).await? };
    let memberships = participant::Entity::find()
        .filter(access::of_account::<participant::Entity>(tx.account_id()))
        .filter(participant::Column::UserId.eq(user_id))
        .all(tx.conn())
        .await?;
    for membership in memberships {
        let unread = recount(tx.conn(), tx.account_id(), &membership.conversation_id, reader).await?;
        if unread != membership.unread_count {
            let mut active: participant::ActiveModel = membership.into();
            active.unread_count = Set(unread);
            access::save(tx.conn(), tx.account_id(), active).await?;
        }
    }
    Ok(())
}

/// Every participant of the account whose stored unread counter differs from a recount
/// from the messages. Empty when the counters are right, as they always should be.
pub async fn drift(store: &Store, account_id: &str) -> Result<Vec<UnreadDrift>, Error> {
    let participants =
        participant::Entity::find().filter(participant::Column::AccountId.eq(account_id)).all(&store.db).await?;
    let staff =
        access::staff_among(&store.db, account_id, participants.iter().map(|p| p.user_id.clone()).collect()).await?;
    let mut drift = Vec::new();
    for row in participants {
        let reader = Reader { user_id: &row.user_id, is_staff: staff.contains(&row.user_id) };
        let recounted = recount(&store.db, account_id, &row.conversation_id, reader).await?;
        if recounted != row.unread_count {
            drift.push(UnreadDrift {
                conversation_id: row.conversation_id,
                user_id: row.user_id,
                stored: row.unread_count,
                recounted,
            });
        }
    }
    Ok(drift)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};

    use super::*;
    use crate::store::entities::{account, conversation, user};

    async fn insert_user(store: &Store, id: &str, role: &str) {
        user::ActiveModel {
            id: Set(id.into()),
            account_id: Set("acc".into()),
            role: Set(role.into()),
            display_name: Set(id.into()),
            external_id: Set(None),
            email: Set(String::new()),
            phone: Set(String::new()),
            creator_id: Set(None),
            create_request_id: Set(None),
            request_fingerprint: Set(None),
            create_time: Set(0),
            update_time: Set(0),
            deactivate_time: Set(None),
            token_generation: Set(0),
            avatar_url: Set(String::new()),
            verified: Set(false),
            online: Set(false),
            last_seen_time: Set(None),
        }
        .insert(&store.db)
        .await
        .unwrap();
    }

    /// Every combination of sender, privacy, deletion and receipt: the query counts
    /// exactly the messages the domain rule counts.
    #[tokio::test]
    async fn the_query_counts_exactly_what_the_rule_counts() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        account::ActiveModel {
            id: Set("acc".into()),
            name: Set("a".into()),
            create_time: Set(0),
            conversation_count: Set(1),
            token_secret: Set(None),
            cursor_key: Set(String::new()),
            search_language: Set("simple".into()),
        }
        .insert(&store.db)
        .await
        .unwrap();
        insert_user(&store, "member", "member").await;
        insert_user(&store, "agent", "agent").await;
        conversation::ActiveModel {
            id: Set("conv".into()),
            account_id: Set("acc".into()),
            subject_kind: Set(String::new()),
            subject_external_id: Set(String::new()),
            subject_title: Set(String::new()),
            subject_image_url: Set(String::new()),
            subject_attributes: Set(None),
            metadata: Set("{}".into()),
            creator_id: Set("agent".into()),
            create_request_id: Set(None),
            request_fingerprint: Set(None),
            create_time: Set(0),
            update_time: Set(0),
            public_update_time: Set(0),
            message_sequence: Set(0),
            note_sequence: Set(0),
            note_count: Set(0),
            last_message_id: Set(None),
            last_public_message_id: Set(None),
            handle_time: Set(None),
            handler_id: Set(None),
        }
        .insert(&store.db)
        .await
        .unwrap();

        let mut facts = Vec::new();
        let mut number = 0;
        for sender in ["member", "agent"] {
            for private in [false, true] {
                for deleted in [false, true] {
                    for read_by in [None, Some("member"), Some("agent")] {
                        number += 1;
                        let id = format!("msg{number}");
                        insert_message(&store, &id, sender, private, deleted, number).await;
                        if let Some(reader) = read_by {
                            message_read::ActiveModel {
                                message_id: Set(id.clone()),
                                user_id: Set(reader.into()),
                                conversation_id: Set("conv".into()),
                                account_id: Set("acc".into()),
                                read_time: Set(1),
                            }
                            .insert(&store.db)
                            .await
                            .unwrap();
                        }
                        facts.push((sender, private, deleted, read_by));
                    }
                }
            }
        }

        for (user_id, is_staff) in [("member", false), ("agent", true)] {
            let reader = Reader { user_id, is_staff };
            let expected = facts
                .iter()
                .filter(|(sender, private, deleted, read_by)| {
                    counts_for(MessageFacts { sender_id: sender, private: *private, deleted: *deleted }, reader)
                        && *read_by != Some(user_id)
                })
                .count() as i64;
            assert!(expected > 0);
            assert_eq!(recount(&store.db, "acc", "conv", reader).await.unwrap(), expected, "{user_id}");
        }
    }

    async fn insert_message(store: &Store, id: &str, sender: &str, private: bool, deleted: bool, sequence: i64) {
        message::ActiveModel {
            id: Set(id.into()),
            account_id: Set("acc".into()),
            conversation_id: Set("conv".into()),
            sequence: Set(sequence),
            note_sequence: Set(0),
            sender_id: Set(sender.into()),
            kind: Set("text".into()),
            content: Set("x".into()),
            content_type: Set("text".into()),
            content_attributes: Set(None),
            private: Set(private),
            direction: Set("incoming".into()),
            metadata: Set("{}".into()),
            send_request_id: Set(None),
            request_fingerprint: Set(None),
            create_time: Set(sequence),
            edit_time: Set(None),
            delete_time: Set(deleted.then_some(1)),
            ..Default::default()
        }
        .insert(&store.db)
        .await
        .unwrap();
    }
}
