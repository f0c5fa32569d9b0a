//! Notifications: each user's feed, written in the unit of the change that causes it (a
//! send, a create, a join, a resolution, a failed delivery), so that a committed change
//! has its notifications and a rolled-back one has none, without a second pass over the
//! log. Each notice emits a NOTIFICATION event to its user alone, with the user's counts
//! after the unit, so that a client's badges follow without another call.
//!
//! Coalescing: an unread notice with a key (`Notice::coalesce_key`) grows the unread
//! notification with that key instead of making another; reading a notification clears
//! its key, so the next notice starts a new one.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::{Listing, Store, WriteTx, columns, entities::notification};
use crate::domain::{
    Caller, Error,
    events::{Audience, EventKind, EventPayload, NewEvent},
    ids,
    messages::Message,
    notifications::{
        Notice, Notification, NotificationCount, NotificationKind, NotificationQuery, is_own, message_summary,
    },
    paging::Page,
};

/// Makes (or grows) each notice's notification and tells its user: one upsert for every
/// notice, then one read of every notified user's counts, whatever the number of readers.
pub(super) async fn notify(tx: &mut WriteTx, mut notices: Vec<Notice>) -> Result<(), Error> {
    if notices.is_empty() {
        return Ok(());
    }
    // One order for the rows every unit locks, so that two units never wait on each other.
    notices.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    let mut rows = Vec::with_capacity(notices.len());
    for round in rounds(notices) {
        rows.extend(upsert(tx, round).await?);
    }
    rows.sort_by(|a, b| (&a.user_id, &a.id).cmp(&(&b.user_id, &b.id)));
    let mut users: Vec<&str> = rows.iter().map(|row| row.user_id.as_str()).collect();
    users.dedup();
    let mut counts = HashMap::new();
    // SQLite takes at most 500 terms in one compound SELECT.
    for some in users.chunks(COUNTED_AT_ONCE) {
        counts.extend(counts_in(tx.conn(), tx.account_id(), some).await?);
    }
    for row in rows {
        let user_id = row.user_id.clone();
        let count = counts.remove(&user_id).unwrap_or_default();
        emit(tx, &user_id, Some(notification_from_row(row)?), count);
        // A user notified twice in one unit: its later events carry the same counts.
        counts.entry(user_id).or_insert(count);
    }
    Ok(())
}

/// Users whose counts one statement reads.
const COUNTED_AT_ONCE: usize = 400;

/// `notices` in rounds that each grow a notification at most once: one upsert may not
/// touch a row twice (a unit notifying a user twice under one key takes two rounds).
fn rounds(notices: Vec<Notice>) -> Vec<Vec<Notice>> {
    let mut rounds: Vec<Vec<Notice>> = Vec::new();
    for notice in notices {
        let key = notice.coalesce_key();
        let clashes = |round: &Vec<Notice>| {
            key.is_some() && round.iter().any(|other| other.user_id == notice.user_id && other.coalesce_key() == key)
        };
        match rounds.iter_mut().find(|round| !clashes(round)) {
            Some(round) => round.push(notice),
            None => rounds.push(vec![notice]),
        }
    }
    rounds
}

/// Inserts each notice's notification, or grows the unread one with its key (its count,
/// what it shows, its time): one statement for all; the rows as they are now.
async fn upsert(tx: &WriteTx, notices: Vec<Notice>) -> Result<Vec<notification::Model>, Error> {
    use notification::Column;
    let rows = notices.into_iter().map(|notice| {
        let key = notice.coalesce_key();
        notification::ActiveModel {
            id: Set(ids::new_id(ids::NOTIFICATION)),
            account_id: Set(tx.account_id().to_owned()),
            user_id: Set(notice.user_id),
            kind: Set(notice.kind.as_str().to_owned()),
            conversation_id: Set(notice.conversation_id),
            actor_id: Set(notice.actor_id),
            message_id: Set(notice.message_id),
            report_id: Set(notice.report_id),
            count: Set(1),
            summary: Set(notice.summary),
            coalesce_key: Set(key),
            read_time: Set(None),
            create_time: Set(tx.now),
            update_time: Set(tx.now),
        }
    });
    // A read notification has no key (reading clears it), and NULLs never clash: only an
    // unread one with the key grows.
    let grow = OnConflict::columns([Column::AccountId, Column::UserId, Column::CoalesceKey])
        .value(Column::Count, Expr::col((notification::Entity, Column::Count)).add(1))
        .update_columns([Column::ActorId, Column::MessageId, Column::Summary, Column::UpdateTime])
        .to_owned();
    Ok(notification::Entity::insert_many(rows).on_conflict(grow).exec_with_returning(tx.conn()).await?)
}

fn emit(tx: &mut WriteTx, user_id: &str, notification: Option<Notification>, count: NotificationCount) {
    tx.emit(NewEvent {
        kind: EventKind::Notification,
        conversation_id: notification.as_ref().and_then(|n| n.conversation_id.clone()),
        audience: Audience::User(user_id.to_owned()),
        payload: EventPayload::Notification { notification: notification.map(Box::new), count },
    });
}

/// Makes the new-message notifications that show `message` say what it says now: an
/// edit shows, and a deleted message (removed after a report, say) no longer does. Their
/// users still take part (see [`forget_conversation`]), so they may read it.
pub(super) async fn restate(tx: &WriteTx, message: &Message) -> Result<(), Error> {
    notification::Entity::update_many()
        .col_expr(notification::Column::Summary, message_summary(message).into())
        .filter(notification::Column::AccountId.eq(tx.account_id()))
        .filter(notification::Column::MessageId.eq(&message.id))
        .filter(notification::Column::Kind.eq(NotificationKind::NewMessage.as_str()))
        .exec(tx.conn())
        .await?;
    Ok(())
}

/// Deletes the notifications that show a conversation's content (its messages, its
/// start, a join) once their user may no longer see it: all of them when it is deleted,
/// or `user_id`'s when that member leaves. What concerns the user's own doing there (its
/// report resolved, its scheduled message failed) stays.
pub(super) async fn forget_conversation(
    tx: &WriteTx,
    conversation_id: &str,
    user_id: Option<&str>,
) -> Result<(), Error> {
    let showing_content =
        [NotificationKind::NewMessage, NotificationKind::ConversationStarted, NotificationKind::AddedToConversation];
    let mut delete = notification::Entity::delete_many()
        .filter(notification::Column::AccountId.eq(tx.account_id()))
        .filter(notification::Column::ConversationId.eq(conversation_id))
        .filter(notification::Column::Kind.is_in(showing_content.map(NotificationKind::as_str)));
    if let Some(user_id) = user_id {
        delete = delete.filter(notification::Column::UserId.eq(user_id));
    }
    delete.exec(tx.conn()).await?;
    Ok(())
}

/// Each of `user_ids`' counts, as of `conn`, in one statement (a send runs it once for all
/// its readers). Unread messages count as GetUnreadCount does: archived conversations not.
async fn counts_in<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    user_ids: &[&str],
) -> Result<HashMap<String, NotificationCount>, Error> {
    let backend = conn.get_database_backend();
    let parameter = |n: usize| if backend == DbBackend::Postgres { format!("${n}") } else { format!("?{n}") };
    // The users as rows (`VALUES` cannot name its column on SQLite).
    let users = (0..user_ids.len())
        .map(|index| format!("SELECT CAST({} AS TEXT) AS user_id", parameter(index + 2)))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
    let sql = format!(
        "SELECT users.user_id AS user_id, (SELECT COUNT(*) FROM notifications WHERE account_id = {account} \
         AND user_id = users.user_id AND read_time IS NULL) AS unread_notifications, \
         (SELECT CAST(COALESCE(SUM(unread_count), 0) AS BIGINT) FROM participants WHERE account_id = {account} \
         AND user_id = users.user_id AND archived = {no}) AS unread_messages FROM ({users}) AS users",
        account = parameter(1),
        no = if backend == DbBackend::Postgres { "false" } else { "0" },
    );
    let values = std::iter::once(account_id.into()).chain(user_ids.iter().map(|user_id| (*user_id).into()));
    let rows = conn.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    // Read by name: a row's columns need not come back in the order selected.
    rows.iter()
        .map(|row| {
            let count = NotificationCount {
                unread_notifications: row.try_get::<i64>("", "unread_notifications")?,
                unread_messages: row.try_get::<i64>("", "unread_messages")?,
            };
            Ok((row.try_get::<String>("", "user_id")?, count))
        })
        .collect()
}

/// One user's counts, as of `conn`.
async fn count_in<C: ConnectionTrait>(conn: &C, account_id: &str, user_id: &str) -> Result<NotificationCount, Error> {
    counts_in(conn, account_id, &[user_id])
        .await?
        .remove(user_id)
        .ok_or_else(|| Error::Internal("counting notifications returned no row".into()))
}

/// The caller's counts.
pub async fn count(store: &Store, caller: &Caller) -> Result<NotificationCount, Error> {
    count_in(&store.db, &caller.account_id, &caller.user_id).await
}

/// The caller's notifications, newest first (by when they last grew).
pub async fn list(
    store: &Store,
    caller: &Caller,
    query: NotificationQuery,
    page: &Page<(i64, String)>,
) -> Result<Listing<Notification>, Error> {
    let mut find = notification::Entity::find()
        .filter(notification::Column::AccountId.eq(&caller.account_id))
        .filter(notification::Column::UserId.eq(&caller.user_id));
    if query.unread_only {
        find = find.filter(notification::Column::ReadTime.is_null());
    }
    let total = find.clone().count(&store.db).await?;
    let (time, id) = (notification::Column::UpdateTime, notification::Column::Id);
    if let Some((after_time, after_id)) = &page.after {
        find = find.filter(time.lt(*after_time).or(time.eq(*after_time).and(id.lt(after_id))));
    }
    let rows = find.order_by_desc(time).order_by_desc(id).limit(page.fetch_limit()).all(&store.db).await?;
    let (rows, next_page_token) = page.finish(rows, |row| (row.update_time, row.id.clone()));
    let items = rows.into_iter().map(notification_from_row).collect::<Result<_, _>>()?;
    Ok(Listing { items, next_page_token, total })
}

/// Marks one of the caller's notifications read (again: no change). Another user's is
/// NOT_FOUND.
pub async fn mark_read(store: &Store, caller: &Caller, id: String) -> Result<Notification, Error> {
    store
        .write(caller, move |tx, caller| {
            Box::pin(async move {
                let row = notification::Entity::find_by_id(&id)
                    .filter(notification::Column::AccountId.eq(&caller.account_id))
                    .one(tx.conn())
                    .await?
                    .filter(|row| is_own(caller, &row.user_id))
                    .ok_or_else(|| Error::not_found("notification", &id))?;
                if row.read_time.is_some() {
                    return notification_from_row(row);
                }
                let mut active: notification::ActiveModel = row.into();
                active.read_time = Set(Some(tx.now));
                active.coalesce_key = Set(None);
                let row = super::access::save(tx.conn(), tx.account_id(), active).await?;
                let count = count_in(tx.conn(), &caller.account_id, &caller.user_id).await?;
                emit(tx, &caller.user_id, None, count);
                notification_from_row(row)
            })
        })
        .await
}

/// Marks every unread notification of the caller read; how many were.
pub async fn mark_all_read(store: &Store, caller: &Caller) -> Result<u64, Error> {
    store
        .write(caller, move |tx, caller| {
            Box::pin(async move {
                let marked = notification::Entity::update_many()
                    .col_expr(notification::Column::ReadTime, tx.now.into())
                    .col_expr(notification::Column::CoalesceKey, Option::<String>::None.into())
                    .filter(notification::Column::AccountId.eq(&caller.account_id))
                    .filter(notification::Column::UserId.eq(&caller.user_id))
                    .filter(notification::Column::ReadTime.is_null())
                    .exec(tx.conn())
                    .await?
                    .rows_affected;
                if marked > 0 {
                    let count = count_in(tx.conn(), &caller.account_id, &caller.user_id).await?;
                    emit(tx, &caller.user_id, None, count);
                }
                Ok(marked)
            })
        })
        .await
}

fn notification_from_row(row: notification::Model) -> Result<Notification, Error> {
    Ok(Notification {
        kind: columns::stored("notification kind", &row.kind)?,
        id: row.id,
        conversation_id: row.conversation_id,
        actor_id: row.actor_id,
        message_id: row.message_id,
        report_id: row.report_id,
        count: row.count,
        summary: row.summary,
        read_time: row.read_time,
        create_time: row.create_time,
        update_time: row.update_time,
    })
}
