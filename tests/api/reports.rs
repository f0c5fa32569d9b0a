//! ReportService: filing, the staff's queue, resolution, the evidence snapshot, and that a
//! member never learns it was reported.

use std::time::Duration;

use missive::api::pb;
use tonic::Code;

use crate::helpers::{assert_code, assert_invalid, next_events, spawn_app};

#[tokio::test]
async fn a_report_keeps_its_evidence_and_is_resolved_once_by_staff() {
    let app = spawn_app().await;
    let (agent, buyer, seller) = (app.agent("Agent").await, app.member("Buyer").await, app.member("Seller").await);
    let conversation = app.conversation(&agent, &[(&buyer, "buyer"), (&seller, "seller")]).await;
    let abusive = app.send(&seller, &conversation.id, "send the deposit to this account first").await;
    let mut staff_events = app.session(&agent).subscribe_after("").await.unwrap();
    let mut seller_events = app.session(&seller).subscribe_after("").await.unwrap();

    let report = app.session(&buyer).report(&abusive.id, pb::ReportReason::Fraud, "asks for money upfront").await;
    let report = report.unwrap();
    assert!(report.id.starts_with("rpt_"));
    assert_eq!((report.status, report.reporter_id.as_str()), (pb::ReportStatus::Open as i32, buyer.id.as_str()));
    assert_eq!(report.message.as_ref().unwrap().content, abusive.content);

    let again = app.session(&buyer).report(&abusive.id, pb::ReportReason::Spam, "").await;
    assert_code(again, Code::AlreadyExists);
    assert_invalid(app.session(&seller).report(&abusive.id, pb::ReportReason::Spam, "").await, "message_id");
    assert_invalid(app.session(&buyer).report(&abusive.id, pb::ReportReason::Unspecified, "").await, "reason");
    assert_invalid(app.session(&buyer).report(&abusive.id, pb::ReportReason::Spam, &"x".repeat(2001)).await, "details");
    let both = app.session(&buyer).report(&abusive.id, pb::ReportReason::Unspecified, &"x".repeat(2001)).await;
    let status = assert_code(both, Code::InvalidArgument);
    assert_eq!(crate::helpers::violated_fields(&status), ["reason", "details"], "every bad field at once");

    // The sender edits it away; the report still shows what was reported.
    let edited = pb::Message { id: abusive.id.clone(), content: "never mind".into(), ..Default::default() };
    let edit = pb::UpdateMessageRequest { message: Some(edited), ..Default::default() };
    app.session(&seller).update_message(edit).await.unwrap();
    let seen = app.session(&agent).get_report(&report.id).await.unwrap();
    assert_eq!(seen.message.unwrap().content, "send the deposit to this account first");

    // Members: the reporter sees its own, nobody else sees it at all.
    app.session(&buyer).get_report(&report.id).await.unwrap();
    assert_code(app.session(&seller).get_report(&report.id).await, Code::NotFound);
    let sellers = app.session(&seller).list_reports(Default::default()).await.unwrap();
    assert!(sellers.reports.is_empty());
    // Only staff resolve: the reporter, who sees its report, is refused; anyone else is
    // not told it exists.
    let removal = app.session(&buyer).resolve_report(&report.id, pb::ReportAction::RemoveMessage, "").await;
    assert_code(removal, Code::PermissionDenied);
    let removal = app.session(&seller).resolve_report(&report.id, pb::ReportAction::RemoveMessage, "").await;
    assert_code(removal, Code::NotFound);

    let resolved = app.session(&agent).resolve_report(&report.id, pb::ReportAction::RemoveMessage, "scam").await;
    let resolved = resolved.unwrap();
    assert_eq!(resolved.status, pb::ReportStatus::MessageRemoved as i32);
    assert_eq!((resolved.resolver_id.as_str(), resolved.resolution_note.as_str()), (agent.id.as_str(), "scam"));
    assert!(resolved.resolve_time.is_some());
    assert!(app.session(&buyer).get_message(&abusive.id).await.unwrap().delete_time.is_some(), "tombstoned");
    let twice = app.session(&agent).resolve_report(&report.id, pb::ReportAction::Dismiss, "").await;
    assert_code(twice, Code::FailedPrecondition);
    let evidence = app.session(&agent).get_report(&report.id).await.unwrap();
    assert_eq!(evidence.message.unwrap().content, "send the deposit to this account first", "after deletion too");

    // The reporter sees the outcome but not staff's note or who resolved it.
    let own = app.session(&buyer).get_report(&report.id).await.unwrap();
    assert_eq!(own.status, pb::ReportStatus::MessageRemoved as i32);
    assert!(own.resolver_id.is_empty() && own.resolution_note.is_empty());

    // Staff hear of both; the reported seller only of the deletion, never of the report.
    // (A live stream may first get events that committed just before it opened, while an
    // older transaction held them back: read until all three have come.)
    let wanted = [pb::EventType::ReportCreated, pb::EventType::ReportResolved, pb::EventType::MessageDeleted];
    let mut staff_kinds: Vec<i32> = Vec::new();
    while !wanted.iter().all(|kind| staff_kinds.contains(&(*kind as i32))) {
        assert!(staff_kinds.len() < 10, "{wanted:?} in {staff_kinds:?}");
        staff_kinds.push(next_events(&mut staff_events, 1).await[0].r#type);
    }
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Some(event)) = tokio::time::timeout_at(until, seller_events.message()).await.map(|e| e.unwrap()) {
        assert!(
            event.r#type != pb::EventType::ReportCreated as i32 && event.r#type != pb::EventType::ReportResolved as i32
        );
    }
}
