//! Conversations: create (with participants and a first message), read and list for a
//! viewer, update, archive for oneself, delete.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
    sea_query::{Condition, Expr, ExprTrait, Func, JoinType, Order, Query, SelectStatement},
};

use super::{
    Listing, Store, WriteTx,
    access::{self, ConversationRecord},
    accounts, columns,
    door::InConversation,
    entities::{conversation, message, participant},
    files, messages, notifications, scheduled, templates, views,
};
use crate::domain::{
    Caller, Error, Micros, View,
    conversations::{
        Conversation, ConversationCounts, ConversationFilter, ConversationPatch, NewConversation, StatusFilter,
    },
    events::{Audience, EventKind, EventPayload, NewEvent},
    idempotency::RequestKey,
    ids,
    notifications::{Notice, NotificationKind},
    paging::Page,
    views::{ConversationView, MessageView},
};

/// A created conversation as its creator sees it, with the first message if one was sent.
#[derive(Debug, Clone)]
pub struct Created {
    /// The conversation.
    pub conversation: ConversationView,
    /// The message sent with it.
    pub first_message: Option<MessageView>,
}

/// Creates a conversation, its participants and optionally its first message in one unit.
/// A retried create with the same request id returns the first result.
pub async fn create(store: &Store, caller: &Caller, new: NewConversation) -> Result<Created, Error> {
    if let Some(first) = &new.first_message {
        first.fields().authorize(caller).map_err(|err| err.within("first_message."))?;
        if first.fields().schedule_time.is_some() {
            return Err(Error::invalid(
                "first_message.schedule_time",
                "a conversation's first message is sent with it: schedule later messages with SendMessage",
            ));
        }
    }
    let id = store.write(caller, move |tx, caller| Box::pin(insert(tx, caller, new))).await?;
    created(store, caller, &id).await
}

/// A conversation an earlier create with the same request id made, as read by column name.
#[derive(Debug, FromQueryResult)]
struct EarlierCreate {
    /// Its id.
    id: String,
    /// The fingerprint of the request that created it.
    request_fingerprint: Option<String>,
}

/// The unit of a create: the new conversation's id, or the one an earlier create with the
/// same request id made.
async fn insert(tx: &mut WriteTx, caller: &Caller, new: NewConversation) -> Result<String, Error> {
    if let Some(key) = &new.request_id {
        access::claim_request_id(tx.conn(), &caller.account_id, &caller.user_id, "conversation", &key.id).await?;
    }
    if let Some(key) = new.first_message.as_ref().and_then(|first| first.fields().request_id.as_ref()) {
        access::claim_request_id(tx.conn(), &caller.account_id, &caller.user_id, "message", &key.id).await?;
    }
    if let Some(key) = &new.request_id {
        let earlier: Option<EarlierCreate> = conversation::Entity::find()
            .select_only()
            .columns([conversation::Column::Id, conversation::Column::RequestFingerprint])
            .filter(conversation::Column::AccountId.eq(&caller.account_id))
            .filter(conversation::Column::CreatorId.eq(&caller.user_id))
            .filter(conversation::Column::CreateRequestId.eq(&key.id))
            .into_model::<EarlierCreate>()
            .one(tx.conn())
            .await?;
        if let Some(EarlierCreate { id: earlier, request_fingerprint: fingerprint }) = earlier {
            key.check_retry("request_id", &format!("conversation {earlier}"), fingerprint.as_deref())?;
            return Ok(earlier);
        }
    }
    let participants = new.participants_with_caller(caller);
    let user_ids: Vec<&str> = participants.iter().map(|p| p.user_id.as_str()).collect();
    access::check_users_exist(tx.conn(), &caller.account_id, &user_ids, |index| {
        format!("participants[{index}].user_id")
    })
    .await?;
    let mut record = insert_rows(tx, caller, &new, participants).await?;
    emit(tx, EventKind::ConversationCreated, &record, Audience::Conversation)?;
    let started = NotificationKind::ConversationStarted;
    let notices = record
        .participants
        .iter()
        .filter(|p| p.user_id != caller.user_id)
        .map(|p| Notice::conversation(&p.user_id, &caller.user_id, started, &record.row.id, &record.row.subject_title))
        .collect();
    notifications::notify(tx, notices).await?;
    if let Some(first) = new.first_message {
        if let Some(key) = &first.fields().request_id {
            messages::ensure_unused_request_id(tx, caller, &key.id, "first_message.request_id").await?;
        }
        let first =
            templates::render_message(tx.conn(), caller, first).await.map_err(|err| err.within("first_message."))?;
        messages::insert(tx, caller, &mut record, first, messages::Notify::Readers).await?;
    }
    // Last: the account's row is the one every create of the account writes, so its lock
    // is held for as short a time as the unit allows.
    accounts::count_conversations(tx, &caller.account_id, 1).await?;
    Ok(record.row.id)
}

async fn insert_rows(
    tx: &mut WriteTx,
    caller: &Caller,
    new: &NewConversation,
    participants: Vec<crate::domain::conversations::NewParticipant>,
) -> Result<ConversationRecord, Error> {
    let id = ids::new_id(ids::CONVERSATION);
    tx.created_conversation(&id);
    let row = conversation::ActiveModel {
        id: Set(id.clone()),
        account_id: Set(caller.account_id.clone()),
        subject_kind: Set(new.subject.kind.clone()),
        subject_external_id: Set(new.subject.external_id.clone()),
        subject_title: Set(new.subject.title.clone()),
        subject_image_url: Set(new.subject.image_url.clone()),
        subject_attributes: Set(columns::attributes_to_column(&new.subject.attributes)),
        metadata: Set(columns::metadata_to_column(&new.metadata)),
        creator_id: Set(caller.user_id.clone()),
        create_request_id: Set(new.request_id.as_ref().map(|key| key.id.clone())),
        request_fingerprint: Set(new.request_id.as_ref().and_then(RequestKey::stored_fingerprint)),
        create_time: Set(tx.now),
        update_time: Set(tx.now),
        public_update_time: Set(tx.now),
        message_sequence: Set(0),
        note_sequence: Set(0),
        note_count: Set(0),
        last_message_id: Set(None),
        last_public_message_id: Set(None),
        handle_time: Set(None),
        handler_id: Set(None),
    }
    .insert(tx.conn())
    .await?;
    let participants: Vec<participant::Model> = participants
        .into_iter()
        .map(|p| participant::Model {
            conversation_id: id.clone(),
            user_id: p.user_id,
            account_id: caller.account_id.clone(),
            label: p.label,
            archived: false,
            unread_count: 0,
            join_time: tx.now,
            muted: false,
            mute_expire_time: None,
        })
        .collect();
    if !participants.is_empty() {
        participant::Entity::insert_many(participants.iter().cloned().map(participant::ActiveModel::from))
            .exec_without_returning(tx.conn())
            .await?;
    }
    Ok(ConversationRecord { row, participants })
}

/// The result of a create, read back as the caller sees it. The first message is the one
/// the creator sent in the create's own unit: same sender, same time.
async fn created(store: &Store, caller: &Caller, id: &str) -> Result<Created, Error> {
    let record = access::load_visible(&store.db, caller, id).await?;
    let first = message::Entity::find()
        .filter(access::of_account::<message::Entity>(&caller.account_id))
        .filter(message::Column::ConversationId.eq(id))
        .filter(message::Column::SenderId.eq(&record.row.creator_id))
        .filter(message::Column::CreateTime.eq(record.row.create_time))
        .one(&store.db)
        .await?;
    let first_message = match first {
        Some(row) => Some(messages::get(store, caller, &row.id, View::Basic).await?),
        None => None,
    };
    let conversation = views::present_one(&store.db, caller, record, View::Basic).await?;
    Ok(Created { conversation, first_message })
}

/// A conversation as `caller` sees it.
pub async fn get(store: &Store, caller: &Caller, id: &str, view: View) -> Result<ConversationView, Error> {
    let record = access::load_visible(&store.db, caller, id).await?;
    views::present_one(&store.db, caller, record, view).await
}

/// Lists the conversations `caller` may see, most recently active first, with how many
/// match, are active and are unread.
pub async fn list(
    store: &Store,
    caller: &Caller,
    filter: &ConversationFilter,
    page: &Page<(i64, String)>,
    view: View,
) -> Result<Listing<ConversationView, ConversationCounts>, Error> {
    let keys = page_keys(store, caller, filter, page).await?;
    let (keys, next_page_token) = page.finish(keys, |key| (key.activity, key.id.clone()));
    let ids: Vec<String> = keys.into_iter().map(|k| k.id).collect();
    let records = access::load_many(&store.db, &caller.account_id, &ids).await?;
    let items = views::present(&store.db, caller, records, view).await?;
    let total = counts(store, caller, filter).await?;
    Ok(Listing { items, next_page_token, total })
}

/// How many conversations the listing has, as active and as unread. A staff inbox with no
/// filter but its status covers the whole account: it is counted from the account's
/// conversation counter and the caller's own participant rows, never by counting every
/// conversation. Anything narrower counts the rows it selects.
async fn counts(store: &Store, caller: &Caller, filter: &ConversationFilter) -> Result<ConversationCounts, Error> {
    let whole_account = caller.is_staff()
        && !filter.participating_only
        && filter.label.is_none()
        && filter.subject_kind.is_none()
        && filter.subject_external_id.is_none();
    if !whole_account {
        let count = |status| count(store, listing(caller, filter).cond_where(status_condition(status)).to_owned());
        return Ok(ConversationCounts {
            matching: count(filter.status).await?,
            active: count(StatusFilter::Active).await?,
            unread: count(StatusFilter::Unread).await?,
        });
    }
    let everything = accounts::conversation_count(store, &caller.account_id).await?;
    let own = |condition: Condition| {
        let mut select = Query::select();
        select
            .from(participant::Entity)
            .expr_as(Func::count(Expr::col((participant::Entity, participant::Column::ConversationId))), "n")
            .and_where(access::of_account::<participant::Entity>(&caller.account_id))
            .and_where(Expr::col((participant::Entity, participant::Column::UserId)).eq(caller.user_id.clone()))
            .cond_where(condition);
        select
    };
    let archived = count_rows(store, own(status_condition(StatusFilter::Archived))).await?;
    let unread = count_rows(store, own(status_condition(StatusFilter::Unread))).await?;
    let active = everything - archived;
    let matching = match filter.status {
        StatusFilter::All => everything,
        StatusFilter::Active => active,
        StatusFilter::Unread => unread,
        StatusFilter::Read => active - unread,
        StatusFilter::Archived => archived,
    };
    Ok(ConversationCounts { matching, active, unread })
}

#[derive(Debug, FromQueryResult)]
struct ListedKey {
    id: String,
    /// The sort key: the update time the caller sees.
    activity: i64,
}

/// The sort keys of one page (plus one, to tell whether another follows).
async fn page_keys(
    store: &Store,
    caller: &Caller,
    filter: &ConversationFilter,
    page: &Page<(i64, String)>,
) -> Result<Vec<ListedKey>, Error> {
    // Staff see private notes, so notes count as activity for them only.
    let activity =
        if caller.is_staff() { conversation::Column::UpdateTime } else { conversation::Column::PublicUpdateTime };
    let activity = || Expr::col((conversation::Entity, activity));
    let id = || Expr::col((conversation::Entity, conversation::Column::Id));
    let mut select = listing(caller, filter);
    select
        .column((conversation::Entity, conversation::Column::Id))
        .expr_as(activity(), "activity")
        .cond_where(status_condition(filter.status))
        .order_by_expr(activity(), Order::Desc)
        .order_by_expr(id(), Order::Desc)
        .limit(page.fetch_limit());
    if let Some((time, after_id)) = &page.after {
        select.cond_where(
            Condition::any()
                .add(activity().lt(*time))
                .add(Condition::all().add(activity().eq(*time)).add(id().lt(after_id.clone()))),
        );
    }
    let backend = store.db.get_database_backend();
    Ok(ListedKey::find_by_statement(backend.build(&select)).all(&store.db).await?)
}

async fn count(store: &Store, mut select: SelectStatement) -> Result<i64, Error> {
    select.expr_as(Func::count(Expr::col((conversation::Entity, conversation::Column::Id))), "n");
    count_rows(store, select).await
}

/// The `n` of a counting query.
async fn count_rows(store: &Store, select: SelectStatement) -> Result<i64, Error> {
    let row = store.db.query_one(&select).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0))
}

/// The conversations `caller` may see that match `filter` (all but its status), joined with
/// the caller's participant row when there is one.
fn listing(caller: &Caller, filter: &ConversationFilter) -> SelectStatement {
    let mut select = Query::select();
    let own_row = Condition::all()
        .add(
            Expr::col((participant::Entity, participant::Column::ConversationId))
                .equals((conversation::Entity, conversation::Column::Id)),
        )
        // Rows of one account meet on one shard when the tables are sharded by account.
        .add(
            Expr::col((participant::Entity, participant::Column::AccountId))
                .equals((conversation::Entity, conversation::Column::AccountId)),
        )
        .add(Expr::col((participant::Entity, participant::Column::UserId)).eq(caller.user_id.clone()));
    let join = if caller.is_staff() && !filter.participating_only { JoinType::LeftJoin } else { JoinType::InnerJoin };
    select
        .from(conversation::Entity)
        .join(join, participant::Entity, own_row)
        .and_where(Expr::col((conversation::Entity, conversation::Column::AccountId)).eq(caller.account_id.clone()));
    if let Some(label) = &filter.label {
        select.and_where(Expr::col((participant::Entity, participant::Column::Label)).eq(label.clone()));
    }
    if let Some(kind) = &filter.subject_kind {
        select.and_where(Expr::col((conversation::Entity, conversation::Column::SubjectKind)).eq(kind.clone()));
    }
    if let Some(external_id) = &filter.subject_external_id {
        select.and_where(
            Expr::col((conversation::Entity, conversation::Column::SubjectExternalId)).eq(external_id.clone()),
        );
    }
    // Staff's own mark (the API refuses the filter to members, who never see it).
    if let Some(handled) = filter.handled {
        let handle_time = Expr::col((conversation::Entity, conversation::Column::HandleTime));
        select.and_where(if handled { handle_time.is_not_null() } else { handle_time.is_null() });
    }
    select
}

/// The caller's read and archive state as a condition on its (possibly missing) row.
fn status_condition(status: StatusFilter) -> Condition {
    let archived = || Expr::col((participant::Entity, participant::Column::Archived));
    let unread = || Expr::col((participant::Entity, participant::Column::UnreadCount));
    let not_archived = || Condition::any().add(archived().is_null()).add(archived().eq(false));
    match status {
        StatusFilter::All => Condition::all(),
        StatusFilter::Active => not_archived(),
        StatusFilter::Archived => Condition::all().add(archived().eq(true)),
        StatusFilter::Unread => Condition::all().add(not_archived()).add(unread().gt(0)),
        StatusFilter::Read => {
            Condition::all().add(not_archived()).add(Condition::any().add(unread().is_null()).add(unread().eq(0)))
        }
    }
}

/// Changes the subject or metadata. Staff only: they hold the host product's ids.
pub async fn update(
    store: &Store,
    caller: &Caller,
    id: String,
    patch: ConversationPatch,
) -> Result<ConversationView, Error> {
    caller.require_staff("update conversations")?;
    store
        .write_in(caller, InConversation::new(caller, &id), move |tx, _, record| {
            Box::pin(async move {
                let mut active: conversation::ActiveModel = record.row.into();
                if let Some(kind) = patch.subject_kind {
                    active.subject_kind = Set(kind);
                }
                if let Some(external_id) = patch.subject_external_id {
                    active.subject_external_id = Set(external_id);
                }
                if let Some(title) = patch.subject_title {
                    active.subject_title = Set(title);
                }
                if let Some(image_url) = patch.subject_image_url {
                    active.subject_image_url = Set(image_url);
                }
                if let Some(attributes) = &patch.subject_attributes {
                    active.subject_attributes = Set(columns::attributes_to_column(attributes));
                }
                if let Some(metadata) = &patch.metadata {
                    active.metadata = Set(columns::metadata_to_column(metadata));
                }
                active.update_time = Set(tx.now);
                active.public_update_time = Set(tx.now);
                let record =
                    ConversationRecord { row: access::save(tx.conn(), tx.account_id(), active).await?, ..record };
                emit(tx, EventKind::ConversationUpdated, &record, Audience::Conversation)
            })
        })
        .await?;
    get(store, caller, &id, View::Basic).await
}

/// Archives or unarchives the conversation for the caller only.
pub async fn set_archived(
    store: &Store,
    caller: &Caller,
    id: String,
    archived: bool,
) -> Result<ConversationView, Error> {
    change_own_row(store, caller, id, move |own, _| {
        (own.archived != archived).then(|| {
            let mut active: participant::ActiveModel = own.into();
            active.archived = Set(archived);
            let kind = if archived { EventKind::ConversationArchived } else { EventKind::ConversationUnarchived };
            OwnChange { row: active, kind, payload: Box::new(EventPayload::Conversation) }
        })
    })
    .await
}

/// A change of the caller's own row in a conversation: the row after it, and the event
/// telling the caller (its payload made from the conversation).
pub(super) struct OwnChange {
    pub row: participant::ActiveModel,
    pub kind: EventKind,
    pub payload: Box<dyn FnOnce(Box<Conversation>) -> EventPayload + Send>,
}

/// Changes the caller's own state in a conversation it takes part in (archived, muted):
/// `change` gets its row and the unit's time and says what changes, or `None` when nothing
/// does. The caller's own business, so the event goes to it alone. The conversation as
/// the caller sees it afterwards.
pub(super) async fn change_own_row<F>(
    store: &Store,
    caller: &Caller,
    id: String,
    change: F,
) -> Result<ConversationView, Error>
where
    F: FnOnce(participant::Model, Micros) -> Option<OwnChange> + Send + 'static,
{
    store
        .write_in(caller, InConversation::new(caller, &id), move |tx, caller, record| {
            Box::pin(async move {
                let own = record.own_row(caller)?.clone();
                let Some(OwnChange { row, kind, payload }) = change(own, tx.now) else {
                    return Ok(());
                };
                access::save(tx.conn(), tx.account_id(), row).await?;
                tx.emit(NewEvent {
                    kind,
                    conversation_id: Some(record.row.id.clone()),
                    audience: Audience::User(caller.user_id.clone()),
                    payload: payload(Box::new(record.snapshot(false)?)),
                });
                Ok(())
            })
        })
        .await?;
    get(store, caller, &id, View::Basic).await
}

/// Deletes a conversation with everything in it. Staff only.
pub async fn delete(store: &Store, caller: &Caller, id: String) -> Result<(), Error> {
    caller.require_staff("delete conversations")?;
    store
        .write_in(caller, InConversation::new(caller, &id), move |tx, caller, record| {
            Box::pin(async move {
                let staff = access::staff_among(tx.conn(), &caller.account_id, record.participant_ids()).await?;
                let digests = files::of_conversation(tx, &id).await?;
                conversation::Entity::delete_by_id(id.clone())
                    .filter(access::of_account::<conversation::Entity>(&caller.account_id))
                    .exec(tx.conn())
                    .await?;
                notifications::forget_conversation(tx, &id, None).await?;
                // Its messages' files went with it: so do the bytes nothing else names.
                files::forget_unnamed(tx, digests).await?;
                scheduled::strand(tx, &id, None, &scheduled::deleted_reason(&id)).await?;
                // The participants are gone with it, so members would not see a
                // conversation-wide event: staff get one copy, each member its own.
                let deleted = |audience| NewEvent {
                    kind: EventKind::ConversationDeleted,
                    conversation_id: Some(id.clone()),
                    audience,
                    payload: EventPayload::ConversationDeleted { conversation_id: id.clone() },
                };
                tx.emit(deleted(Audience::Staff));
                for member in record.participants.iter().filter(|p| !staff.contains(&p.user_id)) {
                    tx.emit(deleted(Audience::User(member.user_id.clone())));
                }
                // Last, as in a create: the account's row is every create's and delete's.
                accounts::count_conversations(tx, &caller.account_id, -1).await
            })
        })
        .await
}

/// A conversation event carrying the conversation as everyone may see it.
fn emit(tx: &mut WriteTx, kind: EventKind, record: &ConversationRecord, audience: Audience) -> Result<(), Error> {
    tx.emit(NewEvent {
        kind,
        conversation_id: Some(record.row.id.clone()),
        audience,
        payload: EventPayload::Conversation(Box::new(record.snapshot(false)?)),
    });
    Ok(())
}
