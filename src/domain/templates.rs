//! Templates: canned texts with `{{variable}}` placeholders (seed 002's templates, seed 003's
//! `template`/`templateType`), who may see and change them, and how one renders into a
//! message's content.
//!
//! A placeholder is `{{name}}`, optionally padded with spaces (`{{ price }}`); a name starts
//! with a letter or `_` and goes on with letters, digits and `_`. Anything else between
//! `{{` and `}}`, or a `{{` that is never closed, is refused where the template is written,
//! so that a stored template always renders. A lone `}}` is plain text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    Caller, Error, Micros,
    error::Violations,
    ids,
    text::{self, MAX_CONTENT_CHARS},
};

/// Most characters in a template's name.
pub const MAX_NAME_CHARS: usize = 100;
/// Most characters in a category.
pub const MAX_CATEGORY_CHARS: usize = 64;
/// Most characters in a placeholder's name.
pub const MAX_VARIABLE_CHARS: usize = 64;
/// Most distinct placeholders in one template.
pub const MAX_VARIABLES: usize = 50;

/// Who may see and use a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum TemplateScope {
    /// Every user of the account uses it (a support team's canned answers); staff manage it.
    Account,
    /// Its owner alone sees, uses and manages it (a seller's "Quick Response").
    Personal,
}

impl TemplateScope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A template as stored, and as events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// `tpl_…`
    pub id: String,
    /// The account it belongs to.
    pub account_id: String,
    /// Who may see it.
    pub scope: TemplateScope,
    /// The owner of a personal template.
    pub owner_id: Option<String>,
    /// Unique among the account's templates, or among the owner's.
    pub name: String,
    /// Free text grouping templates ("" for none).
    pub category: String,
    /// The text with its placeholders.
    pub content: String,
    /// The placeholder names, in order of first appearance.
    pub variables: Vec<String>,
    /// A stable key to send it by, unique where the name is.
    pub alias: Option<String>,
    /// Who created it.
    pub creator_id: String,
    /// When it was created.
    pub create_time: Micros,
    /// When it last changed.
    pub update_time: Micros,
}

/// A piece of a template's content.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part<'a> {
    Text(&'a str),
    Variable(&'a str),
}

/// The pieces of `content`, or INVALID_ARGUMENT naming `field` and the character position
/// (counting from 1) of the first malformed placeholder.
fn parse<'a>(field: &str, content: &'a str) -> Result<Vec<Part<'a>>, Error> {
    let mut parts = Vec::new();
    let mut rest = content;
    let mut offset = 0; // bytes of `content` before `rest`
    while let Some(open) = rest.find("{{") {
        let position = content[..offset + open].chars().count() + 1;
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("}}") else {
            return Err(Error::invalid(field, format!("the placeholder at character {position} is never closed")));
        };
        let name = after_open[..close].trim_matches(' ');
        if name.is_empty() {
            return Err(Error::invalid(field, format!("the placeholder at character {position} has no name")));
        }
        if !is_variable_name(name) {
            return Err(Error::invalid(
                field,
                format!(
                    "the placeholder {{{{{name}}}}} at character {position} is not a valid name: use letters, digits \
                     and _, starting with a letter or _, at most {MAX_VARIABLE_CHARS} characters"
                ),
            ));
        }
        if open > 0 {
            parts.push(Part::Text(&rest[..open]));
        }
        parts.push(Part::Variable(name));
        let consumed = open + 2 + close + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_VARIABLE_CHARS
}

/// The distinct placeholder names of parsed content, in order of first appearance.
fn variables_of(parts: &[Part<'_>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for part in parts {
        if let Part::Variable(name) = part
            && !names.iter().any(|known| known == name)
        {
            names.push((*name).to_owned());
        }
    }
    names
}

/// Checks template content; `field` names it. Returns its placeholder names.
pub fn check_content(field: &str, content: &str) -> Result<Vec<String>, Error> {
    text::bounded(field, content.to_owned(), MAX_CONTENT_CHARS)?;
    if content.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    let variables = variables_of(&parse(field, content)?);
    if variables.len() > MAX_VARIABLES {
        return Err(Error::invalid(field, format!("has {} placeholders; at most {MAX_VARIABLES}", variables.len())));
    }
    Ok(variables)
}

impl Template {
    /// Whether `reference` (an id or an alias, as a request gave it) names this template.
    pub fn is_named_by(&self, reference: &str) -> bool {
        self.id == reference || self.alias.as_deref() == Some(reference)
    }

    /// Whether `caller` (of the template's account) may see and use it.
    pub fn visible_to(&self, caller: &Caller) -> bool {
        self.account_id == caller.account_id
            && match self.scope {
                TemplateScope::Account => true,
                TemplateScope::Personal => self.owner_id.as_deref() == Some(caller.user_id.as_str()),
            }
    }

    /// Whether `caller` may change or delete it: staff an account template, the owner a
    /// personal one (which nobody else even sees: NOT_FOUND).
    pub fn may_change(&self, caller: &Caller) -> Result<(), Error> {
        if !self.visible_to(caller) {
            return Err(Error::not_found("template", &self.id));
        }
        match self.scope {
            TemplateScope::Account => caller.require_staff("change account templates"),
            TemplateScope::Personal => Ok(()),
        }
    }

    /// The content with every placeholder replaced by its value, inserted as it is (a value
    /// holding `{{x}}` stays that text). Every placeholder needs a value and every value a
    /// placeholder; each violation names `variables.<name>`.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String, Error> {
        let parts = parse("content", &self.content)
            .map_err(|_| Error::Internal(format!("stored template {} does not parse", self.id)))?;
        let mut violations = Violations::new();
        for name in &self.variables {
            if !values.contains_key(name) {
                violations.add(format!("variables.{name}"), format!("is required by template {}", self.id));
            }
        }
        for name in values.keys() {
            if !self.variables.contains(name) {
                let known = if self.variables.is_empty() { "none".to_owned() } else { self.variables.join(", ") };
                violations.add(
                    format!("variables.{name}"),
                    format!("is not a placeholder of template {} (its placeholders: {known})", self.id),
                );
            }
        }
        violations.finish()?;
        fn piece<'a>(part: &Part<'a>, values: &'a BTreeMap<String, String>) -> &'a str {
            match part {
                Part::Text(text) => text,
                Part::Variable(name) => values.get(*name).map_or("", String::as_str),
            }
        }
        // Measured before it is built: a placeholder used many times, with a long value,
        // could otherwise make a string far larger than any message.
        let chars: usize = parts.iter().map(|part| piece(part, values).chars().count()).sum();
        if chars > MAX_CONTENT_CHARS {
            return Err(Error::invalid(
                "variables",
                format!("the rendered message has {chars} characters; at most {MAX_CONTENT_CHARS} are allowed"),
            ));
        }
        let rendered: String = parts.iter().map(|part| piece(part, values)).collect();
        if rendered.trim().is_empty() {
            return Err(Error::invalid("variables", "the rendered message is empty"));
        }
        Ok(rendered)
    }
}

/// The values given for a template's placeholders (`field` is the map's path): at most
/// [`MAX_VARIABLES`], each named as a placeholder can be, each a bounded text that is not
/// empty (an integration that forgot a value must not send a message with a hole in it).
pub fn check_values(field: &str, values: &BTreeMap<String, String>) -> Result<(), Error> {
    if values.len() > MAX_VARIABLES {
        return Err(Error::invalid(field, format!("has {} values; at most {MAX_VARIABLES}", values.len())));
    }
    let mut violations = Violations::new();
    for (name, value) in values {
        if !is_variable_name(name) {
            let shown: String = name.chars().take(MAX_VARIABLE_CHARS).collect();
            violations.add(field, format!("{shown:?} is not a placeholder name"));
        } else if value.trim().is_empty() {
            violations.add(format!("{field}.{name}"), "must not be empty");
        } else {
            violations.check(text::bounded(&format!("{field}.{name}"), value.clone(), MAX_CONTENT_CHARS));
        }
    }
    violations.finish()
}

/// Whether `caller` may create a template of `scope`: account templates are staff's.
pub fn may_create(caller: &Caller, scope: TemplateScope) -> Result<(), Error> {
    match scope {
        TemplateScope::Account => caller.require_staff("create account templates"),
        TemplateScope::Personal => Ok(()),
    }
}

/// A template to create, validated.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    /// Who may see it.
    pub scope: TemplateScope,
    /// Its name, trimmed.
    pub name: String,
    /// Its category, trimmed.
    pub category: String,
    /// Its content.
    pub content: String,
    /// The placeholder names of its content.
    pub variables: Vec<String>,
    /// Its alias.
    pub alias: Option<String>,
}

impl NewTemplate {
    /// Checks every field of `template.*` at once.
    pub fn parse(
        scope: TemplateScope,
        name: &str,
        category: &str,
        content: String,
        alias: &str,
    ) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let name = violations.check(check_name("template.name", name));
        let category = violations.check(text::trimmed("template.category", category, MAX_CATEGORY_CHARS));
        let variables = violations.check(check_content("template.content", &content));
        let alias = violations.check(check_alias("template.alias", alias));
        violations.finish()?;
        match (name, category, variables, alias) {
            (Some(name), Some(category), Some(variables), Some(alias)) => {
                Ok(Self { scope, name, category, content, variables, alias })
            }
            _ => Err(Error::Internal("a template's fields were checked, yet one is missing".into())),
        }
    }
}

/// Most characters in an alias.
pub const MAX_ALIAS_CHARS: usize = 64;

/// An alias, or `None` for "" (none): lower-case letters, digits, `_`, `-` and `.`,
/// starting with a letter or digit, and never an id's shape, so that whatever names a
/// template ([`TemplateRef`]) is one or the other.
pub fn check_alias(field: &str, alias: &str) -> Result<Option<String>, Error> {
    if alias.is_empty() {
        return Ok(None);
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.');
    let starts_well = alias.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if alias.len() > MAX_ALIAS_CHARS || !starts_well || !alias.chars().all(allowed) {
        return Err(Error::invalid(
            field,
            format!(
                "{:?} is not an alias: 1 to {MAX_ALIAS_CHARS} lower-case letters, digits, '_', '-' and '.', \
                 starting with a letter or digit",
                alias.chars().take(MAX_ALIAS_CHARS + 1).collect::<String>()
            ),
        ));
    }
    if alias.starts_with(&format!("{}_", ids::TEMPLATE)) {
        return Err(Error::invalid(field, "must not look like a template id (tpl_…)"));
    }
    Ok(Some(alias.to_owned()))
}

/// How a request names a template: by id, or by alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRef {
    /// `tpl_…`
    Id(String),
    /// An alias: the caller's personal template of that alias first, else the account's.
    Alias(String),
}

impl TemplateRef {
    /// A template id or alias; required.
    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        if value.starts_with(&format!("{}_", ids::TEMPLATE)) {
            return ids::parse(field, value, ids::TEMPLATE).map(TemplateRef::Id);
        }
        match check_alias(field, value) {
            Ok(Some(alias)) => Ok(TemplateRef::Alias(alias)),
            Ok(None) => Err(Error::invalid(field, "is required: a template id (tpl_…) or alias")),
            Err(_) => Err(Error::invalid(field, format!("{value:?} is neither a template id (tpl_…) nor an alias"))),
        }
    }

    /// What the request gave, for messages that name it.
    pub fn as_str(&self) -> &str {
        match self {
            TemplateRef::Id(value) | TemplateRef::Alias(value) => value,
        }
    }
}

/// The changes of an update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TemplatePatch {
    /// A new name.
    pub name: Option<String>,
    /// A new category.
    pub category: Option<String>,
    /// New content, with its placeholder names.
    pub content: Option<(String, Vec<String>)>,
    /// A new alias (`Some(None)` clears it).
    pub alias: Option<Option<String>>,
}

impl TemplatePatch {
    /// Checks and normalizes the named fields of `template.*`.
    pub fn parse(
        name: Option<&str>,
        category: Option<&str>,
        content: Option<String>,
        alias: Option<&str>,
    ) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let name = violations.check(name.map(|name| check_name("template.name", name)).transpose());
        let category =
            violations.check(category.map(|c| text::trimmed("template.category", c, MAX_CATEGORY_CHARS)).transpose());
        let content = violations.check(
            content
                .map(|content| check_content("template.content", &content).map(|variables| (content, variables)))
                .transpose(),
        );
        let alias = violations.check(alias.map(|alias| check_alias("template.alias", alias)).transpose());
        violations.finish()?;
        match (name, category, content, alias) {
            (Some(name), Some(category), Some(content), Some(alias)) => Ok(Self { name, category, content, alias }),
            _ => Err(Error::Internal("a template patch's fields were checked, yet one is missing".into())),
        }
    }
}

fn check_name(field: &str, name: &str) -> Result<String, Error> {
    let name = text::trimmed(field, name, MAX_NAME_CHARS)?;
    if name.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    Ok(name)
}

/// Which templates a listing wants.
#[derive(Debug, Clone, Default)]
pub struct TemplateQuery {
    /// Only this category.
    pub category: Option<String>,
    /// Only this scope.
    pub scope: Option<TemplateScope>,
}

impl TemplateQuery {
    /// Identifies the query for page tokens.
    pub fn fingerprint(&self, caller: &Caller) -> String {
        format!("templates|{}|{:?}|{:?}", caller.user_id, self.category, self.scope)
    }
}

#[cfg(test)]
mod tests {
    // Braces that a test leaves open or closes alone are written \u{7b} and \u{7d}, so that
    // tools counting braces in this file stay in step.
    use super::*;
    use crate::domain::users::Role;

    fn template(content: &str) -> Template {
        Template {
            id: "tpl_1".into(),
            account_id: "acc".into(),
            scope: TemplateScope::Account,
            owner_id: None,
            name: "n".into(),
            category: String::new(),
            content: content.into(),
            variables: check_content("content", content).unwrap(),
            alias: None,
            creator_id: "usr".into(),
            create_time: 0,
            update_time: 0,
        }
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn violation(result: Result<impl std::fmt::Debug, Error>) -> Vec<(String, String)> {
        match result {
            Err(Error::InvalidArgument(violations)) => {
                violations.into_iter().map(|v| (v.field, v.description)).collect()
            }
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn placeholders_are_extracted_in_order_once() {
        let names = check_content("c", "Is the {{ vehicle_title }} at {{price}}? {{price}}, {{_x1}} }} {").unwrap();
        assert_eq!(names, ["vehicle_title", "price", "_x1"]);
    }

    #[test]
    fn malformed_placeholders_name_their_position() {
        let unclosed = violation(check_content("template.content", "Héllo \u{7b}\u{7b}name"));
        assert_eq!(unclosed[0].0, "template.content");
        assert!(unclosed[0].1.contains("character 7"), "{unclosed:?}");
        assert!(violation(check_content("c", "a {{ }} b"))[0].1.contains("character 3"));
        assert!(violation(check_content("c", "a {{1abc}}"))[0].1.contains("not a valid name"));
        assert!(violation(check_content("c", "{{a b}}"))[0].1.contains("not a valid name"));
        assert!(violation(check_content("c", "{{a \u{7b}\u{7b}b}}"))[0].1.contains("character 1"));
    }

    #[test]
    fn rendering_needs_every_variable_and_no_other() {
        let t = template("The {{vehicle_title}} is {{price}}.");
        assert_eq!(t.render(&values(&[("vehicle_title", "FH 500"), ("price", "EUR 85,000")])).unwrap(), {
            "The FH 500 is EUR 85,000."
        });
        let fields: Vec<String> =
            violation(t.render(&values(&[("pricee", "1")]))).into_iter().map(|(field, _)| field).collect();
        assert_eq!(fields, ["variables.vehicle_title", "variables.price", "variables.pricee"]);
    }

    #[test]
    fn a_rendering_too_long_is_refused_before_it_is_built() {
        let t = template(&"{{x}}".repeat(6000));
        let value = "v".repeat(1_000_000);
        assert_eq!(violation(t.render(&values(&[("x", &value)])))[0].0, "variables");
    }

    #[test]
    fn values_are_bounded_and_named_like_placeholders() {
        assert!(check_values("variables", &values(&[("price", "1")])).is_ok());
        assert_eq!(violation(check_values("variables", &values(&[("price", " ")])))[0].0, "variables.price");
        assert_eq!(violation(check_values("variables", &values(&[("not a name", "1")])))[0].0, "variables");
        assert_eq!(violation(check_values("variables", &values(&[("nul", "a\0")])))[0].0, "variables.nul");
        let many: BTreeMap<String, String> = (0..=MAX_VARIABLES).map(|i| (format!("v{i}"), "x".into())).collect();
        assert_eq!(violation(check_values("variables", &many))[0].0, "variables");
    }

    #[test]
    fn values_are_literal_text() {
        let t = template("Hi {{name}}");
        assert_eq!(t.render(&values(&[("name", "{{name}} \u{7d}\u{7d}")])).unwrap(), "Hi {{name}} \u{7d}\u{7d}");
    }

    #[test]
    fn a_rendered_message_must_not_be_empty_or_too_long() {
        let t = template("{{x}}");
        assert_eq!(violation(t.render(&values(&[("x", " ")])))[0].0, "variables");
        let long = "y".repeat(MAX_CONTENT_CHARS + 1);
        assert_eq!(violation(t.render(&values(&[("x", &long)])))[0].0, "variables");
    }

    #[test]
    fn personal_templates_are_their_owners_alone() {
        let member = Caller {
            account_id: "acc".into(),
            user_id: "usr".into(),
            role: Role::Member,
            credential: crate::domain::Credential::ApiKey("k".into()),
        };
        let mut t = template("x");
        assert!(t.visible_to(&member));
        assert!(t.may_change(&member).is_err(), "account templates are staff's to change");
        t.scope = TemplateScope::Personal;
        t.owner_id = Some("someone".into());
        assert!(!t.visible_to(&member));
        t.owner_id = Some("usr".into());
        assert!(t.visible_to(&member) && t.may_change(&member).is_ok());
        assert!(may_create(&member, TemplateScope::Account).is_err());
    }

    #[test]
    fn aliases_and_ids_never_meet() {
        assert_eq!(check_alias("alias", "offer_accepted.v2").unwrap().as_deref(), Some("offer_accepted.v2"));
        assert_eq!(check_alias("alias", "").unwrap(), None);
        for bad in ["Offer", "-x", "a b", "tpl_x", &"a".repeat(65)] {
            assert!(check_alias("alias", bad).is_err(), "{bad}");
        }
        assert_eq!(TemplateRef::parse("t", "welcome").unwrap(), TemplateRef::Alias("welcome".into()));
        let id = ids::new_id(ids::TEMPLATE);
        assert_eq!(TemplateRef::parse("t", &id).unwrap(), TemplateRef::Id(id));
        assert!(TemplateRef::parse("t", "tpl_not-an-id").is_err(), "a tpl_ value is an id, or refused");
        assert!(TemplateRef::parse("t", "").is_err() && TemplateRef::parse("t", "Hello there").is_err());
    }
}
