//! NotificationService: the caller's own feed (seed 002's four notification endpoints).

use tonic::{Request, Response, Status};

use super::{ApiState, pb};
use crate::{
    domain::{ids, notifications::NotificationQuery, paging::Page},
    store,
};

/// The NotificationService handlers.
pub struct NotificationApi {
    state: ApiState,
}

impl NotificationApi {
    /// The service over `state`.
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl pb::notification_service_server::NotificationService for NotificationApi {
    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let query = NotificationQuery { unread_only: request.unread_only };
        let page = Page::parse(request.page_size, &request.page_token, &query.fingerprint(&caller))?;
        let listing = store::notifications::list(&self.state.store, &caller, query, &page).await?;
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: listing.items.into_iter().map(pb::Notification::from).collect(),
            next_page_token: listing.next_page_token,
            total_size: listing.total as i64,
        }))
    }

    async fn get_notification_count(
        &self,
        request: Request<pb::GetNotificationCountRequest>,
    ) -> Result<Response<pb::NotificationCount>, Status> {
        let caller = self.state.caller(&request)?;
        let count = store::notifications::count(&self.state.store, &caller).await?;
        Ok(Response::new(count.into()))
    }

    async fn mark_notification_read(
        &self,
        request: Request<pb::MarkNotificationReadRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::NOTIFICATION)?;
        let notification = store::notifications::mark_read(&self.state.store, &caller, id).await?;
        Ok(Response::new(notification.into()))
    }

    async fn mark_all_notifications_read(
        &self,
        request: Request<pb::MarkAllNotificationsReadRequest>,
    ) -> Result<Response<pb::MarkAllNotificationsReadResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let marked = store::notifications::mark_all_read(&self.state.store, &caller).await?;
        Ok(Response::new(pb::MarkAllNotificationsReadResponse { marked: marked as i64 }))
    }
}
