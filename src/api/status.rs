//! The one mapping from domain errors to gRPC statuses, as `From<Error> for Status`, so
//! that handlers use `?`. Internal causes are logged here, once, and never sent to the
//! client.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::Error;

/// The most field violations one INVALID_ARGUMENT lists.
pub const MAX_REPORTED_VIOLATIONS: usize = 20;

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidArgument(violations) => {
                // The first few, and how many more: a request with thousands of bad elements
                // must not get an answer larger than itself (or than a client accepts).
                let shown = &violations[..violations.len().min(MAX_REPORTED_VIOLATIONS)];
                let mut details = ErrorDetails::new();
                for violation in shown {
                    details.add_bad_request_violation(violation.field.clone(), violation.description.clone());
                }
                let mut message = shown.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                if violations.len() > shown.len() {
                    message.push_str(&format!("; and {} more", violations.len() - shown.len()));
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::Unauthenticated(message) => Status::unauthenticated(message),
            Error::PermissionDenied(message) => Status::permission_denied(message),
            Error::NotFound { kind, id } => Status::not_found(format!("{kind} {id} not found")),
            Error::AlreadyExists(message) => Status::already_exists(message),
            Error::FailedPrecondition(message) => Status::failed_precondition(message),
            Error::ResourceExhausted { message, retry_after } => match retry_after {
                Some(wait) => Status::with_error_details(
                    Code::ResourceExhausted,
                    message,
                    ErrorDetails::with_retry_info(Some(wait)),
                ),
                None => Status::resource_exhausted(message),
            },
            Error::Unavailable(cause) => {
                tracing::warn!(%cause, "storage unavailable");
                Status::unavailable("storage is unavailable; retry later")
            }
            Error::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
