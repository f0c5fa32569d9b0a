//! Notifications and the counts behind a client's badges.

use super::{optional_timestamp, timestamp};
use crate::{
    api::pb,
    domain::notifications::{Notification, NotificationCount, NotificationKind},
};

impl From<NotificationKind> for pb::NotificationType {
    fn from(kind: NotificationKind) -> Self {
        match kind {
            NotificationKind::NewMessage => pb::NotificationType::NewMessage,
            NotificationKind::ConversationStarted => pb::NotificationType::ConversationStarted,
            NotificationKind::AddedToConversation => pb::NotificationType::AddedToConversation,
            NotificationKind::ReportResolved => pb::NotificationType::ReportResolved,
            NotificationKind::ScheduledMessageFailed => pb::NotificationType::ScheduledMessageFailed,
        }
    }
}

impl From<Notification> for pb::Notification {
    fn from(notification: Notification) -> Self {
        pb::Notification {
            id: notification.id,
            r#type: pb::NotificationType::from(notification.kind) as i32,
            conversation_id: notification.conversation_id.unwrap_or_default(),
            actor_id: notification.actor_id,
            message_id: notification.message_id.unwrap_or_default(),
            report_id: notification.report_id.unwrap_or_default(),
            count: notification.count,
            summary: notification.summary,
            read: notification.read_time.is_some(),
            read_time: optional_timestamp(notification.read_time),
            create_time: Some(timestamp(notification.create_time)),
            update_time: Some(timestamp(notification.update_time)),
        }
    }
}

impl From<NotificationCount> for pb::NotificationCount {
    fn from(count: NotificationCount) -> Self {
        pb::NotificationCount {
            unread_notifications: count.unread_notifications,
            unread_messages: count.unread_messages,
        }
    }
}
