//! Reports: file one on a message the caller can see, read them (staff all, a member its
//! own), and resolve one (staff), removing the message in the same unit when asked.
//!
//! A report keeps the message as the reporter saw it (`snapshot`), so that evidence
//! survives the message's edit or deletion and even its conversation's. Its events go to
//! staff only; the reporter hears of the resolution through its notifications.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::{
    Listing, Store, UnitFuture, WriteTx, access, columns,
    door::{OfMessage, Target},
    entities::report,
    messages, notifications, views,
};
use crate::domain::{
    Caller, Error,
    events::{Audience, EventKind, EventPayload, NewEvent},
    ids,
    notifications::{Notice, NotificationKind},
    paging::Page,
    reports::{Action, NewReport, Report, ReportQuery, Resolution, Status},
};

/// Files a report. The same user reporting the same message again is ALREADY_EXISTS.
pub async fn create(store: &Store, caller: &Caller, new: NewReport) -> Result<Report, Error> {
    store
        .write_in(caller, OfMessage::new(caller, &new.message_id), move |tx, caller, (row, record)| {
            Box::pin(async move {
                let message = views::assemble_one(tx.conn(), row, &record).await?.seen_by(caller);
                new.check_target(caller, &message)?;
                let earlier = report::Entity::find()
                    .filter(report::Column::AccountId.eq(&caller.account_id))
                    .filter(report::Column::ReporterId.eq(&caller.user_id))
                    .filter(report::Column::MessageId.eq(&new.message_id))
                    .one(tx.conn())
                    .await?;
                if let Some(earlier) = earlier {
                    return Err(Error::AlreadyExists(format!(
                        "the caller already reported message {} (report {})",
                        new.message_id, earlier.id
                    )));
                }
                let snapshot = serde_json::to_string(&message)
                    .map_err(|err| Error::Internal(format!("could not encode a report's message: {err}")))?;
                let row = report::ActiveModel {
                    id: Set(ids::new_id(ids::REPORT)),
                    account_id: Set(caller.account_id.clone()),
                    conversation_id: Set(message.conversation_id.clone()),
                    message_id: Set(message.id.clone()),
                    reporter_id: Set(caller.user_id.clone()),
                    reason: Set(new.reason.as_str().to_owned()),
                    details: Set(new.details),
                    status: Set(Status::Open.as_str().to_owned()),
                    snapshot: Set(snapshot),
                    create_time: Set(tx.now),
                    resolve_time: Set(None),
                    resolver_id: Set(None),
                    resolution_note: Set(None),
                }
                .insert(tx.conn())
                .await?;
                let report = report_from_row(row)?;
                emit(tx, EventKind::ReportCreated, &report);
                Ok(report.seen_by(caller))
            })
        })
        .await
}

/// A report the caller may see (staff: any of the account; a member: its own), or
/// NOT_FOUND.
pub async fn get(store: &Store, caller: &Caller, id: &str) -> Result<Report, Error> {
    let row = load_report(&store.db, caller, id).await?;
    Ok(report_from_row(row)?.seen_by(caller))
}

/// Report `id` if the caller may see it, or NOT_FOUND.
async fn load_report<C: ConnectionTrait>(conn: &C, caller: &Caller, id: &str) -> Result<report::Model, Error> {
    report::Entity::find_by_id(id)
        .filter(access::of_account::<report::Entity>(&caller.account_id))
        .one(conn)
        .await?
        .filter(|row| Report::visible_to(caller, &row.reporter_id))
        .ok_or_else(|| Error::not_found("report", id))
}

/// A report to change: its conversation held (it may be gone since, which takes nothing
/// from the report), then the report's row locked, so that two staff resolving it at once
/// resolve it once.
struct Reported {
    caller: Caller,
    id: String,
}

impl Target for Reported {
    type Held = report::Model;

    fn hold(self, tx: &mut WriteTx) -> UnitFuture<'_, report::Model> {
        Box::pin(async move {
            let found = load_report(tx.conn(), &self.caller, &self.id).await?;
            tx.hold_conversation(&found.conversation_id).await?;
            report::Entity::find_by_id(&self.id)
                .filter(access::of_account::<report::Entity>(&self.caller.account_id))
                .lock_exclusive()
                .one(tx.conn())
                .await?
                .ok_or_else(|| Error::not_found("report", &self.id))
        })
    }
}

/// Reports oldest first: for staff the account's review queue, for a member its own.
pub async fn list(
    store: &Store,
    caller: &Caller,
    query: &ReportQuery,
    page: &Page<String>,
) -> Result<Listing<Report>, Error> {
    let mut find = report::Entity::find().filter(report::Column::AccountId.eq(&caller.account_id));
    if !caller.is_staff() {
        find = find.filter(report::Column::ReporterId.eq(&caller.user_id));
    }
    if let Some(status) = query.status {
        find = find.filter(report::Column::Status.eq(status.as_str()));
    }
    if let Some(reason) = query.reason {
        find = find.filter(report::Column::Reason.eq(reason.as_str()));
    }
    if let Some(conversation_id) = &query.conversation_id {
        find = find.filter(report::Column::ConversationId.eq(conversation_id));
    }
    let total = find.clone().count(&store.db).await?;
    // Ids are time-ordered: by id is oldest first.
    if let Some(after) = &page.after {
        find = find.filter(report::Column::Id.gt(after));
    }
    let rows = find.order_by_asc(report::Column::Id).limit(page.fetch_limit()).all(&store.db).await?;
    if let Some(conversation_id) = &query.conversation_id {
        let found_nothing = rows.is_empty() && page.after.is_none();
        access::ensure_filter_visible(&store.db, caller, conversation_id, found_nothing).await?;
    }
    let (rows, next_page_token) = page.finish(rows, |row| row.id.clone());
    let items = rows
        .into_iter()
        .map(|row| report_from_row(row).map(|report| report.seen_by(caller)))
        .collect::<Result<_, _>>()?;
    Ok(Listing { items, next_page_token, total })
}

/// Resolves an open report (staff): dismisses it, or removes the message in the same unit.
/// A report the caller may not see is NOT_FOUND; its own reporter, who sees it, may not
/// resolve it (PERMISSION_DENIED).
pub async fn resolve(
    store: &Store,
    caller: &Caller,
    id: String,
    action: Action,
    note: String,
) -> Result<Report, Error> {
    store
        .write_in(caller, Reported { caller: caller.clone(), id }, move |tx, caller, row| {
            Box::pin(async move {
                caller.require_staff("resolve reports")?;
                report_from_row(row.clone())?.ensure_open()?;
                if action == Action::RemoveMessage {
                    remove_message(tx, caller, &row.message_id).await?;
                }
                let mut active: report::ActiveModel = row.into();
                active.status = Set(action.status().as_str().to_owned());
                active.resolve_time = Set(Some(tx.now));
                active.resolver_id = Set(Some(caller.user_id.clone()));
                active.resolution_note = Set(Some(note));
                let report = report_from_row(access::save(tx.conn(), tx.account_id(), active).await?)?;
                emit(tx, EventKind::ReportResolved, &report);
                let outcome = match action {
                    Action::Dismiss => "no action was needed",
                    Action::RemoveMessage => "the message was removed",
                };
                // The resolver stays anonymous to the reporter, as in the report itself.
                let notice = Notice {
                    user_id: report.reporter_id.clone(),
                    actor_id: String::new(),
                    kind: NotificationKind::ReportResolved,
                    conversation_id: Some(report.conversation_id.clone()),
                    message_id: Some(report.message_id.clone()),
                    report_id: Some(report.id.clone()),
                    summary: format!("Your report was reviewed: {outcome}"),
                };
                notifications::notify(tx, vec![notice]).await?;
                Ok(report)
            })
        })
        .await
}

/// Tombstones the reported message, with its own event, unless it is gone already
/// (deleted by its sender, or with its conversation).
async fn remove_message(tx: &mut WriteTx, caller: &Caller, message_id: &str) -> Result<(), Error> {
    match access::load_message(tx.conn(), caller, message_id).await {
        Ok((row, record)) if row.delete_time.is_none() => messages::tombstone(tx, row, &record).await.map(|_| ()),
        Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

fn emit(tx: &mut WriteTx, kind: EventKind, report: &Report) {
    tx.emit(NewEvent {
        kind,
        conversation_id: Some(report.conversation_id.clone()),
        audience: Audience::Staff,
        payload: EventPayload::Report(Box::new(report.clone())),
    });
}

fn report_from_row(row: report::Model) -> Result<Report, Error> {
    let message = serde_json::from_str(&row.snapshot)
        .map_err(|err| Error::Internal(format!("a report's stored message is unreadable: {err}")))?;
    let resolution = match (row.resolve_time, row.resolver_id) {
        (Some(resolve_time), Some(resolver_id)) => {
            Some(Resolution { resolver_id, resolve_time, note: row.resolution_note.unwrap_or_default() })
        }
        _ => None,
    };
    Ok(Report {
        reason: columns::stored("report reason", &row.reason)?,
        status: columns::stored("report status", &row.status)?,
        id: row.id,
        conversation_id: row.conversation_id,
        message_id: row.message_id,
        reporter_id: row.reporter_id,
        details: row.details,
        message: Box::new(message),
        create_time: row.create_time,
        resolution,
    })
}
