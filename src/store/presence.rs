//! Presence as stored, so that every replica agrees: a lease row per (replica, user) that
//! the replica holding the user's streams renews, and on the user the presence last
//! announced (`users.online`, `users.last_seen_time`). Each change of the announced
//! presence is a conditional update (`… WHERE online = false`), so that of two replicas
//! racing to announce the same change exactly one does; the returned transitions are
//! what to announce. Keeping track of streams is `events::presence`.

use std::time::Duration;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict, Query},
};

use super::{
    Store, UnitFuture, WriteTx,
    entities::{presence, user},
};
use crate::domain::{Error, Micros, presence::Presence};

/// A user whose announced presence changed: to tell the users who share a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Its account.
    pub account_id: String,
    /// The user.
    pub user_id: String,
    /// Its presence now.
    pub presence: Presence,
}

/// A user held by a replica: (account, user).
pub type Held = (String, String);

/// Users per statement: a replica may hold many, and each statement's parameters are
/// bounded (SQLite: 32,766).
const CHUNK: usize = 1000;

/// Takes (or renews) `replica_id`'s leases of `users`, and marks online those not marked
/// yet: the transitions to announce. Renewing all of them, not only the new ones, mends a
/// user another replica marked offline while this one could not renew in time.
pub async fn hold(store: &Store, replica_id: &str, users: Vec<Held>) -> Result<Vec<Transition>, Error> {
    in_chunks(store, replica_id, users, |tx, replica_id, users| {
        Box::pin(async move {
            let rows = users.iter().map(|(account_id, user_id)| presence::ActiveModel {
                replica_id: Set(replica_id.clone()),
                user_id: Set(user_id.clone()),
                account_id: Set(account_id.clone()),
                renew_time: Set(tx.now),
            });
            presence::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([presence::Column::ReplicaId, presence::Column::UserId])
                        .update_column(presence::Column::RenewTime)
                        .to_owned(),
                )
                .exec_without_returning(tx.conn())
                .await?;
            let ids: Vec<&String> = users.iter().map(|(_, user_id)| user_id).collect();
            let marked = user::Entity::update_many()
                .col_expr(user::Column::Online, Expr::value(true))
                .filter(user::Column::Id.is_in(ids))
                .filter(user::Column::Online.eq(false))
                .exec_with_returning(tx.conn())
                .await?;
            Ok(marked.into_iter().map(|row| transition(row, true, tx.now)).collect())
        })
    })
    .await
}

/// Gives up `replica_id`'s leases of `users`, whose last stream here closed `closed_for`
/// ago, and marks offline those no other replica holds, last seen when it closed.
pub async fn release(
    store: &Store,
    replica_id: &str,
    users: Vec<Held>,
    closed_for: Duration,
) -> Result<Vec<Transition>, Error> {
    let closed_for = closed_for.as_micros() as Micros;
    in_chunks(store, replica_id, users, move |tx, replica_id, users| {
        Box::pin(async move {
            let ids: Vec<String> = users.into_iter().map(|(_, user_id)| user_id).collect();
            presence::Entity::delete_many()
                .filter(presence::Column::ReplicaId.eq(replica_id))
                .filter(presence::Column::UserId.is_in(ids.clone()))
                .exec(tx.conn())
                .await?;
            mark_offline(tx.conn(), Some(ids), tx.now - closed_for).await
        })
    })
    .await
}

/// Runs `step` for each chunk of `users`, each in a unit of its own; the transitions of
/// all.
async fn in_chunks<F>(store: &Store, replica_id: &str, users: Vec<Held>, step: F) -> Result<Vec<Transition>, Error>
where
    F: for<'t> Fn(&'t mut WriteTx, String, Vec<Held>) -> UnitFuture<'t, Vec<Transition>> + Clone + Send + 'static,
{
    let mut transitions = Vec::new();
    for chunk in users.chunks(CHUNK) {
        let (replica_id, chunk, step) = (replica_id.to_owned(), chunk.to_vec(), step.clone());
        transitions.extend(store.write_as("", "", move |tx| step(tx, replica_id, chunk)).await?);
    }
    Ok(transitions)
}

/// Drops the leases not renewed for `lease` (their replica is gone) and marks offline the
/// users nobody holds any more.
pub async fn sweep(store: &Store, lease: Duration) -> Result<Vec<Transition>, Error> {
    store
        .write_as("", "", move |tx| {
            Box::pin(async move {
                let expired = tx.now - lease.as_micros() as Micros;
                presence::Entity::delete_many().filter(presence::Column::RenewTime.lt(expired)).exec(tx.conn()).await?;
                mark_offline(tx.conn(), None, tx.now).await
            })
        })
        .await
}

/// Marks offline, last seen at `seen`, the users marked online that no lease holds (of
/// `among`, or of every account).
async fn mark_offline<C: sea_orm::ConnectionTrait>(
    conn: &C,
    among: Option<Vec<String>>,
    seen: Micros,
) -> Result<Vec<Transition>, Error> {
    let held = Query::select().column(presence::Column::UserId).from(presence::Entity).to_owned();
    let mut update = user::Entity::update_many()
        .col_expr(user::Column::Online, Expr::value(false))
        .col_expr(user::Column::LastSeenTime, Expr::value(seen))
        .filter(user::Column::Online.eq(true))
        .filter(user::Column::Id.not_in_subquery(held));
    if let Some(ids) = among {
        update = update.filter(user::Column::Id.is_in(ids));
    }
    let marked = update.exec_with_returning(conn).await?;
    Ok(marked.into_iter().map(|row| transition(row, false, seen)).collect())
}

fn transition(row: user::Model, online: bool, now: Micros) -> Transition {
    let last_seen_time = (!online).then_some(now);
    Transition { account_id: row.account_id, user_id: row.id, presence: Presence { online, last_seen_time } }
}
