//! The event log: appended in the unit of the change it describes (by the door), read back
//! in position order (`Position`: writing transaction, then number) with each event's
//! audience (readers filter by `Audience::admits`), pruned after the retention window.
//!
//! Writers of one account commit concurrently on PostgreSQL, so an event's number is
//! taken before anyone knows when it commits. A read therefore stops at the *horizon*, the
//! oldest transaction still running: nothing can commit below it any more, so a position
//! once read past never has an event appear behind it, and every reader on every replica
//! sees one order. Events above the horizon that have committed are *held back* until it
//! moves (the reader looks again shortly: the older transaction's end may wake nobody).
//!
//! An [`Audience`] is stored in four columns, encoded and decoded here only:
//! `audience_user_id` (only this user), `subject_user_id` (this user too), `staff_only`
//! (staff, plus `subject_user_id` when set) and `everyone` (every user of the account).

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QueryResult, QuerySelect, Select,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::{
    Store, columns,
    entities::{event, event_retention},
};
use crate::domain::{
    Error, Micros,
    events::{Audience, Event, EventPayload, LoggedEvent, Narrowing, NewEvent, Position},
};

/// Events read from the log, and how far the log was scanned.
#[derive(Debug)]
pub struct EventBatch {
    /// The events, in order.
    pub events: Vec<LoggedEvent>,
    /// Every event up to this position is in `events` (or was in an earlier batch): the
    /// cursor a client may resume from.
    pub position: Position,
    /// Events after `position` have committed but wait for an older transaction that is
    /// still running (PostgreSQL): read again shortly, since that transaction's end may
    /// wake nobody.
    pub held_back: bool,
}
/// What one pruning pass removed.
#[derive(Debug, Default, Clone, Copy)]
pub struct RetentionReport {
    /// Events deleted.
    pub pruned_events: u64,
}

/// The columns of an audience: (only this user, this user too, staff only, everyone).
fn audience_columns(audience: Audience) -> (Option<String>, Option<String>, bool, bool) {
    match audience {
        Audience::Conversation => (None, None, false, false),
        Audience::ConversationAnd(user) => (None, Some(user), false, false),
        Audience::Staff => (None, None, true, false),
        Audience::StaffAnd(user) => (None, Some(user), true, false),
        Audience::User(user) => (Some(user), None, false, false),
        Audience::Account => (None, None, false, true),
    }
}

/// The audience its columns encode (see [`audience_columns`]).
fn audience_from_columns(
    only_user: Option<String>,
    also_user: Option<String>,
    staff_only: bool,
    everyone: bool,
) -> Audience {
    match (only_user, also_user, staff_only) {
        (Some(user), _, _) => Audience::User(user),
        (None, Some(user), true) => Audience::StaffAnd(user),
        (None, None, true) => Audience::Staff,
        (None, Some(user), false) => Audience::ConversationAnd(user),
        (None, None, false) if everyone => Audience::Account,
        (None, None, false) => Audience::Conversation,
    }
}

/// A narrowing as a condition on the log (see `Narrowing`).
fn narrowed(narrowing: &Narrowing) -> Condition {
    let mut condition = Condition::all();
    if let Some((user_id, is_staff)) = &narrowing.viewer {
        let only_user = event::Column::AudienceUserId;
        condition = condition.add(Condition::any().add(only_user.is_null()).add(only_user.eq(user_id)));
        if !is_staff {
            condition = condition.add(
                Condition::any().add(event::Column::StaffOnly.eq(false)).add(event::Column::SubjectUserId.eq(user_id)),
            );
        }
    }
    if let Some(kinds) = &narrowing.kinds {
        condition = condition.add(event::Column::EventType.is_in(kinds.iter().map(|kind| kind.as_str())));
    }
    if !narrowing.conversation_ids.is_empty() {
        condition = condition.add(event::Column::ConversationId.is_in(narrowing.conversation_ids.clone()));
    }
    condition
}

/// Appends a unit's events, all at `now` by `actor_id`. Their positions come from the
/// database: `seq` from its sequence, `tx` (on PostgreSQL) from the column's default, the
/// writing transaction's id. Nothing here is shared by the account's writers, so they do
/// not wait for one another.
pub(super) async fn append(
    txn: &DatabaseTransaction,
    account_id: &str,
    actor_id: &str,
    now: Micros,
    events: Vec<NewEvent>,
) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(events.len());
    for new in events {
        let payload = serde_json::to_string(&new.payload)
            .map_err(|err| Error::Internal(format!("could not encode an event payload: {err}")))?;
        let (only_user, also_user, staff_only, everyone) = audience_columns(new.audience);
        rows.push(event::ActiveModel {
            seq: NotSet,
            tx: NotSet,
            account_id: Set(account_id.to_owned()),
            account_seq: NotSet,
            event_type: Set(new.kind.as_str().to_owned()),
            conversation_id: Set(new.conversation_id),
            actor_id: Set(actor_id.to_owned()),
            audience_user_id: Set(only_user),
            subject_user_id: Set(also_user),
            staff_only: Set(staff_only),
            everyone: Set(everyone),
            create_time: Set(now),
            payload: Set(payload),
        });
    }
    event::Entity::insert_many(rows).exec_without_returning(txn).await?;
    Ok(())
}

fn position_of(row: &event::Model) -> Position {
    Position { tx: row.tx, seq: row.seq }
}

fn event_from_row(row: event::Model) -> Result<LoggedEvent, Error> {
    let payload: EventPayload = serde_json::from_str(&row.payload)
        .map_err(|err| Error::Internal(format!("stored event {} has an unreadable payload: {err}", row.seq)))?;
    let event = Event {
        position: position_of(&row),
        kind: columns::stored("event type", &row.event_type)?,
        create_time: row.create_time,
        actor_id: row.actor_id,
        conversation_id: row.conversation_id,
        payload,
    };
    Ok(LoggedEvent {
        event,
        audience: audience_from_columns(row.audience_user_id, row.subject_user_id, row.staff_only, row.everyone),
    })
}

/// The oldest transaction still running, as SQL: every transaction older than it has ended,
/// and none can start below it, so events of older transactions are all there is and will
/// ever be before it. On SQLite a reader sees only committed writes, and writes commit one
/// at a time in `seq` order: nothing is ever pending.
fn horizon(backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Postgres => Expr::cust("pg_snapshot_xmin(pg_current_snapshot())::text::bigint"),
        _ => Expr::cust(i64::MAX.to_string()),
    }
}

/// An event's position, as SQL (a row value, which both databases compare in order).
fn position_column() -> Expr {
    Expr::tuple([Expr::col(event::Column::Tx), Expr::col(event::Column::Seq)])
}

fn position_value(position: Position) -> Expr {
    Expr::tuple([Expr::val(position.tx), Expr::val(position.seq)])
}

/// Events after a position, in order.
fn after(backend: DbBackend, position: Position) -> Select<event::Entity> {
    event::Entity::find()
        .filter(beyond(backend, position, true))
        .order_by_asc(event::Column::Tx)
        .order_by_asc(event::Column::Seq)
}

/// Events after `position` (`after`), or up to it and at it. PostgreSQL seeks its index by
/// the row value (tx, seq). SQLite seeks a row value by its first column alone, and every
/// SQLite event has tx 0, so there the comparison walked every event of the account (a
/// stream's catch-up read took 14 ms at 100,000 events instead of 0.13): with tx 0 it
/// compares `seq` alone, which the index seeks.
fn beyond(backend: DbBackend, position: Position, after: bool) -> Expr {
    let (column, value) = match (backend, position.tx) {
        (DbBackend::Sqlite, 0) => (Expr::col(event::Column::Seq), Expr::val(position.seq)),
        _ => (position_column(), position_value(position)),
    };
    let compared = if after { column.gt(value) } else { column.lte(value) };
    match (backend, position.tx) {
        (DbBackend::Sqlite, 0) => Expr::col(event::Column::Tx).eq(0).and(compared),
        _ => compared,
    }
}

/// An event row with the horizon its read saw.
struct Sighted {
    row: event::Model,
    horizon: i64,
}

impl FromQueryResult for Sighted {
    fn from_query_result(result: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        Ok(Self { row: event::Model::from_query_result(result, prefix)?, horizon: result.try_get(prefix, "horizon")? })
    }
}

/// An event's position as read, by column name.
#[derive(Debug, FromQueryResult)]
struct PositionColumns {
    /// Its writing transaction.
    tx: i64,
    /// Its number among all appends.
    seq: i64,
}

impl PositionColumns {
    /// The position these columns hold.
    fn position(&self) -> Position {
        Position { tx: self.tx, seq: self.seq }
    }
}

/// The newest position of the account's log that no running transaction can precede: its
/// newest such event, or where pruning left off.
pub async fn head(store: &Store, account_id: &str) -> Result<Position, Error> {
    let newest: Option<PositionColumns> = event::Entity::find()
        .select_only()
        .columns([event::Column::Tx, event::Column::Seq])
        .filter(event::Column::AccountId.eq(account_id))
        .filter(Expr::col(event::Column::Tx).lt(horizon(store.backend())))
        .order_by_desc(event::Column::Tx)
        .order_by_desc(event::Column::Seq)
        .limit(1)
        .into_model::<PositionColumns>()
        .one(&store.db)
        .await?;
    match newest {
        Some(newest) => Ok(newest.position()),
        None => Ok(pruned(store, account_id).await?.through),
    }
}

/// Waits (at most `patience`) until every transaction running now has ended, so that
/// [`head`] then covers every event committed before the call: a live stream starts after
/// them, not before one that an older, unrelated transaction still held back. Nothing to
/// wait for on SQLite.
pub async fn settle(store: &Store, patience: std::time::Duration) -> Result<(), Error> {
    use sea_orm::{ConnectionTrait, Statement};
    if store.backend() != DbBackend::Postgres {
        return Ok(());
    }
    let snapshot = |sql: &str| {
        let statement = Statement::from_string(DbBackend::Postgres, sql.to_owned());
        async move {
            let row = store.db.query_one_raw(statement).await?;
            let row = row.ok_or_else(|| Error::Internal("a snapshot query returned no row".into()))?;
            let running_below = row.try_get::<Option<i64>>("", "running_below")?;
            Ok::<_, Error>((row.try_get::<i64>("", "oldest")?, running_below))
        }
    };
    // Every transaction that may be running now has an id below `running_below`; none is
    // running when the oldest is that (one statement, as almost always).
    let (mut oldest, running_below) = snapshot(
        "SELECT pg_snapshot_xmin(s)::text::bigint AS oldest, pg_snapshot_xmax(s)::text::bigint AS running_below \
         FROM pg_current_snapshot() AS s",
    )
    .await?;
    let running_below = running_below.unwrap_or(oldest);
    let deadline = tokio::time::Instant::now() + patience;
    while oldest < running_below && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        oldest = snapshot("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS oldest").await?.0;
    }
    Ok(())
}

/// How far the account's log was pruned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pruned {
    /// Every event up to this position is gone.
    pub through: Position,
    /// Every event up to this account number is gone (cursors from before positions).
    pub through_number: i64,
}

/// How far the account's log was pruned (nothing: [`Position::START`] and 0).
pub async fn pruned(store: &Store, account_id: &str) -> Result<Pruned, Error> {
    let row = event_retention::Entity::find_by_id(account_id.to_owned()).one(&store.db).await?;
    Ok(row.map_or_else(Pruned::default, |r| Pruned {
        through: Position { tx: r.pruned_tx, seq: r.pruned_seq },
        through_number: r.pruned_through,
    }))
}

/// The position of the account's event numbered `number` by the account counter that
/// cursors named before positions, if it is still in the log.
pub async fn numbered(store: &Store, account_id: &str, number: i64) -> Result<Option<Position>, Error> {
    let found: Option<PositionColumns> = event::Entity::find()
        .select_only()
        .columns([event::Column::Tx, event::Column::Seq])
        .filter(event::Column::AccountId.eq(account_id))
        .filter(event::Column::AccountSeq.eq(number))
        .filter(event::Column::AccountSeq.gt(0))
        .into_model::<PositionColumns>()
        .one(&store.db)
        .await?;
    Ok(found.map(|found| found.position()))
}

/// Up to `limit` events of the account's log after `from` that `narrowing` leaves in, with
/// their audiences: every reader filters in memory by the one rule, `Audience::admits`.
/// Only events that no running transaction can precede are read (one statement: the rows
/// and the horizon they are judged by come from one snapshot).
pub async fn read(
    store: &Store,
    account_id: &str,
    from: Position,
    limit: u64,
    narrowing: &Narrowing,
) -> Result<EventBatch, Error> {
    let rows = after(store.backend(), from)
        .filter(event::Column::AccountId.eq(account_id))
        .filter(narrowed(narrowing))
        .expr_as(horizon(store.backend()), "horizon")
        .limit(limit)
        .into_model::<Sighted>()
        .all(&store.db)
        .await?;
    let mut held_back = false;
    let mut events = Vec::with_capacity(rows.len());
    let mut position = from;
    for Sighted { row, horizon } in rows {
        // Ordered by transaction: once one is too new, so is everything after it.
        if row.tx >= horizon {
            held_back = true;
            break;
        }
        position = position_of(&row);
        events.push(event_from_row(row)?);
    }
    Ok(EventBatch { events, position, held_back })
}

/// Deletes the events created before `cutoff` and records, per account, how far the log
/// was pruned, so that a cursor from before then is told to resync. Each account's part is
/// a unit of its own, through the door like any other write; two replicas pruning at once
/// delete the same rows and record the same place, so either order leaves one result.
pub async fn prune(store: &Store, cutoff: Micros) -> Result<RetentionReport, Error> {
    let expired: Vec<String> = event::Entity::find()
        .select_only()
        .column(event::Column::AccountId)
        .filter(event::Column::CreateTime.lt(cutoff))
        .group_by(event::Column::AccountId)
        .into_tuple()
        .all(&store.db)
        .await?;
    let mut report = RetentionReport::default();
    for account_id in expired {
        let account = account_id.clone();
        report.pruned_events += store
            .write_as(&account_id, "", move |tx| {
                Box::pin(async move { prune_account(tx.conn(), &account, cutoff).await })
            })
            .await?;
    }
    Ok(report)
}

/// Deletes the account's events up to the newest one created before `cutoff`; how many.
async fn prune_account(txn: &DatabaseTransaction, account_id: &str, cutoff: Micros) -> Result<u64, Error> {
    let newest_expired: Option<PositionColumns> = event::Entity::find()
        .select_only()
        .columns([event::Column::Tx, event::Column::Seq])
        .filter(event::Column::AccountId.eq(account_id))
        .filter(event::Column::CreateTime.lt(cutoff))
        .order_by_desc(event::Column::Tx)
        .order_by_desc(event::Column::Seq)
        .limit(1)
        .into_model::<PositionColumns>()
        .one(txn)
        .await?;
    let Some(newest_expired) = newest_expired else { return Ok(0) };
    let through = newest_expired.position();
    let through_number: Option<Option<i64>> = event::Entity::find()
        .select_only()
        .expr(Expr::col(event::Column::AccountSeq).max())
        .filter(event::Column::AccountId.eq(account_id))
        .filter(beyond(txn.get_database_backend(), through, false))
        .into_tuple()
        .one(txn)
        .await?;
    // Old cursors count in account numbers: they hear of pruning that reached numbered
    // events; otherwise the number stays where it was.
    let through_number = through_number.flatten().filter(|number| *number > 0);
    let retention = event_retention::ActiveModel {
        account_id: Set(account_id.to_owned()),
        pruned_through: Set(through_number.unwrap_or(0)),
        pruned_tx: Set(through.tx),
        pruned_seq: Set(through.seq),
    };
    let mut updated = vec![event_retention::Column::PrunedTx, event_retention::Column::PrunedSeq];
    if through_number.is_some() {
        updated.push(event_retention::Column::PrunedThrough);
    }
    event_retention::Entity::insert(retention)
        .on_conflict(OnConflict::column(event_retention::Column::AccountId).update_columns(updated).to_owned())
        .exec_without_returning(txn)
        .await?;
    let deleted = event::Entity::delete_many()
        .filter(event::Column::AccountId.eq(account_id))
        .filter(beyond(txn.get_database_backend(), through, false))
        .exec(txn)
        .await?;
    Ok(deleted.rows_affected)
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;
    use crate::domain::{
        Caller,
        conversations::{Conversation, Participant, Subject},
        events::{EventFilter, EventKind, KindFilter},
        users::Role,
    };

    fn conversation(id: &str, participants: &[&str]) -> Conversation {
        Conversation {
            id: id.into(),
            account_id: "acc".into(),
            subject: Subject::default(),
            metadata: Default::default(),
            participants: participants
                .iter()
                .map(|user| Participant { user_id: (*user).into(), label: String::new(), join_time: 0 })
                .collect(),
            create_time: 0,
            update_time: 0,
            handled: None,
        }
    }

    /// Cursors handed out before events had positions were the account's event numbers:
    /// after the migration, such a number still resumes right after its event.
    #[tokio::test]
    async fn a_cursor_from_before_positions_resumes_after_its_event() {
        use migrations::MigratorTrait;
        use sea_orm::ConnectionTrait;

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite:{}", dir.path().join("old.db").display())).await.unwrap();
        let account = crate::store::accounts::create(&store, "a").await.unwrap();
        // Back to the numbered log, with three events as it wrote them.
        migrations::Migrator::down(&store.db, Some(1)).await.unwrap();
        for number in 1..=3 {
            let payload =
                serde_json::to_string(&EventPayload::Typing { user_id: format!("u{number}"), typing: true }).unwrap();
            store
                .db
                .execute_raw(sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Sqlite,
                    "INSERT INTO events (account_id, account_seq, event_type, actor_id, staff_only, everyone, \
                     create_time, payload) VALUES (?, ?, 'typing', '', false, true, 0, ?)",
                    [account.clone().into(), number.into(), payload.into()],
                ))
                .await
                .unwrap();
        }
        migrations::Migrator::up(&store.db, None).await.unwrap();

        let second = numbered(&store, &account, 2).await.unwrap().expect("event 2 is still there");
        let rest = read(&store, &account, second, 10, &Narrowing::none()).await.unwrap();
        let actors: Vec<String> = rest
            .events
            .iter()
            .map(|logged| match &logged.event.payload {
                EventPayload::Typing { user_id, .. } => user_id.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(actors, ["u3"]);
        // New events follow the old ones.
        store
            .write_as(&account, "", |tx| {
                Box::pin(async move {
                    tx.emit(NewEvent {
                        kind: EventKind::Typing,
                        conversation_id: None,
                        audience: Audience::Account,
                        payload: EventPayload::Typing { user_id: "u4".into(), typing: true },
                    });
                    Ok(())
                })
            })
            .await
            .unwrap();
        let after_third = numbered(&store, &account, 3).await.unwrap().unwrap();
        let newer = read(&store, &account, after_third, 10, &Narrowing::none()).await.unwrap();
        assert_eq!(newer.events.len(), 1);
        assert_eq!(head(&store, &account).await.unwrap(), newer.position);
        assert!(numbered(&store, &account, 4).await.unwrap().is_none(), "new events have no number");
    }

    #[test]
    fn every_audience_reads_back_from_its_columns() {
        for audience in [
            Audience::Conversation,
            Audience::ConversationAnd("u".into()),
            Audience::Staff,
            Audience::StaffAnd("u".into()),
            Audience::User("u".into()),
            Audience::Account,
        ] {
            let (only_user, also_user, staff_only, everyone) = audience_columns(audience.clone());
            assert_eq!(audience_from_columns(only_user, also_user, staff_only, everyone), audience);
        }
    }

    /// Narrowing a read never drops an event that the in-memory rule would deliver, or one
    /// that moves membership and that the viewer may see: it only saves reading the rest.
    #[tokio::test]
    async fn a_narrowed_read_keeps_everything_the_stream_could_deliver() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite:{}", dir.path().join("e.db").display())).await.unwrap();
        let account = crate::store::accounts::create(&store, "a").await.unwrap();
        let audiences = [
            Audience::Conversation,
            Audience::ConversationAnd("u_me".into()),
            Audience::ConversationAnd("u_other".into()),
            Audience::Staff,
            Audience::StaffAnd("u_me".into()),
            Audience::StaffAnd("u_other".into()),
            Audience::User("u_me".into()),
            Audience::User("u_other".into()),
            Audience::Account,
        ];
        let mut events = Vec::new();
        for kind in EventKind::iter() {
            for audience in &audiences {
                // An account's events outside any conversation (templates) too.
                for conversation_id in [Some("c_1"), Some("c_2"), None] {
                    events.push(NewEvent {
                        kind,
                        conversation_id: conversation_id.map(Into::into),
                        audience: audience.clone(),
                        payload: EventPayload::Conversation(Box::new(conversation(
                            conversation_id.unwrap_or("c_0"),
                            &["u_me"],
                        ))),
                    });
                }
            }
        }
        let total = events.len() as u64;
        // One unit per conversation, as the door has them (a unit holds one conversation).
        for conversation_id in [Some("c_1"), Some("c_2"), None] {
            let of_it: Vec<NewEvent> =
                events.iter().filter(|e| e.conversation_id.as_deref() == conversation_id).cloned().collect();
            store
                .write_as(&account, "", move |tx| {
                    Box::pin(async move {
                        if let Some(id) = conversation_id {
                            tx.pretend_held(id);
                        }
                        for event in of_it {
                            tx.emit(event);
                        }
                        Ok(())
                    })
                })
                .await
                .unwrap();
        }
        let everything = read(&store, &account, Position::START, total + 1, &Narrowing::none()).await.unwrap();
        assert_eq!(everything.events.len() as u64, total);

        let filters = [
            EventFilter::default(),
            EventFilter { kinds: KindFilter::Only(vec![EventKind::MessageCreated]), ..EventFilter::default() },
            EventFilter { conversation_ids: vec!["c_2".into()], ..EventFilter::default() },
        ];
        for role in [Role::Admin, Role::Agent, Role::Member] {
            let viewer = Caller {
                account_id: account.clone(),
                user_id: "u_me".into(),
                role,
                credential: crate::domain::Credential::ApiKey("k".into()),
            };
            for filter in &filters {
                let narrowing = Narrowing::for_viewer(&viewer, filter);
                let narrowed = read(&store, &account, Position::START, total + 1, &narrowing).await.unwrap();
                // A narrowed read ends at the last event it kept: what it skipped after that
                // is read again, and skipped again, by the next read.
                assert_eq!(Some(narrowed.position), narrowed.events.last().map(|e| e.event.position));
                assert!(!narrowed.held_back && narrowed.position <= everything.position);
                let kept: std::collections::HashSet<Position> =
                    narrowed.events.iter().map(|e| e.event.position).collect();
                for logged in &everything.events {
                    let event = &logged.event;
                    let in_conversations = filter.conversation_ids.is_empty()
                        || event.conversation_id.as_ref().is_some_and(|id| filter.conversation_ids.contains(id));
                    let needed = filter.selects(event, &viewer) || (event.kind.moves_membership() && in_conversations);
                    if logged.audience.admits(&viewer, true) && needed {
                        assert!(kept.contains(&event.position), "{role:?} {filter:?} lost {logged:?}");
                    }
                }
                assert!(kept.len() < everything.events.len(), "{role:?} {filter:?} narrowed nothing");
            }
        }
    }
}
