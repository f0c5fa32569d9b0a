//! Conversations and participants: create, read, list for a viewer, update, archive, delete.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Condition, Expr, ExprTrait, Func, JoinType, Order, Query, SelectStatement},
};

use super::{
    Store, WriteTx,
    entities::{conversation, message, participant, user},
    json, messages,
};
use crate::domain::{
    Caller, Error,
    conversations::{
        self as rules, Conversation, ConversationCounts, ConversationFilter, ConversationPatch, NewConversation,
        NewParticipant, Participant, StatusFilter, Subject, ViewerState,
    },
    events::{Audience, EventKind, EventPayload, NewEvent},
    ids,
    messages::Message,
    paging::Page,
};

/// A conversation row with its participant rows, as read in one place.
pub(super) struct Loaded {
    pub row: conversation::Model,
    pub members: Vec<participant::Model>,
}

impl Loaded {
    pub fn member(&self, user_id: &str) -> Option<&participant::Model> {
        self.members.iter().find(|m| m.user_id == user_id)
    }

    /// The conversation without viewer state or last message. `staff_view` shows the
    /// update time that private notes move too; everyone else sees the public one.
    pub fn snapshot(&self, staff_view: bool) -> Result<Conversation, Error> {
        Ok(Conversation {
            id: self.row.id.clone(),
            account_id: self.row.account_id.clone(),
            subject: Subject {
                kind: self.row.subject_kind.clone(),
                external_id: self.row.subject_external_id.clone(),
                title: self.row.subject_title.clone(),
            },
            metadata: json::metadata_from_column(&self.row.metadata)?,
            participants: self
                .members
                .iter()
                .map(|m| Participant {
                    user_id: m.user_id.clone(),
                    label: m.label.clone(),
                    join_time: m.join_time,
                    user: None,
                })
                .collect(),
            create_time: self.row.create_time,
            update_time: if staff_view { self.row.update_time } else { self.row.public_update_time },
            last_message: None,
            viewer: None,
        })
    }

    /// Whether `caller` may see the conversation: NOT_FOUND otherwise, never telling
    /// "forbidden" from "missing".
    pub fn ensure_visible(&self, caller: &Caller) -> Result<(), Error> {
        if rules::can_view(caller, &self.row.account_id, self.member(&caller.user_id).is_some()) {
            Ok(())
        } else {
            Err(Error::not_found("conversation", &self.row.id))
        }
    }
}

/// Reads a conversation and its participants, or NOT_FOUND when `caller` may not see it.
pub(super) async fn load_visible<C: ConnectionTrait>(conn: &C, caller: &Caller, id: &str) -> Result<Loaded, Error> {
    let row = conversation::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .ok_or_else(|| Error::not_found("conversation", id))?;
    let members = members_of(conn, std::slice::from_ref(&row.id)).await?;
    let loaded = Loaded { row, members };
    loaded.ensure_visible(caller)?;
    Ok(loaded)
}

async fn members_of<C: ConnectionTrait>(
    conn: &C,
    conversation_ids: &[String],
) -> Result<Vec<participant::Model>, Error> {
    Ok(participant::Entity::find()
        .filter(participant::Column::ConversationId.is_in(conversation_ids.to_vec()))
        .order_by_asc(participant::Column::JoinTime)
        .order_by_asc(participant::Column::UserId)
        .all(conn)
        .await?)
}

/// The ids of the staff among `user_ids`.
pub(super) async fn staff_among<C: ConnectionTrait>(conn: &C, mut ids: Vec<String>) -> Result<HashSet<String>, Error> {
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<String> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Id.is_in(ids))
        .filter(user::Column::Role.is_in(crate::domain::users::Role::STAFF))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

impl Store {
    /// Creates a conversation, its participants and optionally its first message in one
    /// transaction. A retried create with the same request id returns the first result.
    pub async fn create_conversation(
        &self,
        caller: &Caller,
        new: NewConversation,
    ) -> Result<(Conversation, Option<Message>), Error> {
        if let Some(first) = &new.first_message {
            first.authorize(caller, "first_message.")?;
        }
        let mut tx = self.write(caller).await?;
        if let Some(request_id) = &new.request_id {
            let earlier = conversation::Entity::find()
                .filter(conversation::Column::AccountId.eq(&caller.account_id))
                .filter(conversation::Column::CreatorId.eq(&caller.user_id))
                .filter(conversation::Column::CreateRequestId.eq(request_id))
                .one(tx.conn())
                .await?;
            if let Some(earlier) = earlier {
                drop(tx);
                return self.replay_create(caller, &earlier.id).await;
            }
        }
        let participants = new.participants_with_caller(caller);
        check_users_exist(&tx, &caller.account_id, &participants, |index| format!("participants[{index}].user_id"))
            .await?;

        let id = ids::new_id(ids::CONVERSATION);
        let row = conversation::ActiveModel {
            id: Set(id.clone()),
            account_id: Set(caller.account_id.clone()),
            subject_kind: Set(new.subject.kind.clone()),
            subject_external_id: Set(new.subject.external_id.clone()),
            subject_title: Set(new.subject.title.clone()),
            metadata: Set(json::metadata_to_column(&new.metadata)),
            creator_id: Set(caller.user_id.clone()),
            create_request_id: Set(new.request_id.clone()),
            create_time: Set(tx.now),
            update_time: Set(tx.now),
            public_update_time: Set(tx.now),
            message_sequence: Set(0),
            note_sequence: Set(0),
            last_message_id: Set(None),
            last_public_message_id: Set(None),
        }
        .insert(tx.conn())
        .await?;
        let members: Vec<participant::Model> = participants
            .iter()
            .map(|p| participant::Model {
                conversation_id: id.clone(),
                user_id: p.user_id.clone(),
                account_id: caller.account_id.clone(),
                label: p.label.clone(),
                archived: false,
                unread_count: 0,
                join_time: tx.now,
            })
            .collect();
        if !members.is_empty() {
            participant::Entity::insert_many(members.iter().cloned().map(participant::ActiveModel::from))
                .exec_without_returning(tx.conn())
                .await?;
        }
        let mut loaded = Loaded { row, members };
        tx.emit(NewEvent {
            kind: EventKind::ConversationCreated,
            conversation_id: Some(id.clone()),
            audience: Audience::default(),
            payload: EventPayload::Conversation(Box::new(loaded.snapshot(false)?)),
        });
        if let Some(first) = new.first_message {
            messages::insert_message(&mut tx, caller, &mut loaded, first, "first_message.").await?;
        }
        tx.commit().await?;
        self.replay_create(caller, &id).await
    }

    /// The result of a create, read back as the caller sees it. The first message is the
    /// one the creator sent in the create's own transaction: same sender, same time.
    async fn replay_create(&self, caller: &Caller, id: &str) -> Result<(Conversation, Option<Message>), Error> {
        let conversation = self.get_conversation(caller, id, false).await?;
        let row = conversation::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("conversation", id))?;
        let first = message::Entity::find()
            .filter(message::Column::ConversationId.eq(id))
            .filter(message::Column::SenderId.eq(&row.creator_id))
            .filter(message::Column::CreateTime.eq(row.create_time))
            .one(&self.db)
            .await?;
        let first = match first {
            Some(row) => Some(self.message_for(caller, row, false).await?),
            None => None,
        };
        Ok((conversation, first))
    }

    /// A conversation as `caller` sees it; `full` expands participants' users.
    pub async fn get_conversation(&self, caller: &Caller, id: &str, full: bool) -> Result<Conversation, Error> {
        let loaded = load_visible(&self.db, caller, id).await?;
        let mut views = self.present(caller, vec![loaded], full).await?;
        views.pop().ok_or_else(|| Error::Internal("presenting one conversation gave none".into()))
    }

    /// Turns loaded conversations into what `caller` sees: its own state and the newest
    /// message it may see.
    pub(super) async fn present(
        &self,
        caller: &Caller,
        loaded: Vec<Loaded>,
        full: bool,
    ) -> Result<Vec<Conversation>, Error> {
        let last_ids: Vec<String> = loaded
            .iter()
            .filter_map(|l| {
                if caller.is_staff() { l.row.last_message_id.clone() } else { l.row.last_public_message_id.clone() }
            })
            .collect();
        let last_rows = if last_ids.is_empty() {
            Vec::new()
        } else {
            message::Entity::find().filter(message::Column::Id.is_in(last_ids)).all(&self.db).await?
        };
        let mut last_by_conversation: HashMap<String, Message> = messages::assemble(&self.db, last_rows, &loaded)
            .await?
            .into_iter()
            .map(|m| (m.conversation_id.clone(), m))
            .collect();
        let users = if full {
            let user_ids = loaded.iter().flat_map(|l| l.members.iter().map(|m| m.user_id.clone())).collect();
            self.users_by_id(caller, user_ids).await?
        } else {
            HashMap::new()
        };
        loaded
            .into_iter()
            .map(|l| {
                let mut conversation = l.snapshot(caller.is_staff())?;
                conversation.viewer = l.member(&caller.user_id).map(|m| ViewerState {
                    label: m.label.clone(),
                    unread_count: m.unread_count,
                    archived: m.archived,
                });
                conversation.last_message = last_by_conversation.remove(&conversation.id).map(Box::new);
                for participant in &mut conversation.participants {
                    participant.user = users.get(&participant.user_id).cloned();
                }
                Ok(conversation)
            })
            .collect()
    }

    /// Lists the conversations `caller` may see, most recently active first.
    pub async fn list_conversations(
        &self,
        caller: &Caller,
        filter: &ConversationFilter,
        page: &Page<(i64, String)>,
        full: bool,
    ) -> Result<(Vec<Conversation>, String, ConversationCounts), Error> {
        let backend = self.db.get_database_backend();
        // Staff see private notes, so notes count as activity for them only.
        let activity =
            if caller.is_staff() { conversation::Column::UpdateTime } else { conversation::Column::PublicUpdateTime };
        let mut select = listing(caller, filter);
        select
            .column((conversation::Entity, conversation::Column::Id))
            .expr_as(Expr::col((conversation::Entity, activity)), "activity")
            .cond_where(status_condition(filter.status))
            .order_by((conversation::Entity, activity), Order::Desc)
            .order_by((conversation::Entity, conversation::Column::Id), Order::Desc)
            .limit(page.fetch_limit());
        if let Some((time, id)) = &page.after {
            select.cond_where(
                Condition::any().add(Expr::col((conversation::Entity, activity)).lt(*time)).add(
                    Condition::all()
                        .add(Expr::col((conversation::Entity, activity)).eq(*time))
                        .add(Expr::col((conversation::Entity, conversation::Column::Id)).lt(id.clone())),
                ),
            );
        }
        let keys: Vec<ListedKey> = ListedKey::find_by_statement(backend.build(&select)).all(&self.db).await?;
        let (keys, next) = page.finish(keys, |key| (key.activity, key.id.clone()));

        let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
        let mut rows: HashMap<String, conversation::Model> = conversation::Entity::find()
            .filter(conversation::Column::Id.is_in(ids.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.id.clone(), row))
            .collect();
        let mut members: HashMap<String, Vec<participant::Model>> = HashMap::new();
        for member in members_of(&self.db, &ids).await? {
            members.entry(member.conversation_id.clone()).or_default().push(member);
        }
        let loaded = ids
            .iter()
            .filter_map(|id| rows.remove(id).map(|row| Loaded { members: members.remove(id).unwrap_or_default(), row }))
            .collect();
        let conversations = self.present(caller, loaded, full).await?;

        let counts = ConversationCounts {
            matching: self.count(listing(caller, filter).cond_where(status_condition(filter.status))).await?,
            active: self.count(listing(caller, filter).cond_where(status_condition(StatusFilter::Active))).await?,
            unread: self.count(listing(caller, filter).cond_where(status_condition(StatusFilter::Unread))).await?,
        };
        Ok((conversations, next, counts))
    }

    async fn count(&self, select: &mut SelectStatement) -> Result<i64, Error> {
        select.expr_as(Func::count(Expr::col((conversation::Entity, conversation::Column::Id))), "n");
        let row = self.db.query_one(&*select).await?;
        Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0))
    }

    /// Changes the subject or metadata. Staff only: they hold the host product's ids.
    pub async fn update_conversation(
        &self,
        caller: &Caller,
        id: &str,
        patch: ConversationPatch,
    ) -> Result<Conversation, Error> {
        caller.require_staff("update conversations")?;
        let mut tx = self.write(caller).await?;
        let loaded = load_visible(tx.conn(), caller, id).await?;
        let mut active: conversation::ActiveModel = loaded.row.into();
        if let Some(kind) = patch.subject_kind {
            active.subject_kind = Set(kind);
        }
        if let Some(external_id) = patch.subject_external_id {
            active.subject_external_id = Set(external_id);
        }
        if let Some(title) = patch.subject_title {
            active.subject_title = Set(title);
        }
        if let Some(metadata) = &patch.metadata {
            active.metadata = Set(json::metadata_to_column(metadata));
        }
        active.update_time = Set(tx.now);
        active.public_update_time = Set(tx.now);
        let row = active.update(tx.conn()).await?;
        let loaded = Loaded { row, members: loaded.members };
        emit_conversation(&mut tx, EventKind::ConversationUpdated, &loaded, Audience::default())?;
        tx.commit().await?;
        self.get_conversation(caller, id, false).await
    }

    pub async fn add_participant(&self, caller: &Caller, id: &str, new: NewParticipant) -> Result<Conversation, Error> {
        caller.require_staff("add participants")?;
        let mut tx = self.write(caller).await?;
        let mut loaded = load_visible(tx.conn(), caller, id).await?;
        if loaded.member(&new.user_id).is_some() {
            return Err(Error::AlreadyExists(format!("user {} already takes part in conversation {id}", new.user_id)));
        }
        check_users_exist(&tx, &caller.account_id, std::slice::from_ref(&new), |_| "participant.user_id".into())
            .await?;
        let is_staff = !staff_among(tx.conn(), vec![new.user_id.clone()]).await?.is_empty();
        let unread_count = super::reads::recount(tx.conn(), id, &new.user_id, is_staff).await?;
        let member = participant::ActiveModel {
            conversation_id: Set(id.to_owned()),
            user_id: Set(new.user_id.clone()),
            account_id: Set(caller.account_id.clone()),
            label: Set(new.label),
            archived: Set(false),
            unread_count: Set(unread_count),
            join_time: Set(tx.now),
        }
        .insert(tx.conn())
        .await?;
        touch(&tx, &mut loaded).await?;
        loaded.members.push(member.clone());
        emit_participant(&mut tx, EventKind::ParticipantAdded, &loaded, &member, Audience::default())?;
        tx.commit().await?;
        self.get_conversation(caller, id, false).await
    }

    /// Removes a participant: staff remove anyone, a member only itself.
    pub async fn remove_participant(&self, caller: &Caller, id: &str, user_id: &str) -> Result<Conversation, Error> {
        if !caller.is_staff() && caller.user_id != user_id {
            return Err(Error::PermissionDenied("members may only remove themselves from a conversation".into()));
        }
        let mut tx = self.write(caller).await?;
        let mut loaded = load_visible(tx.conn(), caller, id).await?;
        let member = loaded
            .member(user_id)
            .cloned()
            .ok_or_else(|| Error::not_found("participant", format!("{user_id} of conversation {id}")))?;
        participant::Entity::delete_by_id((id.to_owned(), user_id.to_owned())).exec(tx.conn()).await?;
        loaded.members.retain(|m| m.user_id != user_id);
        touch(&tx, &mut loaded).await?;
        let audience = Audience { also_user: Some(user_id.to_owned()), ..Audience::default() };
        emit_participant(&mut tx, EventKind::ParticipantRemoved, &loaded, &member, audience)?;
        tx.commit().await?;
        if caller.user_id == user_id && !caller.is_staff() {
            // The caller left: it may no longer see the conversation, so return what it was.
            let mut conversation = loaded.snapshot(false)?;
            conversation.viewer = None;
            return Ok(conversation);
        }
        self.get_conversation(caller, id, false).await
    }

    /// Archives or unarchives the conversation for the caller only.
    pub async fn set_archived(&self, caller: &Caller, id: &str, archived: bool) -> Result<Conversation, Error> {
        let mut tx = self.write(caller).await?;
        let loaded = load_visible(tx.conn(), caller, id).await?;
        let member = loaded.member(&caller.user_id).cloned().ok_or_else(|| not_participating(id))?;
        if member.archived != archived {
            let mut active: participant::ActiveModel = member.into();
            active.archived = Set(archived);
            active.update(tx.conn()).await?;
            let kind = if archived { EventKind::ConversationArchived } else { EventKind::ConversationUnarchived };
            let audience = Audience { only_user: Some(caller.user_id.clone()), ..Audience::default() };
            emit_conversation(&mut tx, kind, &loaded, audience)?;
        }
        tx.commit().await?;
        self.get_conversation(caller, id, false).await
    }

    /// Deletes a conversation with everything in it. Staff only.
    pub async fn delete_conversation(&self, caller: &Caller, id: &str) -> Result<(), Error> {
        caller.require_staff("delete conversations")?;
        let mut tx = self.write(caller).await?;
        let loaded = load_visible(tx.conn(), caller, id).await?;
        let staff = staff_among(tx.conn(), loaded.members.iter().map(|m| m.user_id.clone()).collect()).await?;
        conversation::Entity::delete_by_id(id.to_owned()).exec(tx.conn()).await?;
        // The participants are gone with it, so members would not see a conversation-wide
        // event: staff get one copy, each member its own.
        let deleted = |audience| NewEvent {
            kind: EventKind::ConversationDeleted,
            conversation_id: Some(id.to_owned()),
            audience,
            payload: EventPayload::ConversationDeleted { conversation_id: id.to_owned() },
        };
        tx.emit(deleted(Audience { staff_only: true, ..Audience::default() }));
        for member in loaded.members.iter().filter(|m| !staff.contains(&m.user_id)) {
            tx.emit(deleted(Audience { only_user: Some(member.user_id.clone()), ..Audience::default() }));
        }
        tx.commit().await
    }
}

#[derive(Debug, FromQueryResult)]
struct ListedKey {
    id: String,
    /// The sort key: the update time the caller sees.
    activity: i64,
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

pub(super) fn not_participating(id: &str) -> Error {
    Error::FailedPrecondition(format!("the caller does not take part in conversation {id}"))
}

/// Every listed user must exist in the account; `field` names the i-th one's field.
async fn check_users_exist(
    tx: &WriteTx<'_>,
    account_id: &str,
    participants: &[NewParticipant],
    field: impl Fn(usize) -> String,
) -> Result<(), Error> {
    let wanted: Vec<String> = participants.iter().map(|p| p.user_id.clone()).collect();
    let found: HashSet<String> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::AccountId.eq(account_id))
        .filter(user::Column::Id.is_in(wanted))
        .into_tuple::<String>()
        .all(tx.conn())
        .await?
        .into_iter()
        .collect();
    let mut violations = crate::domain::error::Violations::new();
    for (index, participant) in participants.iter().enumerate() {
        if !found.contains(&participant.user_id) {
            violations.add(field(index), format!("no user {} in this account", participant.user_id));
        }
    }
    violations.finish()
}

/// Marks the conversation changed now, for everyone.
async fn touch(tx: &WriteTx<'_>, loaded: &mut Loaded) -> Result<(), Error> {
    let mut active: conversation::ActiveModel = loaded.row.clone().into();
    active.update_time = Set(tx.now);
    active.public_update_time = Set(tx.now);
    loaded.row = active.update(tx.conn()).await?;
    Ok(())
}

fn emit_conversation(tx: &mut WriteTx<'_>, kind: EventKind, loaded: &Loaded, audience: Audience) -> Result<(), Error> {
    tx.emit(NewEvent {
        kind,
        conversation_id: Some(loaded.row.id.clone()),
        audience,
        payload: EventPayload::Conversation(Box::new(loaded.snapshot(false)?)),
    });
    Ok(())
}

fn emit_participant(
    tx: &mut WriteTx<'_>,
    kind: EventKind,
    loaded: &Loaded,
    member: &participant::Model,
    audience: Audience,
) -> Result<(), Error> {
    tx.emit(NewEvent {
        kind,
        conversation_id: Some(loaded.row.id.clone()),
        audience,
        payload: EventPayload::ParticipantChange {
            participant: Participant {
                user_id: member.user_id.clone(),
                label: member.label.clone(),
                join_time: member.join_time,
                user: None,
            },
            conversation: Box::new(loaded.snapshot(false)?),
        },
    });
    Ok(())
}
