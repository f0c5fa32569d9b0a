//! The one error type of the domain. Each variant says which gRPC code it becomes; the
//! mapping itself lives in `api::status`.

use std::fmt;

/// One invalid field of a request, named by its path in the request message
/// (`participants[1].user_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Why a call failed, in the domain's words.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// INVALID_ARGUMENT, with a google.rpc.BadRequest naming every offending field.
    #[error("invalid argument: {}", join(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// UNAUTHENTICATED: no key, a malformed key, an unknown or revoked key.
    #[error("{0}")]
    Unauthenticated(String),
    /// UNAUTHENTICATED because a user token has expired: the client mints a new one.
    #[error("{0}")]
    TokenExpired(String),
    /// PERMISSION_DENIED: the caller's role may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// NOT_FOUND: the resource does not exist or the caller may not see it (the two are
    /// never told apart).
    #[error("{kind} {id} not found")]
    NotFound {
        /// What was looked for ("conversation").
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// ALREADY_EXISTS: a unique value is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// FAILED_PRECONDITION: the request is valid but the state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// RESOURCE_EXHAUSTED: the caller is over one of its limits.
    #[error("{message}")]
    ResourceExhausted {
        /// Which limit, and how to stay under it.
        message: String,
        /// When a retry may succeed, when that is known.
        retry_after: Option<std::time::Duration>,
    },
    /// UNAVAILABLE: the database cannot be reached; the call may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// INTERNAL: a bug or an unexpected storage failure. The cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

fn join(violations: &[FieldViolation]) -> String {
    violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl Error {
    /// INVALID_ARGUMENT for one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// NOT_FOUND for `kind` `id`.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound { kind, id: id.into() }
    }

    /// The error of a part of a request at `prefix` (`first_message.`): the fields its
    /// violations (or its refusal, which starts with the field) name are named from the
    /// request's root.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Error::InvalidArgument(violations) => Error::InvalidArgument(
                violations.into_iter().map(|v| FieldViolation { field: format!("{prefix}{}", v.field), ..v }).collect(),
            ),
            Error::PermissionDenied(message) => Error::PermissionDenied(format!("{prefix}{message}")),
            other => other,
        }
    }

    /// One INVALID_ARGUMENT naming every field of `errors`. Parsing only fails with
    /// INVALID_ARGUMENT; should another error be among them, it is returned as it is.
    pub fn merge(errors: impl IntoIterator<Item = Error>) -> Self {
        let mut violations = Vec::new();
        for err in errors {
            match err {
                Error::InvalidArgument(mut more) => violations.append(&mut more),
                other => return other,
            }
        }
        Self::InvalidArgument(violations)
    }
}

/// Both values, or one INVALID_ARGUMENT naming the fields of both errors (see
/// [`Error::merge`]): two parts of one request checked independently, each typed. (For
/// many optional parts, [`Violations`] collects as it goes.)
pub fn both<A, B>(a: Result<A, Error>, b: Result<B, Error>) -> Result<(A, B), Error> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err(Error::merge(a.err().into_iter().chain(b.err()))),
    }
}

/// Collects the violations of one request so that all of them are reported at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is wrong.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Keeps the value of a check, or records its violations and returns `None`.
    pub fn check<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(Error::InvalidArgument(mut violations)) => {
                self.0.append(&mut violations);
                None
            }
            // Checks only ever fail with InvalidArgument; anything else is a bug, still reported
            // rather than lost.
            Err(other) => {
                self.0.push(FieldViolation::new("", other.to_string()));
                None
            }
        }
    }

    /// `Ok` when nothing was recorded.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() { Ok(()) } else { Err(Error::InvalidArgument(self.0)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_from_several_checks_are_reported_together() {
        let mut violations = Violations::new();
        assert_eq!(violations.check(Ok::<_, Error>(1)), Some(1));
        assert_eq!(violations.check::<()>(Err(Error::invalid("a", "bad"))), None);
        violations.add("b", "worse");
        let Err(Error::InvalidArgument(found)) = violations.finish() else { panic!("violations expected") };
        assert_eq!(found, [FieldViolation::new("a", "bad"), FieldViolation::new("b", "worse")]);
        assert!(Violations::new().finish().is_ok());
    }

    #[test]
    fn both_reports_the_fields_of_each() {
        let Err(Error::InvalidArgument(found)) =
            both::<(), ()>(Err(Error::invalid("a", "1")), Err(Error::invalid("b", "2")))
        else {
            panic!("INVALID_ARGUMENT expected")
        };
        assert_eq!(found.len(), 2);
        assert_eq!(both(Ok(1), Ok("x")).unwrap(), (1, "x"));
    }

    #[test]
    fn merged_errors_keep_every_field() {
        let Error::InvalidArgument(found) = Error::merge([Error::invalid("x", "1"), Error::invalid("y", "2")]) else {
            panic!("INVALID_ARGUMENT expected")
        };
        assert_eq!(found.len(), 2);
    }
}
