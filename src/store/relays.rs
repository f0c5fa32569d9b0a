//! What relays report and are bound by: an outgoing relayed message's delivery (moved
//! only forward, each move an event), the channel's raw payload of a relayed message
//! (kept apart from the message, read by staff only), and the account's suppressed
//! addresses, which a non-transactional outgoing message may not be sent to.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use super::{
    Listing, Store, WriteTx, access, columns,
    door::OfMessage,
    entities::{message, raw_payload, suppression},
    views,
};
use crate::domain::{
    Caller, Error,
    channels::{Channel, Envelope},
    events::{Audience, EventKind, EventPayload, NewEvent},
    messages::{Direction, Message},
    paging::Page,
    relays::{DeliveryReport, DeliveryState, RawPayload, Suppression, SuppressionQuery, SuppressionReason},
};

/// The delivery a new message starts with: PENDING for an outgoing relayed message, none
/// for any other (the store's only writer of a first state). A private note is never
/// delivered: it is staff's, and no relay is to send it to a customer.
pub(super) fn first_delivery(envelope: &Option<Envelope>, direction: Direction, private: bool) -> Option<String> {
    let delivered = envelope.is_some() && direction == Direction::Outgoing && !private;
    delivered.then(|| DeliveryState::Pending.as_str().to_owned())
}

/// Applies a relay's report to an outgoing relayed message (staff only): moves it forward,
/// or changes nothing for a report that would not (a repeat, or one that arrives late).
pub async fn report_delivery(
    store: &Store,
    caller: &Caller,
    message_id: String,
    report: DeliveryReport,
) -> Result<Message, Error> {
    caller.require_staff("report deliveries")?;
    store
        .write_in(caller, OfMessage::new(caller, &message_id), move |tx, _, (row, record)| {
            Box::pin(async move {
                let Some(delivery) = columns::delivery_of(&row)? else {
                    return Err(Error::FailedPrecondition(format!(
                        "message {message_id} is not an outgoing relayed message: only those have a delivery"
                    )));
                };
                if row.delete_time.is_some() {
                    // Its words are gone (and its raw payload with them): nothing more is kept.
                    return Err(Error::FailedPrecondition(format!("message {message_id} is deleted")));
                }
                let external_id = learnt_external_id(&message_id, report.external_id, &row.external_id)?;
                let moves = delivery.state.advances_to(report.state);
                if !moves && external_id.is_none() {
                    return views::assemble_one(tx.conn(), row, &record).await;
                }
                let mut active: message::ActiveModel = row.clone().into();
                if let Some(external_id) = &external_id {
                    let channel: Channel = columns::stored("channel", row.channel.as_deref().unwrap_or_default())?;
                    ensure_external_id_free(tx.conn(), tx.account_id(), channel, external_id).await?;
                    active.external_id = Set(Some(external_id.clone()));
                }
                if moves {
                    active.delivery_state = Set(Some(report.state.as_str().to_owned()));
                    active.delivery_error_code = Set(report.error.as_ref().map(|error| error.code.clone()));
                    active.delivery_error_message = Set(report.error.map(|error| error.message));
                    active.delivery_update_time = Set(Some(tx.now));
                    if let Some(data) = report.raw_payload {
                        keep_raw_payload(tx, &message_id, data).await?;
                    }
                }
                let row = access::save(tx.conn(), tx.account_id(), active).await?;
                let message = views::assemble_one(tx.conn(), row, &record).await?;
                tx.emit(NewEvent {
                    kind: EventKind::MessageDeliveryUpdated,
                    conversation_id: Some(message.conversation_id.clone()),
                    // As who sees its envelope (`Envelope::visible_to`): staff, and its sender.
                    audience: Audience::StaffAnd(message.sender_id.clone()),
                    payload: EventPayload::Message(Box::new(message.clone())),
                });
                Ok(message)
            })
        })
        .await
}

/// The channel's id a report gives a message, to store: `None` when it gives none or the
/// one kept; FAILED_PRECONDITION when the message has another (ids are never rewritten).
fn learnt_external_id(message_id: &str, given: Option<String>, kept: &Option<String>) -> Result<Option<String>, Error> {
    match (given, kept) {
        (Some(given), Some(kept)) if given != *kept => Err(Error::FailedPrecondition(format!(
            "external_id: message {message_id} already has external id {kept:?}"
        ))),
        (Some(given), None) => Ok(Some(given)),
        _ => Ok(None),
    }
}

/// Keeps `data` as message `message_id`'s raw payload, replacing any kept before.
pub(super) async fn keep_raw_payload(tx: &WriteTx, message_id: &str, data: Vec<u8>) -> Result<(), Error> {
    forget_raw_payload(tx, message_id).await?;
    raw_payload::ActiveModel {
        message_id: Set(message_id.to_owned()),
        account_id: Set(tx.account_id().to_owned()),
        data: Set(data),
        update_time: Set(tx.now),
    }
    .insert(tx.conn())
    .await?;
    Ok(())
}

/// Drops message `message_id`'s raw payload, if any: a deleted message keeps no copy of
/// what it said.
pub(super) async fn forget_raw_payload(tx: &WriteTx, message_id: &str) -> Result<(), Error> {
    raw_payload::Entity::delete_many()
        .filter(access::of_account::<raw_payload::Entity>(tx.account_id()))
        .filter(raw_payload::Column::MessageId.eq(message_id))
        .exec(tx.conn())
        .await?;
    Ok(())
}

/// A relayed message's raw payload (staff only); NOT_FOUND when none was kept.
pub async fn raw_payload(store: &Store, caller: &Caller, message_id: &str) -> Result<RawPayload, Error> {
    caller.require_staff("read raw payloads")?;
    let row = raw_payload::Entity::find_by_id(message_id.to_owned())
        .filter(access::of_account::<raw_payload::Entity>(&caller.account_id))
        .one(&store.db)
        .await?
        .ok_or_else(|| Error::not_found("raw payload of message", message_id))?;
    Ok(RawPayload { message_id: row.message_id, data: row.data, update_time: row.update_time })
}

/// ALREADY_EXISTS, naming the message, when the account already has a message with this
/// channel and external id: a relay delivering the same message twice. Only staff set
/// external ids (`NewMessage::authorize`, `relays::report_delivery`), and staff see every
/// message and envelope of their account, so naming it tells the caller nothing it could
/// not read.
pub(super) async fn ensure_external_id_free<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    channel: Channel,
    external_id: &str,
) -> Result<(), Error> {
    let existing: Option<String> = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(message::Column::AccountId.eq(account_id))
        .filter(message::Column::Channel.eq(channel.as_str()))
        .filter(message::Column::ExternalId.eq(external_id))
        .into_tuple()
        .one(conn)
        .await?;
    match existing {
        Some(id) => Err(Error::AlreadyExists(format!(
            "envelope.external_id: message {id} already has {} external id {external_id:?}",
            channel.as_str()
        ))),
        None => Ok(()),
    }
}

/// FAILED_PRECONDITION, naming the suppression, when an outgoing message that is not
/// transactional is addressed to an address the account suppressed on its channel.
pub(super) async fn ensure_not_suppressed<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    envelope: &Envelope,
    direction: Direction,
) -> Result<(), Error> {
    if direction != Direction::Outgoing || envelope.transactional || envelope.to_address.is_empty() {
        return Ok(());
    }
    let found = suppression::Entity::find_by_id((
        account_id.to_owned(),
        envelope.channel.as_str().to_owned(),
        envelope.to_address.clone(),
    ))
    .one(conn)
    .await?;
    match found {
        Some(row) => Err(Error::FailedPrecondition(format!(
            "envelope.to_address: {} is suppressed on {} ({}, since {}); only a transactional message may be sent \
             to it",
            row.address,
            row.channel,
            row.reason,
            crate::domain::format_time(row.create_time),
        ))),
        None => Ok(()),
    }
}

/// Suppresses an address (staff only); one already suppressed is returned as it is (also
/// when two add it at once: the second insert does nothing, and both read the row).
pub async fn add_suppression(
    store: &Store,
    caller: &Caller,
    channel: Channel,
    address: String,
    reason: SuppressionReason,
    note: String,
) -> Result<Suppression, Error> {
    caller.require_staff("suppress addresses")?;
    store
        .write(caller, move |tx, caller| {
            Box::pin(async move {
                let key = (caller.account_id.clone(), channel.as_str().to_owned(), address.clone());
                let row = suppression::ActiveModel {
                    account_id: Set(caller.account_id.clone()),
                    channel: Set(channel.as_str().to_owned()),
                    address: Set(address),
                    reason: Set(reason.as_str().to_owned()),
                    note: Set(note),
                    creator_id: Set(caller.user_id.clone()),
                    create_time: Set(tx.now),
                };
                suppression::Entity::insert(row)
                    .on_conflict_do_nothing_on([
                        suppression::Column::AccountId,
                        suppression::Column::Channel,
                        suppression::Column::Address,
                    ])
                    .exec_without_returning(tx.conn())
                    .await?;
                let row = suppression::Entity::find_by_id(key).one(tx.conn()).await?;
                suppression_from_row(row.ok_or_else(|| Error::Internal("a suppression just added is gone".into()))?)
            })
        })
        .await
}

/// Lifts a suppression (staff only); NOT_FOUND when there is none.
pub async fn remove_suppression(
    store: &Store,
    caller: &Caller,
    channel: Channel,
    address: String,
) -> Result<(), Error> {
    caller.require_staff("lift suppressions")?;
    store
        .write(caller, move |tx, caller| {
            Box::pin(async move {
                let key = (caller.account_id.clone(), channel.as_str().to_owned(), address.clone());
                let deleted = suppression::Entity::delete_by_id(key).exec(tx.conn()).await?;
                if deleted.rows_affected == 0 {
                    return Err(Error::not_found("suppression", format!("{} {address}", channel.as_str())));
                }
                Ok(())
            })
        })
        .await
}

/// The account's suppressions, newest first (staff only), optionally of one channel or
/// one address.
pub async fn list_suppressions(
    store: &Store,
    caller: &Caller,
    query: &SuppressionQuery,
    page: &Page<(i64, String, String)>,
) -> Result<Listing<Suppression>, Error> {
    caller.require_staff("list suppressions")?;
    let mut find = suppression::Entity::find().filter(access::of_account::<suppression::Entity>(&caller.account_id));
    if let Some(channel) = query.channel {
        find = find.filter(suppression::Column::Channel.eq(channel.as_str()));
    }
    if let Some(address) = &query.address {
        find = find.filter(suppression::Column::Address.eq(address));
    }
    let total = sea_orm::PaginatorTrait::count(find.clone(), &store.db).await?;
    if let Some((time, channel, address)) = &page.after {
        let key = Expr::tuple([
            Expr::col(suppression::Column::CreateTime),
            Expr::col(suppression::Column::Channel),
            Expr::col(suppression::Column::Address),
        ]);
        let after = Expr::tuple([Expr::val(*time), Expr::val(channel.clone()), Expr::val(address.clone())]);
        // Newest first, then by channel and address descending: strictly below the last.
        find = find.filter(key.lt(after));
    }
    let rows = find
        .order_by_desc(suppression::Column::CreateTime)
        .order_by_desc(suppression::Column::Channel)
        .order_by_desc(suppression::Column::Address)
        .limit(page.fetch_limit())
        .all(&store.db)
        .await?;
    let (rows, next_page_token) = page.finish(rows, |row| (row.create_time, row.channel.clone(), row.address.clone()));
    let items = rows.into_iter().map(suppression_from_row).collect::<Result<_, _>>()?;
    Ok(Listing { items, next_page_token, total })
}

fn suppression_from_row(row: suppression::Model) -> Result<Suppression, Error> {
    Ok(Suppression {
        channel: columns::stored("channel", &row.channel)?,
        address: row.address,
        reason: columns::stored("suppression reason", &row.reason)?,
        note: row.note,
        creator_id: row.creator_id,
        create_time: row.create_time,
    })
}
