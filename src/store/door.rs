//! The door for units that change a conversation, [`Store::write_in`]: the unit names its
//! [`Target`], and the door locks the conversation, loads it and checks that the caller may
//! see it before the unit's body runs. A unit that names its target cannot forget the lock
//! or take it late, and in debug builds `WriteTx` refuses a lock taken from a unit's body
//! and an event of a conversation the unit does not hold: a unit that changes a
//! conversation without naming it is caught by its events, not by its statements. (The
//! lock exists for the order of events; a unit that emits none, such as the pruning of
//! canceled scheduled messages, needs none.)
//!
//! Why the lock matters: on PostgreSQL a transaction gets its id at its first lock or
//! write, and events are delivered in the order of those ids (`store::events`). The
//! conversation's lock is an advisory lock, which takes no id, so a unit gets its id only
//! once it holds the conversation, after every earlier unit of the conversation has
//! committed: a conversation's events are delivered in the order its changes were made.
//! SQLite's writer holds the whole file, so there the lock is nothing.
//!
//! Targets: [`InConversation`] (a conversation by id, optionally claiming a request id in
//! the same statement) and [`OfMessage`] (a message's conversation) here; aggregates whose
//! rows belong to a conversation (reports, waiting messages) define their own from
//! [`WriteTx::hold_conversation`] (whose lock statement is `access::lock_conversation`).

use super::{
    Store, WriteTx,
    access::{self, ConversationRecord},
    entities::message,
    tx::UnitFuture,
};
use crate::domain::{Caller, Error};

/// What a unit changes, named to the door.
pub(super) trait Target: Send + 'static {
    /// What the unit gets, read once the conversation is held.
    type Held: Send + 'static;

    /// Holds the conversation ([`WriteTx::hold_conversation`]) and reads what the unit gets.
    /// Anything read before the lock is only good for finding the conversation's id (which
    /// never changes): what else it read may have changed while the lock was waited for.
    fn hold(self, tx: &mut WriteTx) -> UnitFuture<'_, Self::Held>;
}

impl Store {
    /// Runs `unit` as `caller`'s write in `target`'s conversation, held, loaded and checked
    /// before the unit runs ([`Store::write`] is for units that change no conversation).
    pub(super) async fn write_in<G, T, F>(&self, caller: &Caller, target: G, unit: F) -> Result<T, Error>
    where
        G: Target,
        F: for<'t> FnOnce(&'t mut WriteTx, &'t Caller, G::Held) -> UnitFuture<'t, T> + Send + 'static,
        T: Send + 'static,
    {
        let as_caller = caller.clone();
        self.write_in_as(&caller.account_id, &caller.user_id, target, move |tx, held| {
            Box::pin(async move { unit(tx, &as_caller, held).await })
        })
        .await
    }

    /// [`Store::write_in`] in `account_id` as `actor_id`, for the server's own jobs.
    pub(super) async fn write_in_as<G, T, F>(
        &self,
        account_id: &str,
        actor_id: &str,
        target: G,
        unit: F,
    ) -> Result<T, Error>
    where
        G: Target,
        F: for<'t> FnOnce(&'t mut WriteTx, G::Held) -> UnitFuture<'t, T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(account_id, actor_id, move |tx| {
            Box::pin(async move {
                let held = target.hold(tx).await?;
                tx.start();
                unit(tx, held).await
            })
        })
        .await
    }
}

/// Conversation `id`, which the caller must see: the unit gets it with its participants.
pub(super) struct InConversation {
    caller: Caller,
    id: String,
}

impl InConversation {
    pub(super) fn new(caller: &Caller, id: &str) -> Self {
        Self { caller: caller.clone(), id: id.to_owned() }
    }

    /// Also claims request id `request_id` for creates of `resource` first, in the lock's
    /// own statement (see `access::claim_request_id`). The unit gets the conversation, or
    /// why the caller may not see it: a retry is answered with what its first attempt made
    /// even when the conversation is no longer the caller's to see.
    pub(super) fn claiming(self, resource: &'static str, request_id: &str) -> Claiming {
        Claiming { target: self, resource, request_id: request_id.to_owned() }
    }
}

impl Target for InConversation {
    type Held = ConversationRecord;

    fn hold(self, tx: &mut WriteTx) -> UnitFuture<'_, ConversationRecord> {
        Box::pin(async move {
            tx.hold_conversation(&self.id).await?;
            access::load_visible(tx.conn(), &self.caller, &self.id).await
        })
    }
}

/// [`InConversation::claiming`].
pub(super) struct Claiming {
    target: InConversation,
    resource: &'static str,
    request_id: String,
}

impl Target for Claiming {
    type Held = Result<ConversationRecord, Error>;

    fn hold(self, tx: &mut WriteTx) -> UnitFuture<'_, Self::Held> {
        Box::pin(async move {
            let InConversation { caller, id } = self.target;
            let claimed = access::request_claim(&caller, self.resource, &self.request_id);
            tx.claim_and_hold(&claimed, &id).await?;
            Ok(access::load_visible(tx.conn(), &caller, &id).await)
        })
    }
}

/// The conversation of message `id`, which the caller must see (a private note: only
/// staff): the unit gets the message as it is once the conversation is held, and the
/// conversation. NOT_FOUND names the message.
pub(super) struct OfMessage {
    caller: Caller,
    id: String,
}

impl OfMessage {
    pub(super) fn new(caller: &Caller, id: &str) -> Self {
        Self { caller: caller.clone(), id: id.to_owned() }
    }
}

impl Target for OfMessage {
    type Held = (message::Model, ConversationRecord);

    fn hold(self, tx: &mut WriteTx) -> UnitFuture<'_, Self::Held> {
        Box::pin(async move {
            let found =
                access::find_in_account::<message::Entity, _>(tx.conn(), "message", &self.id, &self.caller.account_id)
                    .await?;
            tx.hold_conversation(&found.conversation_id).await?;
            // Read again now that the conversation is held: a change that committed while
            // this unit waited (an edit, a deletion) is in the row.
            access::load_message(tx.conn(), &self.caller, &self.id).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{
            events::{Audience, EventKind, EventPayload, NewEvent},
            users::Role,
        },
        store::{
            accounts,
            testing::{caller, conversation},
        },
    };

    fn typing_in(conversation_id: &str) -> NewEvent {
        NewEvent {
            kind: EventKind::Typing,
            conversation_id: Some(conversation_id.to_owned()),
            audience: Audience::Conversation,
            payload: EventPayload::Typing { user_id: "u".into(), typing: true },
        }
    }

    /// The writer's answer to a unit that panicked: here, on a debug assertion of `WriteTx`.
    #[track_caller]
    fn assert_panicked(result: Result<(), Error>, what: &str) {
        assert!(matches!(&result, Err(Error::Internal(why)) if why == "a write panicked"), "{what}: {result:?}");
    }

    fn emit_typing(tx: &mut WriteTx, conversation_id: &str) -> Result<(), Error> {
        tx.emit(typing_in(conversation_id));
        Ok(())
    }

    /// The door's promise, checked: a unit changes a conversation only holding it. A unit
    /// that skips the door, or takes the lock from its body, fails at once (the writer
    /// answers a unit's panic as INTERNAL and writes nothing of it).
    #[cfg(debug_assertions)]
    #[tokio::test]
    async fn a_unit_cannot_change_a_conversation_it_did_not_name_to_the_door() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let account_id = accounts::create(&store, "a").await.unwrap();
        let agent = caller(&store, &account_id, Role::Agent).await;
        let id = conversation(&store, &agent, &[]).await;

        let unit_id = id.clone();
        let skipped = store.write(&agent, move |tx, _| Box::pin(async move { emit_typing(tx, &unit_id) }));
        assert_panicked(skipped.await, "an event of a conversation not held");

        let unit_id = id.clone();
        let late = store.write(&agent, move |tx, _| Box::pin(async move { tx.hold_conversation(&unit_id).await }));
        assert_panicked(late.await, "a lock taken from the unit's body");

        let other = conversation(&store, &agent, &[]).await;
        let elsewhere = store.write_in(&agent, InConversation::new(&agent, &id), move |tx, _, _| {
            Box::pin(async move { emit_typing(tx, &other) })
        });
        assert_panicked(elsewhere.await, "an event of another conversation");

        let unit_id = id.clone();
        let through_the_door = store.write_in(&agent, InConversation::new(&agent, &id), move |tx, _, record| {
            Box::pin(async move {
                assert_eq!(record.row.id, unit_id);
                emit_typing(tx, &unit_id)
            })
        });
        through_the_door.await.unwrap();
    }

    /// What the caller may not see stays NOT_FOUND through the door, before the unit runs.
    #[tokio::test]
    async fn the_door_checks_visibility_before_the_unit_runs() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let account_id = accounts::create(&store, "a").await.unwrap();
        let agent = caller(&store, &account_id, Role::Agent).await;
        let outsider = caller(&store, &account_id, Role::Member).await;
        let id = conversation(&store, &agent, &[]).await;

        let ran =
            store.write_in(&outsider, InConversation::new(&outsider, &id), |_, _, _| Box::pin(async { Ok(()) })).await;
        assert!(matches!(ran, Err(Error::NotFound { kind: "conversation", .. })));
        let ran = store
            .write_in(&outsider, OfMessage::new(&outsider, "m_missing"), |_, _, _| Box::pin(async { Ok(()) }))
            .await;
        assert!(matches!(ran, Err(Error::NotFound { kind: "message", .. })));
    }
}
