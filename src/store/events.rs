//! The event log: appended in the unit of the change it describes (by the door), read back
//! in sequence order with each event's audience (readers filter by `Audience::admits`),
//! pruned after the retention window.
//!
//! An [`Audience`] is stored in four columns, encoded and decoded here only:
//! `audience_user_id` (only this user), `subject_user_id` (this user too), `staff_only`
//! (staff, plus `subject_user_id` when set) and `everyone` (every user of the account).

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::{
    Store, columns,
    entities::{account, event, event_retention},
};
use crate::domain::{
    Error, Micros,
    events::{Audience, Event, EventPayload, LoggedEvent, Narrowing, NewEvent},
};

/// Events read from the log, and how far the log was scanned.
#[derive(Debug)]
pub struct EventBatch {
    /// The events, in order.
    pub events: Vec<LoggedEvent>,
    /// Every event up to this sequence is in `events` (or was in an earlier batch): the
    /// cursor a client may resume from.
    pub position: i64,
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

/// Appends a unit's events, all at `now` by `actor_id`.
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
    let last = allocate(txn, account_id, events.len()).await?;
    let first = last - events.len() as i64 + 1;
    let mut rows = Vec::with_capacity(events.len());
    for (account_seq, new) in (first..).zip(events) {
        let payload = serde_json::to_string(&new.payload)
            .map_err(|err| Error::Internal(format!("could not encode an event payload: {err}")))?;
        let (only_user, also_user, staff_only, everyone) = audience_columns(new.audience);
        rows.push(event::ActiveModel {
            seq: NotSet,
            account_id: Set(account_id.to_owned()),
            account_seq: Set(account_seq),
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

/// Takes the account's next `count` sequence numbers; the last of them. The account's row
/// is the counter, so numbers are handed out in the order units commit (the writer holds
/// the account's lock until then).
async fn allocate(txn: &DatabaseTransaction, account_id: &str, count: usize) -> Result<i64, Error> {
    let updated = account::Entity::update_many()
        .col_expr(account::Column::EventSeq, Expr::col(account::Column::EventSeq).add(count as i64))
        .filter(account::Column::Id.eq(account_id))
        .exec_with_returning(txn)
        .await?;
    updated
        .first()
        .map(|account| account.event_seq)
        .ok_or_else(|| Error::Internal(format!("events appended for account {account_id}, which does not exist")))
}

fn event_from_row(row: event::Model) -> Result<LoggedEvent, Error> {
    let payload: EventPayload = serde_json::from_str(&row.payload)
        .map_err(|err| Error::Internal(format!("stored event {} has an unreadable payload: {err}", row.account_seq)))?;
    let event = Event {
        seq: row.account_seq,
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

/// The newest sequence of the account's log: its newest event, or where pruning left off
/// when everything was pruned, 0 for an account without events.
pub async fn head(store: &Store, account_id: &str) -> Result<i64, Error> {
    let head: Option<Option<i64>> = event::Entity::find()
        .select_only()
        .expr(Expr::col(event::Column::AccountSeq).max())
        .filter(event::Column::AccountId.eq(account_id))
        .into_tuple()
        .one(&store.db)
        .await?;
    match head.flatten() {
        Some(head) => Ok(head),
        None => pruned_through(store, account_id).await,
    }
}

/// Every event of the account up to this sequence has been pruned (0: none).
pub async fn pruned_through(store: &Store, account_id: &str) -> Result<i64, Error> {
    let row = event_retention::Entity::find_by_id(account_id.to_owned()).one(&store.db).await?;
    Ok(row.map_or(0, |r| r.pruned_through))
}

/// Up to `limit` events of the account's log after `after` that `narrowing` leaves in, with
/// their audiences: every reader filters in memory by the one rule, `Audience::admits`.
pub async fn read(
    store: &Store,
    account_id: &str,
    after: i64,
    limit: u64,
    narrowing: &Narrowing,
) -> Result<EventBatch, Error> {
    // Reading the head first bounds the scan: every event up to it has committed (the
    // account's writers commit in sequence order), so the batch's position is safe to
    // resume from.
    let head = head(store, account_id).await?;
    if head <= after {
        return Ok(EventBatch { events: Vec::new(), position: after });
    }
    let rows = event::Entity::find()
        .filter(event::Column::AccountId.eq(account_id))
        .filter(event::Column::AccountSeq.gt(after))
        .filter(event::Column::AccountSeq.lte(head))
        .filter(narrowed(narrowing))
        .order_by_asc(event::Column::AccountSeq)
        .limit(limit)
        .all(&store.db)
        .await?;
    let position = if rows.len() as u64 == limit { rows.last().map_or(head, |r| r.account_seq) } else { head };
    let events = rows.into_iter().map(event_from_row).collect::<Result<_, _>>()?;
    Ok(EventBatch { events, position })
}

/// Deletes the events created before `cutoff` and records, per account, how far the log
/// was pruned, so that a cursor from before then is told to resync. Each account's part is
/// a unit of its own, through the door like any other write.
pub async fn prune(store: &Store, cutoff: Micros) -> Result<RetentionReport, Error> {
    let expired: Vec<(String, Option<i64>)> = event::Entity::find()
        .select_only()
        .column(event::Column::AccountId)
        .expr(Expr::col(event::Column::AccountSeq).max())
        .filter(event::Column::CreateTime.lt(cutoff))
        .group_by(event::Column::AccountId)
        .into_tuple()
        .all(&store.db)
        .await?;
    let mut report = RetentionReport::default();
    for (account_id, through) in expired {
        let Some(through) = through else { continue };
        let account = account_id.clone();
        report.pruned_events += store
            .write_as(&account_id, "", move |tx| {
                Box::pin(async move {
                    event_retention::Entity::insert(event_retention::ActiveModel {
                        account_id: Set(account.clone()),
                        pruned_through: Set(through),
                    })
                    .on_conflict(
                        OnConflict::column(event_retention::Column::AccountId)
                            .update_column(event_retention::Column::PrunedThrough)
                            .to_owned(),
                    )
                    .exec_without_returning(tx.conn())
                    .await?;
                    let deleted = event::Entity::delete_many()
                        .filter(event::Column::AccountId.eq(&account))
                        .filter(event::Column::AccountSeq.lte(through))
                        .exec(tx.conn())
                        .await?;
                    Ok(deleted.rows_affected)
                })
            })
            .await?;
    }
    Ok(report)
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
        }
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
        store
            .write_as(&account, "", move |tx| {
                Box::pin(async move {
                    for event in events {
                        tx.emit(event);
                    }
                    Ok(())
                })
            })
            .await
            .unwrap();
        let everything = read(&store, &account, 0, total + 1, &Narrowing::none()).await.unwrap();
        assert_eq!(everything.events.len() as u64, total);

        let filters = [
            EventFilter::default(),
            EventFilter { kinds: KindFilter::Only(vec![EventKind::MessageCreated]), conversation_ids: Vec::new() },
            EventFilter { kinds: KindFilter::Every, conversation_ids: vec!["c_2".into()] },
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
                let narrowed = read(&store, &account, 0, total + 1, &narrowing).await.unwrap();
                assert_eq!(narrowed.position, everything.position);
                let kept: std::collections::HashSet<i64> = narrowed.events.iter().map(|e| e.event.seq).collect();
                for logged in &everything.events {
                    let event = &logged.event;
                    let in_conversations = filter.conversation_ids.is_empty()
                        || event.conversation_id.as_ref().is_some_and(|id| filter.conversation_ids.contains(id));
                    let needed = filter.selects(event) || (event.kind.moves_membership() && in_conversations);
                    if logged.audience.admits(&viewer, true) && needed {
                        assert!(kept.contains(&event.seq), "{role:?} {filter:?} lost {logged:?}");
                    }
                }
                assert!(kept.len() < everything.events.len(), "{role:?} {filter:?} narrowed nothing");
            }
        }
    }
}
