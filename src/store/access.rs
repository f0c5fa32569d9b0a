//! Access, shared by the aggregates: load a conversation with its participants (or a
//! message with its conversation) and decide whether the caller may see it, by the rule in
//! `domain::conversations::can_view`. What a caller may not see is NOT_FOUND, never told
//! apart from what does not exist.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use strum::IntoEnumIterator;

use super::{
    columns,
    entities::{conversation, message, participant, user},
};
use crate::domain::{
    Caller, Error,
    conversations::{Conversation, Participant, Subject, can_view},
    handling::Handling,
    messages::{sees_notes, visible_to},
    users::Role,
};

/// A conversation row with its participant rows, as read in one place.
#[derive(Debug, Clone)]
pub struct ConversationRecord {
    pub row: conversation::Model,
    /// In join order.
    pub participants: Vec<participant::Model>,
}

impl ConversationRecord {
    /// The row of `user_id`, when it takes part.
    pub fn participant(&self, user_id: &str) -> Option<&participant::Model> {
        self.participants.iter().find(|p| p.user_id == user_id)
    }

    /// The user ids of every participant.
    pub fn participant_ids(&self) -> Vec<String> {
        self.participants.iter().map(|p| p.user_id.clone()).collect()
    }

    /// The conversation as events carry it. `staff_view` shows the update time that
    /// private notes move too; everyone else sees the public one.
    pub fn snapshot(&self, staff_view: bool) -> Result<Conversation, Error> {
        Ok(Conversation {
            id: self.row.id.clone(),
            account_id: self.row.account_id.clone(),
            subject: Subject {
                kind: self.row.subject_kind.clone(),
                external_id: self.row.subject_external_id.clone(),
                title: self.row.subject_title.clone(),
                image_url: self.row.subject_image_url.clone(),
                attributes: columns::attributes_from_column(self.row.subject_attributes.as_deref())?,
            },
            metadata: columns::metadata_from_column(&self.row.metadata)?,
            participants: self.participants.iter().map(participant_from_row).collect(),
            create_time: self.row.create_time,
            update_time: if staff_view { self.row.update_time } else { self.row.public_update_time },
            handled: Handling::from_columns(self.row.handle_time, self.row.handler_id.clone()).filter(|_| staff_view),
        })
    }

    /// Whether `caller` may see the conversation: NOT_FOUND otherwise.
    pub fn ensure_visible(&self, caller: &Caller) -> Result<(), Error> {
        if can_view(caller, &self.row.account_id, self.participant(&caller.user_id).is_some()) {
            Ok(())
        } else {
            Err(Error::not_found("conversation", &self.row.id))
        }
    }

    /// The caller's own participant row, or FAILED_PRECONDITION for a caller (staff) that
    /// sees the conversation without taking part.
    pub fn own_row(&self, caller: &Caller) -> Result<&participant::Model, Error> {
        self.participant(&caller.user_id).ok_or_else(|| {
            Error::FailedPrecondition(format!("the caller does not take part in conversation {}", self.row.id))
        })
    }
}

pub fn participant_from_row(row: &participant::Model) -> Participant {
    Participant { user_id: row.user_id.clone(), label: row.label.clone(), join_time: row.join_time }
}

/// Reads a conversation and its participants, or NOT_FOUND when `caller` may not see it.
/// It locks nothing: a unit that changes the conversation names it to the door
/// (`door::InConversation`), which locks it first.
pub async fn load_visible<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: &str,
) -> Result<ConversationRecord, Error> {
    let record = load_with_participants(conn, &caller.account_id, id)
        .await?
        .ok_or_else(|| Error::not_found("conversation", id))?;
    record.ensure_visible(caller)?;
    Ok(record)
}

/// Conversation `id` of the account with its participants in join order: one row per
/// participant, the conversation's columns prefixed `c_`, the participant's `p_`.
async fn load_with_participants<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    id: &str,
) -> Result<Option<ConversationRecord>, Error> {
    use sea_orm::{
        FromQueryResult,
        sea_query::{Expr, ExprTrait, JoinType, Query},
    };
    let mut select = Query::select();
    columns::select_prefixed::<conversation::Entity>(&mut select, "c_");
    columns::select_prefixed::<participant::Entity>(&mut select, "p_");
    let joined = Expr::col((participant::Entity, participant::Column::AccountId))
        .equals((conversation::Entity, conversation::Column::AccountId))
        .and(
            Expr::col((participant::Entity, participant::Column::ConversationId))
                .equals((conversation::Entity, conversation::Column::Id)),
        );
    select
        .from(conversation::Entity)
        .join(JoinType::LeftJoin, participant::Entity, joined)
        .and_where(of_account::<conversation::Entity>(account_id))
        .and_where(Expr::col((conversation::Entity, conversation::Column::Id)).eq(id))
        .order_by((participant::Entity, participant::Column::JoinTime), sea_orm::Order::Asc)
        .order_by((participant::Entity, participant::Column::UserId), sea_orm::Order::Asc);
    let rows = conn.query_all(&select).await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let row = conversation::Model::from_query_result(first, "c_")?;
    let mut participants = Vec::with_capacity(rows.len());
    for joined in &rows {
        // A conversation without participants has one row, its participant columns NULL.
        if joined.try_get::<Option<String>>("", "p_user_id")?.is_some() {
            participants.push(participant::Model::from_query_result(joined, "p_")?);
        }
    }
    Ok(Some(ConversationRecord { row, participants }))
}

/// For a listing filtered to conversation `id` that found nothing on its first page:
/// NOT_FOUND when `caller` may not see the conversation (as every RPC naming one answers),
/// rather than an empty page that tells nothing apart. A page with items needs no check:
/// what a listing shows a caller is the caller's own (its reports, its scheduled messages,
/// also where it no longer takes part).
pub async fn ensure_filter_visible(
    db: &DatabaseConnection,
    caller: &Caller,
    id: &str,
    found_nothing: bool,
) -> Result<(), Error> {
    if found_nothing {
        load_visible(db, caller, id).await?;
    }
    Ok(())
}

/// The advisory locks of conversations, apart from every other advisory lock (the
/// migrations' takes a single 64-bit key, a space of its own).
const CONVERSATION_LOCKS: i32 = 0x4d73_7643;

/// Locks conversation `id` until the transaction ends (PostgreSQL; SQLite's writers hold
/// the whole file). Only the door takes it (`WriteTx::hold_conversation`), before a unit's
/// body runs: see `door.rs` for why it must come first.
pub(super) async fn lock_conversation<C: ConnectionTrait>(conn: &C, id: &str) -> Result<(), Error> {
    advisory_locks(conn, "SELECT pg_advisory_xact_lock($1, hashtext($2))", [CONVERSATION_LOCKS.into(), id.into()]).await
}

/// The request id `claimed` ([`request_claim`]), then conversation `id`, locked in
/// one statement, in that order. The locks read no table: a read in this statement would
/// see the data as it was before the locks were waited for.
pub(super) async fn claim_and_lock<C: ConnectionTrait>(conn: &C, claimed: &str, id: &str) -> Result<(), Error> {
    // VALUES … ORDER BY: the locks are taken in the rows' order, after sorting.
    let sql = "SELECT pg_advisory_xact_lock(locks.space, hashtext(locks.name)) \
               FROM (VALUES (1, $1::integer, $2::text), (2, $3::integer, $4::text)) AS locks(n, space, name) \
               ORDER BY locks.n";
    let values = [REQUEST_LOCKS.into(), claimed.into(), CONVERSATION_LOCKS.into(), id.into()];
    advisory_locks(conn, sql, values).await
}

/// Runs `sql`, a statement taking transaction advisory locks, on PostgreSQL; nothing on
/// SQLite, whose writers hold the whole file.
async fn advisory_locks<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: impl IntoIterator<Item = sea_orm::Value>,
) -> Result<(), Error> {
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        conn.execute_raw(sea_orm::Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, sql, values)).await?;
    }
    Ok(())
}

/// The advisory locks of files' bytes, apart from the others.
const FILE_LOCKS: i32 = 0x4d73_7646;

/// Locks the bytes of these digests in `account_id` until the transaction ends
/// (PostgreSQL): shared by a unit that names them, exclusive by one that may drop them, so
/// that bytes are never dropped while another unit names them (`files`). A lock covers
/// every digest of its stripe (its first two hex digits), so that a unit dropping many
/// files takes at most 256 locks; they are taken in one order.
pub(super) async fn lock_files<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    digests: &[String],
    exclusive: bool,
) -> Result<(), Error> {
    let stripes: std::collections::BTreeSet<String> =
        digests.iter().map(|digest| format!("{account_id}/{}", digest.get(..2).unwrap_or(digest))).collect();
    if stripes.is_empty() {
        return Ok(());
    }
    let lock = if exclusive { "pg_advisory_xact_lock" } else { "pg_advisory_xact_lock_shared" };
    let rows: Vec<String> = (0..stripes.len()).map(|n| format!("(${})", n + 2)).collect();
    let sql = format!(
        "SELECT {lock}($1, hashtext(stripes.name)) FROM (VALUES {}) AS stripes(name) ORDER BY stripes.name",
        rows.join(", ")
    );
    let values = std::iter::once(FILE_LOCKS.into()).chain(stripes.into_iter().map(sea_orm::Value::from));
    advisory_locks(conn, &sql, values).await
}

/// The advisory locks of request ids, apart from the conversations'.
const REQUEST_LOCKS: i32 = 0x4d73_7652;

/// Holds the request id `id` of user `user_id` for creates of `resource` (the id's scope:
/// "user", "conversation", "template", "message") until the unit's transaction ends, on
/// PostgreSQL (SQLite's writer runs one unit at a time). Without it, retries of one
/// create running at once on several writer lanes each found no earlier result, each
/// inserted, and all but one met the unique index: ALREADY_EXISTS, where AIP-155 promises
/// every retry the first result. With it a retry waits for the first attempt to end, then
/// finds what it made. An advisory lock takes no transaction id, so it may come before a
/// conversation's lock ([`lock_conversation`]); it is taken before any other lock.
pub async fn claim_request_id<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    user_id: &str,
    resource: &str,
    id: &str,
) -> Result<(), Error> {
    let claimed = claim_name(account_id, user_id, resource, id);
    advisory_locks(conn, "SELECT pg_advisory_xact_lock($1, hashtext($2))", [REQUEST_LOCKS.into(), claimed.into()]).await
}

/// The name `caller`'s request id is claimed by ([`claim_request_id`]).
pub(super) fn request_claim(caller: &Caller, resource: &str, request_id: &str) -> String {
    claim_name(&caller.account_id, &caller.user_id, resource, request_id)
}

/// One name per (account, user, resource, request id): both ways of claiming one must
/// take the same lock.
fn claim_name(account_id: &str, user_id: &str, resource: &str, request_id: &str) -> String {
    format!("{account_id}/{user_id}/{resource}/{request_id}")
}

/// Reads conversations by id, in the order of `ids` (missing ones left out), with no
/// visibility check: for listings whose query already applied it.
pub async fn load_many<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    ids: &[String],
) -> Result<Vec<ConversationRecord>, Error> {
    let mut rows: HashMap<String, conversation::Model> = conversation::Entity::find()
        .filter(of_account::<conversation::Entity>(account_id))
        .filter(conversation::Column::Id.is_in(ids.to_vec()))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| (row.id.clone(), row))
        .collect();
    let mut participants: HashMap<String, Vec<participant::Model>> = HashMap::new();
    for row in participants_of(conn, account_id, ids).await? {
        participants.entry(row.conversation_id.clone()).or_default().push(row);
    }
    Ok(ids
        .iter()
        .filter_map(|id| {
            let row = rows.remove(id)?;
            Some(ConversationRecord { participants: participants.remove(id).unwrap_or_default(), row })
        })
        .collect())
}

async fn participants_of<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    conversation_ids: &[String],
) -> Result<Vec<participant::Model>, Error> {
    Ok(participant::Entity::find()
        .filter(of_account::<participant::Entity>(account_id))
        .filter(participant::Column::ConversationId.is_in(conversation_ids.to_vec()))
        .order_by_asc(participant::Column::JoinTime)
        .order_by_asc(participant::Column::UserId)
        .all(conn)
        .await?)
}

/// Reads a message `caller` may see, with its conversation: NOT_FOUND otherwise (a
/// member never learns that a private note exists). It locks nothing (see
/// `door::OfMessage`).
pub async fn load_message<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: &str,
) -> Result<(message::Model, ConversationRecord), Error> {
    let row = find_in_account::<message::Entity, _>(conn, "message", id, &caller.account_id).await?;
    let record = load_visible(conn, caller, &row.conversation_id).await.map_err(|err| match err {
        Error::NotFound { .. } => Error::not_found("message", id),
        other => other,
    })?;
    if !visible_to(row.private, caller.is_staff()) {
        return Err(Error::not_found("message", id));
    }
    Ok((row, record))
}

/// The messages a viewer may see, by `domain::messages::visible_to` ("private notes are for
/// staff"): the rule's SQL form, which a test below proves equal to it.
pub fn visible_messages(viewer_is_staff: bool) -> Condition {
    if sees_notes(viewer_is_staff) {
        Condition::all()
    } else {
        Condition::all().add(message::Column::Private.eq(false))
    }
}

/// The conversations `caller` takes part in: for a member, those it may see
/// (`domain::conversations::can_view`, as a subquery; staff see their whole account).
pub fn taking_part(caller: &Caller) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    Query::select()
        .column((participant::Entity, participant::Column::ConversationId))
        .from(participant::Entity)
        .and_where(of_account::<participant::Entity>(&caller.account_id))
        .and_where(Expr::col((participant::Entity, participant::Column::UserId)).eq(caller.user_id.clone()))
        .to_owned()
}

/// The ids of the staff among `user_ids`, by their role as stored now.
pub async fn staff_among<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    mut ids: Vec<String>,
) -> Result<HashSet<String>, Error> {
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let staff_roles: Vec<&str> = Role::iter().filter(|role| role.is_staff()).map(Role::as_str).collect();
    let rows: Vec<String> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(of_account::<user::Entity>(account_id))
        .filter(user::Column::Id.is_in(ids))
        .filter(user::Column::Role.is_in(staff_roles))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Whether `user_id` is staff as stored now (not as it was when its key was checked).
pub async fn is_staff<C: ConnectionTrait>(conn: &C, account_id: &str, user_id: &str) -> Result<bool, Error> {
    Ok(!staff_among(conn, account_id, vec![user_id.to_owned()]).await?.is_empty())
}

/// The advisory locks of users' roles, apart from every other advisory lock.
const ROLE_LOCKS: i32 = 0x4d73_7672;

/// The ids of the staff among `user_ids`, read in a unit that counts unread messages by
/// role (a send, a deletion, a read, a join), with each user's role held until commit: a
/// shared advisory lock per user, which a role change ([`hold_role`]) takes exclusively.
/// So a role change and such a unit never overlap: either the unit counted by the old role
/// and committed before the role change recounts, or it waits and reads the new role.
/// (Locking the user's conversations instead took one lock per conversation, and an
/// agent in thousands of them could exhaust PostgreSQL's lock table.)
pub async fn staff_held(
    tx: &DatabaseTransaction,
    account_id: &str,
    ids: Vec<String>,
) -> Result<HashSet<String>, Error> {
    if !ids.is_empty() {
        let places: Vec<String> = (2..ids.len() + 2).map(|n| format!("(${n})")).collect();
        let sql = format!(
            "SELECT pg_advisory_xact_lock_shared($1, hashtext(u)) FROM (VALUES {}) AS held(u)",
            places.join(", ")
        );
        let values = std::iter::once(ROLE_LOCKS.into()).chain(ids.iter().map(|id| id.as_str().into()));
        advisory_locks(tx, &sql, values).await?;
    }
    staff_among(tx, account_id, ids).await
}

/// Whether `user_id` is staff, its role held as [`staff_held`] holds roles.
pub async fn is_staff_held(tx: &DatabaseTransaction, account_id: &str, user_id: &str) -> Result<bool, Error> {
    Ok(!staff_held(tx, account_id, vec![user_id.to_owned()]).await?.is_empty())
}

/// Holds `user_id`'s role for a change of it: waits for every unit counting by it to end,
/// and holds off new ones until commit (see [`staff_held`]). An advisory lock, taken before
/// the unit's first write, as a conversation's is.
pub async fn hold_role<C: ConnectionTrait>(conn: &C, user_id: &str) -> Result<(), Error> {
    advisory_locks(conn, "SELECT pg_advisory_xact_lock($1, hashtext($2))", [ROLE_LOCKS.into(), user_id.into()]).await
}

/// User `id` of `account_id`, as stored; NOT_FOUND when the account has no such user.
pub async fn user_in<C: ConnectionTrait>(conn: &C, account_id: &str, id: &str) -> Result<user::Model, Error> {
    find_in_account::<user::Entity, _>(conn, "user", id, account_id).await
}

/// [`user_in`], its row locked until the unit commits: changes to one user run one after
/// another, each seeing what the last one left (its role, its token generation).
pub async fn hold_user(tx: &DatabaseTransaction, account_id: &str, id: &str) -> Result<user::Model, Error> {
    let find = user::Entity::find_by_id(id.to_owned()).filter(of_account::<user::Entity>(account_id));
    find.lock_exclusive().one(tx).await?.ok_or_else(|| Error::not_found("user", id))
}

/// Reads one row by primary key within the caller's account, or NOT_FOUND.
pub async fn find_in_account<E, C>(conn: &C, kind: &'static str, id: &str, account_id: &str) -> Result<E::Model, Error>
where
    E: EntityTrait,
    E::PrimaryKey: sea_orm::PrimaryKeyTrait<ValueType = String>,
    C: ConnectionTrait,
{
    E::find_by_id(id.to_owned())
        .filter(of_account::<E>(account_id))
        .one(conn)
        .await?
        .ok_or_else(|| Error::not_found(kind, id))
}

/// Saves the changed columns of one of the account's rows (an update by primary key that
/// also names the account, see [`of_account`]); the row as saved.
pub async fn save<A, C>(conn: &C, account_id: &str, row: A) -> Result<<A::Entity as EntityTrait>::Model, Error>
where
    A: sea_orm::ActiveModelTrait,
    <A::Entity as EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
    C: ConnectionTrait,
{
    Ok(A::Entity::update(row).validate()?.filter(of_account::<A::Entity>(account_id)).exec(conn).await?)
}

/// The condition that keeps a statement on one of an account's tables to that account, for
/// code generic over the entity. Every statement names its account: this way, by its
/// table's own `Column::AccountId`, or by inserting it. On a database sharded by account
/// (Citus, see docs/deployment.md) that is what sends it to the account's shard alone, and
/// `tests/api/sharding.rs` checks every statement the API makes.
pub fn of_account<E: EntityTrait>(account_id: &str) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait};
    Expr::col((E::default(), Alias::new("account_id"))).eq(account_id)
}

/// Every listed user must exist in the account; `field` names the i-th one's field.
pub async fn check_users_exist<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    user_ids: &[&str],
    field: impl Fn(usize) -> String,
) -> Result<(), Error> {
    let found: HashSet<String> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(of_account::<user::Entity>(account_id))
        .filter(user::Column::Id.is_in(user_ids.iter().copied()))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    every_found(&found, user_ids, field, |id| format!("no user {id} in this account"))
}

/// INVALID_ARGUMENT naming each of `wanted` that is not in `found` (`field(i)` for the
/// i-th), or `Ok` when all were found.
pub fn every_found(
    found: &HashSet<String>,
    wanted: &[&str],
    field: impl Fn(usize) -> String,
    missing: impl Fn(&str) -> String,
) -> Result<(), Error> {
    let mut violations = crate::domain::error::Violations::new();
    for (index, id) in wanted.iter().enumerate().filter(|(_, id)| !found.contains(**id)) {
        violations.add(field(index), missing(id));
    }
    violations.finish()
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};

    use super::*;
    use crate::{
        domain::{messages::MessageDraft, users::Role},
        store::{
            Store, accounts, messages,
            testing::{caller, conversation},
        },
    };

    /// "Private notes are for staff": the query form keeps exactly the messages the rule
    /// shows each viewer, public and private, deleted or not.
    #[tokio::test]
    async fn the_query_shows_exactly_what_the_note_rule_shows() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let account_id = accounts::create(&store, "a").await.unwrap();
        let agent = caller(&store, &account_id, Role::Agent).await;
        let member = caller(&store, &account_id, Role::Member).await;
        let id = conversation(&store, &agent, &[&member]).await;
        let limits = crate::domain::messages::MessageLimits { max_attachment_bytes: 1, schedule_horizon: 0 };
        for (number, private) in [false, true, true, false, true].into_iter().enumerate() {
            let draft = MessageDraft { private, ..MessageDraft::text(format!("m{number}")) };
            let sent = messages::send(&store, &agent, id.clone(), draft.validate(limits).unwrap()).await.unwrap();
            if number % 2 == 0 {
                let mut deleted: message::ActiveModel =
                    message::Entity::find_by_id(sent.message.id).one(&store.db).await.unwrap().unwrap().into();
                deleted.delete_time = Set(Some(1));
                deleted.update(&store.db).await.unwrap();
            }
        }
        let rows =
            message::Entity::find().filter(of_account::<message::Entity>(&account_id)).all(&store.db).await.unwrap();
        assert!(rows.iter().any(|row| row.private) && rows.iter().any(|row| !row.private));
        for viewer_is_staff in [false, true] {
            let mut by_rule: Vec<String> =
                rows.iter().filter(|row| visible_to(row.private, viewer_is_staff)).map(|row| row.id.clone()).collect();
            let mut by_query: Vec<String> = message::Entity::find()
                .filter(of_account::<message::Entity>(&account_id))
                .filter(visible_messages(viewer_is_staff))
                .all(&store.db)
                .await
                .unwrap()
                .into_iter()
                .map(|row| row.id)
                .collect();
            by_rule.sort();
            by_query.sort();
            assert_eq!(by_query, by_rule, "staff: {viewer_is_staff}");
        }
    }
}
