//! Files' bytes, stored once per account by their SHA-256 digest (`attachment_blobs`),
//! however many attachments (sent or waiting) name them: an upload keeps its bytes if
//! they are new, a forward names bytes already kept, a link has none. Bytes go when the
//! last attachment that names them goes.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement},
};

use super::{
    WriteTx, access,
    entities::{attachment, attachment_blob, message, scheduled_attachment},
    views,
};
use crate::domain::{
    Caller, Error,
    messages::{Attachment, FileSource, MessageKind, NewAttachment},
};

/// Resolves the files of a send that forward attachments: each must be one the caller may
/// read (NOT_FOUND names it otherwise), and becomes the bytes (or link) it has.
pub(super) async fn resolve_forwards<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    kind: MessageKind,
    files: Vec<NewAttachment>,
) -> Result<Vec<NewAttachment>, Error> {
    let mut resolved = Vec::with_capacity(files.len());
    for (index, file) in files.into_iter().enumerate() {
        let FileSource::Forward(id) = &file.source else {
            resolved.push(file);
            continue;
        };
        let original = views::attachment_from_row(readable_row(conn, caller, id).await?);
        resolved.push(file.forwarding(&format!("attachments[{index}].attachment_id"), &original, kind)?);
    }
    Ok(resolved)
}

/// Attachment `id`'s row, if the caller may read the message it belongs to: NOT_FOUND (of
/// the attachment) otherwise.
pub(super) async fn readable_row<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: &str,
) -> Result<attachment::Model, Error> {
    let row = access::find_in_account::<attachment::Entity, _>(conn, "attachment", id, &caller.account_id).await?;
    access::load_message(conn, caller, &row.message_id).await.map_err(|err| match err {
        Error::NotFound { .. } => Error::not_found("attachment", id),
        other => other,
    })?;
    Ok(row)
}

/// Takes the locks of the bytes these files name, shared, before they are named: a unit
/// dropping bytes takes them exclusive and looks again, so that it never drops bytes a
/// unit is naming (on PostgreSQL, where units of one account run at once).
pub(super) async fn hold_named(tx: &WriteTx, files: &[Attachment]) -> Result<(), Error> {
    let digests: Vec<String> = files.iter().filter(|file| file.url.is_none()).map(|file| file.sha256.clone()).collect();
    access::lock_files(tx.conn(), tx.account_id(), &digests, false).await
}

/// Names the bytes of `file` (described as `described`, its locks held): keeps uploaded
/// bytes the account has none of yet; checks that a forwarded file's bytes are still kept
/// (its message may have been deleted since it was read); a link has none.
pub(super) async fn keep(tx: &WriteTx, file: NewAttachment, described: &Attachment) -> Result<(), Error> {
    match file.source {
        FileSource::Data(data) => {
            let blob = attachment_blob::ActiveModel {
                account_id: sea_orm::ActiveValue::Set(tx.account_id().to_owned()),
                sha256: sea_orm::ActiveValue::Set(described.sha256.clone()),
                data: sea_orm::ActiveValue::Set(data),
            };
            attachment_blob::Entity::insert(blob)
                .on_conflict_do_nothing_on([attachment_blob::Column::AccountId, attachment_blob::Column::Sha256])
                .exec_without_returning(tx.conn())
                .await?;
        }
        FileSource::Stored { sha256, .. } => {
            let kept = attachment_blob::Entity::find_by_id((tx.account_id().to_owned(), sha256))
                .select_only()
                .column(attachment_blob::Column::Sha256)
                .into_tuple::<String>()
                .one(tx.conn())
                .await?;
            if kept.is_none() {
                return Err(Error::FailedPrecondition(format!(
                    "attachments: the file {:?} forwarded was deleted while this message was sent",
                    described.filename
                )));
            }
        }
        FileSource::Link { .. } | FileSource::Forward(_) => {}
    }
    Ok(())
}

/// How many files' bytes the account keeps (each once, whatever number of attachments
/// name them).
pub async fn kept(store: &super::Store, account_id: &str) -> Result<u64, Error> {
    use sea_orm::PaginatorTrait;
    Ok(attachment_blob::Entity::find()
        .filter(attachment_blob::Column::AccountId.eq(account_id))
        .count(&store.db)
        .await?)
}

/// The bytes kept under `sha256`.
pub(super) async fn bytes<C: ConnectionTrait>(conn: &C, account_id: &str, sha256: &str) -> Result<Vec<u8>, Error> {
    let blob = attachment_blob::Entity::find_by_id((account_id.to_owned(), sha256.to_owned()))
        .one(conn)
        .await?
        .ok_or_else(|| Error::Internal(format!("the bytes of digest {sha256} are missing")))?;
    Ok(blob.data)
}

/// Drops the bytes of these digests (of files just deleted) that no attachment names any
/// more: their locks taken exclusive first, the check made after, so that it sees what
/// every unit that named them committed.
pub(super) async fn forget_unnamed(tx: &WriteTx, mut digests: Vec<String>) -> Result<(), Error> {
    digests.retain(|digest| !digest.is_empty());
    digests.sort();
    digests.dedup();
    access::lock_files(tx.conn(), tx.account_id(), &digests, true).await?;
    for chunk in digests.chunks(DIGESTS_PER_STATEMENT) {
        attachment_blob::Entity::delete_many()
            .filter(attachment_blob::Column::AccountId.eq(tx.account_id()))
            .filter(attachment_blob::Column::Sha256.is_in(chunk.to_vec()))
            .filter(Expr::exists(named_in::<attachment::Entity>()).not())
            .filter(Expr::exists(named_in::<scheduled_attachment::Entity>()).not())
            .exec(tx.conn())
            .await?;
    }
    Ok(())
}

/// Digests named in one statement: well under both databases' limits on bound values.
const DIGESTS_PER_STATEMENT: usize = 500;

/// The digests of the files of conversation `id`'s messages (read before it is deleted).
pub(super) async fn of_conversation(tx: &WriteTx, id: &str) -> Result<Vec<String>, Error> {
    let messages = Query::select()
        .column(message::Column::Id)
        .from(message::Entity)
        .and_where(Expr::col(message::Column::AccountId).eq(tx.account_id()))
        .and_where(Expr::col(message::Column::ConversationId).eq(id))
        .to_owned();
    Ok(attachment::Entity::find()
        .select_only()
        .column(attachment::Column::Sha256)
        .distinct()
        .filter(attachment::Column::AccountId.eq(tx.account_id()))
        .filter(attachment::Column::MessageId.in_subquery(messages))
        .into_tuple()
        .all(tx.conn())
        .await?)
}

/// A row of `E` (a table of attachments) that names the blob of the outer statement.
fn named_in<E: EntityTrait>() -> SelectStatement {
    let blob = |column| Expr::col((attachment_blob::Entity, column));
    Query::select()
        .expr(Expr::val(1))
        .from(E::default())
        .and_where(Expr::col((E::default(), Alias::new("account_id"))).eq(blob(attachment_blob::Column::AccountId)))
        .and_where(Expr::col((E::default(), Alias::new("sha256"))).eq(blob(attachment_blob::Column::Sha256)))
        .to_owned()
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    use super::*;
    use crate::{
        domain::{
            messages::{MessageDraft, MessageLimits},
            users::Role,
        },
        store::{
            Store, accounts, messages,
            testing::{caller, conversation},
        },
    };

    /// An upgrade moves the bytes out of the attachments' rows, once per digest; going
    /// back puts them back.
    #[tokio::test]
    async fn the_bytes_move_to_their_digest_at_upgrade_and_back() {
        use migrations::MigratorTrait;

        let store = Store::open("sqlite::memory:").await.unwrap();
        let account_id = accounts::create(&store, "a").await.unwrap();
        let agent = caller(&store, &account_id, Role::Agent).await;
        let id = conversation(&store, &agent, &[]).await;
        let limits = MessageLimits { max_attachment_bytes: 100, schedule_horizon: 0 };
        let mut sent = Vec::new();
        for name in ["a.pdf", "same-bytes.pdf"] {
            let mut draft = MessageDraft::text("");
            draft.kind = MessageKind::Document;
            draft.attachments = vec![NewAttachment::upload(name, "application/pdf", b"%PDF bytes".to_vec())];
            sent.push(messages::send(&store, &agent, id.clone(), draft.validate(limits).unwrap()).await.unwrap());
        }
        assert_eq!(kept(&store, &account_id).await.unwrap(), 1);

        migrations::Migrator::down(&store.db, Some(1)).await.unwrap();
        let data = store
            .db
            .query_all_raw(Statement::from_string(DbBackend::Sqlite, "SELECT data FROM attachments"))
            .await
            .unwrap();
        assert_eq!(data.len(), 2);
        assert!(data.iter().all(|row| row.try_get::<Vec<u8>>("", "data").unwrap() == b"%PDF bytes"));
        migrations::Migrator::up(&store.db, None).await.unwrap();

        assert_eq!(kept(&store, &account_id).await.unwrap(), 1);
        for message in sent {
            let file = &message.message.attachments[0];
            assert_eq!(messages::attachment(&store, &agent, &file.id).await.unwrap().data, b"%PDF bytes");
        }
    }
}
