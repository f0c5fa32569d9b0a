//! The one mapping from domain errors to gRPC statuses, as `From<Error> for Status`, so
//! that handlers use `?`. Internal causes are logged here, once, and never sent to the
//! client.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::Error;

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for violation in &violations {
                    details.add_bad_request_violation(violation.field.clone(), violation.description.clone());
                }
                let message = violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::Unauthenticated(message) => Status::unauthenticated(message),
            Error::PermissionDenied(message) => Status::permission_denied(message),
            Error::NotFound { kind, id } => Status::not_found(format!("{kind} {id} not found")),
            Error::AlreadyExists(message) => Status::already_exists(message),
            Error::FailedPrecondition(message) => Status::failed_precondition(message),
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
