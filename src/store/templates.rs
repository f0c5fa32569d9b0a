//! Templates: create, read, list, change and delete them as their scope allows, preview a
//! rendering, and render a message's content from one inside the unit that sends it.
//!
//! A template another user may not see (someone else's personal template) is NOT_FOUND,
//! exactly like one that does not exist.

use std::collections::BTreeMap;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::ExprTrait,
};

use super::{Listing, Store, WriteTx, access, columns, entities::template};
use crate::domain::{
    Caller, Error,
    events::{Audience, EventKind, EventPayload, NewEvent},
    idempotency::RequestKey,
    ids,
    messages::{NewMessage, Rendered},
    paging::Page,
    templates::{NewTemplate, Template, TemplatePatch, TemplateQuery, TemplateRef, TemplateScope, may_create},
};

/// Creates a template in the caller's account (personal: owned by the caller). A retried
/// create with the same request id returns the first template.
pub async fn create(
    store: &Store,
    caller: &Caller,
    new: NewTemplate,
    request_id: Option<RequestKey>,
) -> Result<Template, Error> {
    may_create(caller, new.scope)?;
    store
        .write(caller, move |tx, caller| {
            Box::pin(async move {
                if let Some(key) = &request_id {
                    access::claim_request_id(tx.conn(), &caller.account_id, &caller.user_id, "template", &key.id)
                        .await?;
                    let earlier = template::Entity::find()
                        .filter(template::Column::AccountId.eq(&caller.account_id))
                        .filter(template::Column::CreatorId.eq(&caller.user_id))
                        .filter(template::Column::CreateRequestId.eq(&key.id))
                        .one(tx.conn())
                        .await?;
                    if let Some(earlier) = earlier {
                        let fingerprint = earlier.request_fingerprint.as_deref();
                        key.check_retry("request_id", &format!("template {}", earlier.id), fingerprint)?;
                        return template_from_row(earlier);
                    }
                }
                let owner_id = (new.scope == TemplateScope::Personal).then(|| caller.user_id.clone());
                let namespace = owner_id.clone().unwrap_or_else(|| caller.account_id.clone());
                let scope = (caller.account_id.as_str(), namespace.as_str(), None);
                ensure_free(tx.conn(), scope, template::Column::Name, &new.name).await?;
                if let Some(alias) = &new.alias {
                    ensure_free(tx.conn(), scope, template::Column::Alias, alias).await?;
                }
                let row = template::ActiveModel {
                    id: Set(ids::new_id(ids::TEMPLATE)),
                    account_id: Set(caller.account_id.clone()),
                    scope: Set(new.scope.as_str().to_owned()),
                    owner_id: Set(owner_id),
                    namespace: Set(namespace),
                    name: Set(new.name),
                    alias: Set(new.alias),
                    category: Set(new.category),
                    content: Set(new.content),
                    variables: Set(variables_to_column(&new.variables)),
                    creator_id: Set(caller.user_id.clone()),
                    create_request_id: Set(request_id.as_ref().map(|key| key.id.clone())),
                    request_fingerprint: Set(request_id.and_then(|key| key.stored_fingerprint())),
                    create_time: Set(tx.now),
                    update_time: Set(tx.now),
                }
                .insert(tx.conn())
                .await?;
                let template = template_from_row(row)?;
                emit(tx, EventKind::TemplateCreated, &template);
                Ok(template)
            })
        })
        .await
}

/// A template the caller may see, or NOT_FOUND.
pub async fn get(store: &Store, caller: &Caller, id: &str) -> Result<Template, Error> {
    load_template(&store.db, caller, id).await.map(|(_, template)| template)
}

/// The account's templates and the caller's personal ones, by name.
pub async fn list(
    store: &Store,
    caller: &Caller,
    query: &TemplateQuery,
    page: &Page<(String, String)>,
) -> Result<Listing<Template>, Error> {
    let mut find = template::Entity::find().filter(template::Column::AccountId.eq(&caller.account_id)).filter(
        Condition::any()
            .add(template::Column::Scope.eq(TemplateScope::Account.as_str()))
            .add(template::Column::OwnerId.eq(&caller.user_id)),
    );
    if let Some(category) = &query.category {
        find = find.filter(template::Column::Category.eq(category));
    }
    if let Some(scope) = query.scope {
        find = find.filter(template::Column::Scope.eq(scope.as_str()));
    }
    let total = find.clone().count(&store.db).await?;
    let (name, id) = (template::Column::Name, template::Column::Id);
    if let Some((after_name, after_id)) = &page.after {
        find = find.filter(name.gt(after_name).or(name.eq(after_name).and(id.gt(after_id))));
    }
    let rows = find.order_by_asc(name).order_by_asc(id).limit(page.fetch_limit()).all(&store.db).await?;
    let (rows, next_page_token) = page.finish(rows, |row| (row.name.clone(), row.id.clone()));
    let items = rows.into_iter().map(template_from_row).collect::<Result<_, _>>()?;
    Ok(Listing { items, next_page_token, total })
}

/// Changes a template the caller may change. Messages sent from it keep their text.
pub async fn update(store: &Store, caller: &Caller, id: String, patch: TemplatePatch) -> Result<Template, Error> {
    store
        .write(caller, move |tx, caller| {
            Box::pin(async move {
                let (row, template) = hold_template(tx, caller, &id).await?;
                template.may_change(caller)?;
                let scope = (row.account_id.as_str(), row.namespace.as_str(), Some(row.id.as_str()));
                if let Some(name) = &patch.name {
                    ensure_free(tx.conn(), scope, template::Column::Name, name).await?;
                }
                if let Some(Some(alias)) = &patch.alias {
                    ensure_free(tx.conn(), scope, template::Column::Alias, alias).await?;
                }
                let mut active: template::ActiveModel = row.into();
                if let Some(name) = patch.name {
                    active.name = Set(name);
                }
                if let Some(category) = patch.category {
                    active.category = Set(category);
                }
                if let Some(alias) = patch.alias {
                    active.alias = Set(alias);
                }
                if let Some((content, variables)) = patch.content {
                    active.content = Set(content);
                    active.variables = Set(variables_to_column(&variables));
                }
                active.update_time = Set(tx.now);
                let template = template_from_row(access::save(tx.conn(), tx.account_id(), active).await?)?;
                emit(tx, EventKind::TemplateUpdated, &template);
                Ok(template)
            })
        })
        .await
}

/// Deletes a template the caller may change. Messages sent from it keep their text.
pub async fn delete(store: &Store, caller: &Caller, id: String) -> Result<(), Error> {
    store
        .write(caller, move |tx, caller| {
            Box::pin(async move {
                let (row, template) = hold_template(tx, caller, &id).await?;
                template.may_change(caller)?;
                template::Entity::delete_by_id(row.id)
                    .filter(access::of_account::<template::Entity>(&caller.account_id))
                    .exec(tx.conn())
                    .await?;
                emit(tx, EventKind::TemplateDeleted, &template);
                Ok(())
            })
        })
        .await
}

/// What a template the caller may use gives for `variables`, with its placeholder names.
pub async fn render(
    store: &Store,
    caller: &Caller,
    reference: &TemplateRef,
    variables: &BTreeMap<String, String>,
) -> Result<(String, Vec<String>), Error> {
    let template = load_named(&store.db, caller, reference).await?;
    Ok((template.render(variables)?, template.variables))
}

/// `new` ready to store: its content rendered from the template it names, which the
/// caller must be able to use (NOT_FOUND otherwise), or as it is when it names none.
pub(super) async fn render_message<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    new: NewMessage,
) -> Result<Rendered, Error> {
    let template = match &new.fields().template {
        Some(used) => Some(load_named(conn, caller, &TemplateRef::parse("template_id", &used.template_id)?).await?),
        None => None,
    };
    new.render(template.as_ref())
}

/// The template `reference` names for the caller: by id, or by alias (the caller's own
/// personal template of that alias first, else the account's); NOT_FOUND otherwise.
async fn load_named<C: ConnectionTrait>(conn: &C, caller: &Caller, reference: &TemplateRef) -> Result<Template, Error> {
    let alias = match reference {
        TemplateRef::Id(id) => return load_template(conn, caller, id).await.map(|(_, template)| template),
        TemplateRef::Alias(alias) => alias,
    };
    let rows = template::Entity::find()
        .filter(access::of_account::<template::Entity>(&caller.account_id))
        .filter(template::Column::Alias.eq(alias))
        .filter(template::Column::Namespace.is_in([caller.user_id.clone(), caller.account_id.clone()]))
        .all(conn)
        .await?;
    let own_first = rows.into_iter().min_by_key(|row| row.namespace != caller.user_id);
    let row = own_first.ok_or_else(|| Error::not_found("template", alias))?;
    visible(Some(row), caller, alias).map(|(_, template)| template)
}

/// Template `id` if the caller may use it, or NOT_FOUND.
async fn load_template<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: &str,
) -> Result<(template::Model, Template), Error> {
    visible(by_id(caller, id).one(conn).await?, caller, id)
}

/// [`load_template`] in a unit that changes the template, its row locked until commit:
/// changes to one template run one after another. (Rendering it for a send does not lock:
/// sends need not wait for each other.)
async fn hold_template(tx: &WriteTx, caller: &Caller, id: &str) -> Result<(template::Model, Template), Error> {
    visible(by_id(caller, id).lock_exclusive().one(tx.conn()).await?, caller, id)
}

/// Template `id` of the caller's account.
fn by_id(caller: &Caller, id: &str) -> sea_orm::Select<template::Entity> {
    template::Entity::find_by_id(id.to_owned()).filter(access::of_account::<template::Entity>(&caller.account_id))
}

fn visible(row: Option<template::Model>, caller: &Caller, id: &str) -> Result<(template::Model, Template), Error> {
    let row = row.ok_or_else(|| Error::not_found("template", id))?;
    let template = template_from_row(row.clone())?;
    if template.visible_to(caller) { Ok((row, template)) } else { Err(Error::not_found("template", id)) }
}

/// ALREADY_EXISTS when another template of the namespace has `value` in `column` (its
/// name or its alias: each is unique in its scope).
async fn ensure_free<C: ConnectionTrait>(
    conn: &C,
    row: (&str, &str, Option<&str>),
    column: template::Column,
    value: &str,
) -> Result<(), Error> {
    use sea_orm::IdenStatic;
    let (account_id, namespace, except_id) = row;
    let field = column.as_str();
    let mut find = template::Entity::find()
        .filter(template::Column::AccountId.eq(account_id))
        .filter(template::Column::Namespace.eq(namespace))
        .filter(column.eq(value));
    if let Some(id) = except_id {
        find = find.filter(template::Column::Id.ne(id));
    }
    match find.one(conn).await? {
        Some(existing) => Err(Error::AlreadyExists(format!(
            "template.{field}: template {} already has the {field} {value:?} in this scope",
            existing.id
        ))),
        None => Ok(()),
    }
}

/// A template's event, to those who can see it.
fn emit(tx: &mut WriteTx, kind: EventKind, template: &Template) {
    let audience = match (&template.scope, &template.owner_id) {
        (TemplateScope::Personal, Some(owner)) => Audience::User(owner.clone()),
        _ => Audience::Account,
    };
    tx.emit(NewEvent {
        kind,
        conversation_id: None,
        audience,
        payload: EventPayload::Template(Box::new(template.clone())),
    });
}

fn variables_to_column(variables: &[String]) -> String {
    serde_json::to_string(variables).unwrap_or_else(|_| "[]".to_owned())
}

fn template_from_row(row: template::Model) -> Result<Template, Error> {
    Ok(Template {
        scope: columns::stored("template scope", &row.scope)?,
        variables: serde_json::from_str(&row.variables)
            .map_err(|err| Error::Internal(format!("stored template variables are unreadable: {err}")))?,
        id: row.id,
        account_id: row.account_id,
        owner_id: row.owner_id,
        name: row.name,
        alias: row.alias,
        category: row.category,
        content: row.content,
        creator_id: row.creator_id,
        create_time: row.create_time,
        update_time: row.update_time,
    })
}
