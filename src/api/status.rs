//! The one mapping from domain errors to gRPC statuses, as `From<Error> for Status`, so
//! that handlers use `?`. Every status Missive sends carries a `google.rpc.ErrorInfo` with
//! a stable reason (the table in [`reason`]) that clients switch on instead of parsing
//! messages, plus the details that help: `BadRequest` naming the fields, `ResourceInfo`
//! for what was not found, `RetryInfo` where retrying later helps. Internal causes are
//! logged here, once, and never sent to the client.

use std::{collections::HashMap, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::Error;

/// The most field violations one INVALID_ARGUMENT lists.
pub const MAX_REPORTED_VIOLATIONS: usize = 20;

/// The `domain` of every `ErrorInfo` Missive sends: its reasons are unique within it.
pub const ERROR_DOMAIN: &str = "missive";

/// How long a client should wait before retrying a call that found the storage unavailable.
const STORAGE_RETRY_DELAY: Duration = Duration::from_secs(1);

/// The stable `ErrorInfo.reason` of a domain error.
fn reason(err: &Error) -> &'static str {
    match err {
        Error::InvalidArgument(_) => "INVALID_FIELD",
        Error::Unauthenticated(_) => "CREDENTIALS_INVALID",
        Error::TokenExpired(_) => "TOKEN_EXPIRED",
        Error::PermissionDenied(_) => "ROLE_NOT_ALLOWED",
        Error::NotFound { .. } => "RESOURCE_NOT_FOUND",
        Error::AlreadyExists(_) => "RESOURCE_EXISTS",
        Error::FailedPrecondition(_) => "STATE_DOES_NOT_ALLOW",
        Error::ResourceExhausted { .. } => "LIMIT_EXCEEDED",
        Error::Unavailable(_) => "STORAGE_UNAVAILABLE",
        Error::Internal(_) => "INTERNAL_ERROR",
    }
}

/// The reason of a status the transport made rather than Missive's handlers (a method that
/// does not exist, a call past its deadline, a body that does not decode).
pub fn transport_reason(code: Code) -> &'static str {
    match code {
        Code::Unimplemented => "METHOD_NOT_FOUND",
        // The health service's answer for a service it does not know.
        Code::NotFound => "RESOURCE_NOT_FOUND",
        Code::Cancelled => "CALL_CANCELLED",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::InvalidArgument => "MALFORMED_REQUEST",
        Code::ResourceExhausted => "REQUEST_TOO_LARGE",
        Code::Unavailable => "SERVICE_UNAVAILABLE",
        _ => "TRANSPORT_ERROR",
    }
}

/// UNAVAILABLE for a stream the server's shutdown cut, so that the client can tell it from
/// an end; `then` says what the client does next (a `Subscribe` resumes from its last
/// cursor, a health watch watches another replica).
pub fn shutting_down(then: &str) -> Status {
    with_reason(Code::Unavailable, format!("the server is shutting down: {then}"), "SERVER_SHUTTING_DOWN")
}

/// A status with an `ErrorInfo` of `reason` and no other details.
pub fn with_reason(code: Code, message: impl Into<String>, reason: &str) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let reason = reason(&err);
        let mut details = ErrorDetails::new();
        let mut metadata = HashMap::new();
        let (code, message) = match err {
            Error::InvalidArgument(violations) => {
                // The first few, and how many more: a request with thousands of bad elements
                // must not get an answer larger than itself (or than a client accepts).
                let shown = &violations[..violations.len().min(MAX_REPORTED_VIOLATIONS)];
                for violation in shown {
                    details.add_bad_request_violation(violation.field.clone(), violation.description.clone());
                }
                if let Some(first) = shown.first() {
                    metadata.insert("field".to_owned(), first.field.clone());
                }
                let mut message = shown.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                if violations.len() > shown.len() {
                    message.push_str(&format!("; and {} more", violations.len() - shown.len()));
                }
                (Code::InvalidArgument, message)
            }
            Error::Unauthenticated(message) | Error::TokenExpired(message) => (Code::Unauthenticated, message),
            Error::PermissionDenied(message) => (Code::PermissionDenied, message),
            Error::NotFound { kind, id } => {
                details.set_resource_info(kind, &id, "", "does not exist, or the caller may not see it");
                metadata.insert("resource_type".to_owned(), kind.to_owned());
                (Code::NotFound, format!("{kind} {id} not found"))
            }
            Error::AlreadyExists(message) => (Code::AlreadyExists, message),
            Error::FailedPrecondition(message) => (Code::FailedPrecondition, message),
            Error::ResourceExhausted { message, retry_after } => {
                if let Some(wait) = retry_after {
                    details.set_retry_info(Some(wait));
                }
                (Code::ResourceExhausted, message)
            }
            Error::Unavailable(cause) => {
                tracing::warn!(%cause, "storage unavailable");
                details.set_retry_info(Some(STORAGE_RETRY_DELAY));
                (Code::Unavailable, "storage is unavailable; retry later".to_owned())
            }
            Error::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (Code::Internal, "internal error".to_owned())
            }
        };
        details.set_error_info(reason, ERROR_DOMAIN, metadata);
        Status::with_error_details(code, message, details)
    }
}
