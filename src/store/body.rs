//! A message's body as stored: the columns that sent messages (`messages`) and waiting
//! ones (`scheduled_messages`) share, listed once, and their mapping to and from the
//! domain's draft. A new message field is a column in both tables, a line in
//! [`shared_columns!`]'s list below and its place in [`Body::of_draft`] and
//! [`Body::into_draft`]; the two tables' code reads and writes it from there.

use sea_orm::ActiveValue::Set;

use super::{
    columns,
    entities::{message, scheduled_message},
};
use crate::domain::{
    Error, Micros,
    idempotency::RequestKey,
    messages::{Direction, MessageDraft},
};

/// Declares [`Body`] with the columns listed, and its moves between the two tables' rows.
macro_rules! shared_columns {
    ($($column:ident: $type:ty),* $(,)?) => {
        /// The columns of a message's body, the same in both tables.
        #[derive(Debug, Clone, Default)]
        pub(super) struct Body {
            $(pub $column: $type,)*
        }

        impl Body {
            /// Takes the body out of a sent message's row.
            pub fn take_message(row: &mut message::Model) -> Self {
                Self { $($column: std::mem::take(&mut row.$column),)* }
            }

            /// Takes the body out of a waiting message's row.
            pub fn take_scheduled(row: &mut scheduled_message::Model) -> Self {
                Self { $($column: std::mem::take(&mut row.$column),)* }
            }

            /// A new sent message's row with this body.
            pub fn into_message(self, mut row: message::ActiveModel) -> message::ActiveModel {
                $(row.$column = Set(self.$column);)*
                row
            }

            /// A new waiting message's row with this body.
            pub fn into_scheduled(self, mut row: scheduled_message::ActiveModel) -> scheduled_message::ActiveModel {
                $(row.$column = Set(self.$column);)*
                row
            }
        }
    };
}

shared_columns! {
    kind: String,
    content: String,
    content_type: String,
    content_attributes: Option<String>,
    private: bool,
    direction: String,
    metadata: String,
    send_request_id: Option<String>,
    request_fingerprint: Option<String>,
    template_id: Option<String>,
    template_variables: Option<String>,
    channel: Option<String>,
    channel_from: Option<String>,
    channel_to: Option<String>,
    transactional: bool,
}

impl Body {
    /// The body of `draft`, sent in `direction`. (The envelope's external id is a sent
    /// message's own column: a waiting message has none yet.)
    pub fn of_draft(draft: &MessageDraft, direction: Direction) -> Self {
        let (template_id, template_variables) = columns::template_to_columns(&draft.template);
        let envelope = columns::envelope_to_columns(&draft.envelope);
        Self {
            kind: draft.kind.as_str().to_owned(),
            content: draft.content.clone(),
            content_type: draft.content_type.as_str().to_owned(),
            content_attributes: columns::value_to_column(&draft.content_attributes),
            private: draft.private,
            direction: direction.as_str().to_owned(),
            metadata: columns::metadata_to_column(&draft.metadata),
            send_request_id: draft.request_id.as_ref().map(|key| key.id.clone()),
            request_fingerprint: draft.request_id.as_ref().and_then(RequestKey::stored_fingerprint),
            template_id,
            template_variables,
            channel: envelope.channel,
            channel_from: envelope.from,
            channel_to: envelope.to,
            transactional: envelope.transactional,
        }
    }

    /// The draft this body was stored from, without its files, with the envelope's
    /// `external_id` and the `schedule_time` its row keeps; and the direction it was
    /// stored with.
    pub fn into_draft(
        self,
        external_id: Option<String>,
        schedule_time: Option<Micros>,
    ) -> Result<(MessageDraft, Direction), Error> {
        let direction: Direction = columns::stored("direction", &self.direction)?;
        let envelope = columns::envelope_from_columns(columns::EnvelopeColumns {
            channel: self.channel,
            from: self.channel_from,
            to: self.channel_to,
            external_id,
            transactional: self.transactional,
        })?;
        let draft = MessageDraft {
            kind: columns::stored("message kind", &self.kind)?,
            content: self.content,
            content_type: columns::stored("content type", &self.content_type)?,
            content_attributes: columns::value_from_column(self.content_attributes.as_deref())?,
            private: self.private,
            direction: Some(direction),
            attachments: Vec::new(),
            metadata: columns::metadata_from_column(&self.metadata)?,
            request_id: self.send_request_id.map(|id| RequestKey::stored(id, self.request_fingerprint)),
            template: columns::template_from_columns(self.template_id, self.template_variables.as_deref())?,
            envelope,
            schedule_time,
            raw_payload: None,
        };
        Ok((draft, direction))
    }
}
