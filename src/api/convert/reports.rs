//! Reports and their enums.

use super::{enum_field, optional_timestamp, timestamp};
use crate::{
    api::pb,
    domain::{
        Error,
        reports::{Action, Reason, Report, Status},
    },
};

impl From<Reason> for pb::ReportReason {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::Spam => pb::ReportReason::Spam,
            Reason::Harassment => pb::ReportReason::Harassment,
            Reason::Inappropriate => pb::ReportReason::Inappropriate,
            Reason::Fraud => pb::ReportReason::Fraud,
            Reason::Other => pb::ReportReason::Other,
        }
    }
}

/// A reason from a request; `None` for REPORT_REASON_UNSPECIFIED.
pub fn report_reason_from(field: &str, value: i32) -> Result<Option<Reason>, Error> {
    Ok(match enum_field::<pb::ReportReason>(field, value, "ReportReason")? {
        pb::ReportReason::Unspecified => None,
        pb::ReportReason::Spam => Some(Reason::Spam),
        pb::ReportReason::Harassment => Some(Reason::Harassment),
        pb::ReportReason::Inappropriate => Some(Reason::Inappropriate),
        pb::ReportReason::Fraud => Some(Reason::Fraud),
        pb::ReportReason::Other => Some(Reason::Other),
    })
}

impl From<Status> for pb::ReportStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Open => pb::ReportStatus::Open,
            Status::Dismissed => pb::ReportStatus::Dismissed,
            Status::MessageRemoved => pb::ReportStatus::MessageRemoved,
        }
    }
}

/// A status filter from a request; `None` for REPORT_STATUS_UNSPECIFIED.
pub fn report_status_from(field: &str, value: i32) -> Result<Option<Status>, Error> {
    Ok(match enum_field::<pb::ReportStatus>(field, value, "ReportStatus")? {
        pb::ReportStatus::Unspecified => None,
        pb::ReportStatus::Open => Some(Status::Open),
        pb::ReportStatus::Dismissed => Some(Status::Dismissed),
        pb::ReportStatus::MessageRemoved => Some(Status::MessageRemoved),
    })
}

/// The action of a ResolveReport request, which is required.
pub fn report_action_from(field: &str, value: i32) -> Result<Action, Error> {
    match enum_field::<pb::ReportAction>(field, value, "ReportAction")? {
        pb::ReportAction::Unspecified => {
            Err(Error::invalid(field, "is required: REPORT_ACTION_DISMISS or REPORT_ACTION_REMOVE_MESSAGE"))
        }
        pb::ReportAction::Dismiss => Ok(Action::Dismiss),
        pb::ReportAction::RemoveMessage => Ok(Action::RemoveMessage),
    }
}

impl From<Report> for pb::Report {
    fn from(report: Report) -> Self {
        let resolution = report.resolution;
        pb::Report {
            id: report.id,
            conversation_id: report.conversation_id,
            message_id: report.message_id,
            reporter_id: report.reporter_id,
            reason: pb::ReportReason::from(report.reason) as i32,
            details: report.details,
            status: pb::ReportStatus::from(report.status) as i32,
            message: Some((*report.message).into()),
            create_time: Some(timestamp(report.create_time)),
            resolve_time: optional_timestamp(resolution.as_ref().map(|r| r.resolve_time)),
            resolver_id: resolution.as_ref().map(|r| r.resolver_id.clone()).unwrap_or_default(),
            resolution_note: resolution.map(|r| r.note).unwrap_or_default(),
        }
    }
}
