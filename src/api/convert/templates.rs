//! Templates and their scope.

use super::{enum_field, timestamp};
use crate::{
    api::pb,
    domain::{
        Error,
        templates::{Template, TemplateScope},
    },
};

impl From<TemplateScope> for pb::TemplateScope {
    fn from(scope: TemplateScope) -> Self {
        match scope {
            TemplateScope::Account => pb::TemplateScope::Account,
            TemplateScope::Personal => pb::TemplateScope::Personal,
        }
    }
}

/// A scope from a request; `None` when unspecified.
pub fn template_scope_from(field: &str, value: i32) -> Result<Option<TemplateScope>, Error> {
    Ok(match enum_field::<pb::TemplateScope>(field, value, "TemplateScope")? {
        pb::TemplateScope::Unspecified => None,
        pb::TemplateScope::Account => Some(TemplateScope::Account),
        pb::TemplateScope::Personal => Some(TemplateScope::Personal),
    })
}

impl From<Template> for pb::Template {
    fn from(template: Template) -> Self {
        pb::Template {
            id: template.id,
            scope: pb::TemplateScope::from(template.scope) as i32,
            owner_id: template.owner_id.unwrap_or_default(),
            name: template.name,
            category: template.category,
            content: template.content,
            variables: template.variables,
            alias: template.alias.unwrap_or_default(),
            creator_id: template.creator_id,
            create_time: Some(timestamp(template.create_time)),
            update_time: Some(timestamp(template.update_time)),
        }
    }
}
