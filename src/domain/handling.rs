//! Staff's handling of what customers write (seed 000's `handled` and `comm_handled`): a
//! message or a whole conversation is marked handled by a member of staff, or unmarked;
//! a customer writing again reopens a handled conversation. Staff's own business: members
//! never see it.

use serde::{Deserialize, Serialize};

use super::{Micros, messages::Direction};

/// Who marked something handled, and when; absent while it is not handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handling {
    /// When it was marked handled.
    pub handle_time: Micros,
    /// The member of staff who marked it.
    pub handler_id: String,
}

impl Handling {
    /// From its stored columns: handled while `handle_time` is set.
    pub fn from_columns(handle_time: Option<Micros>, handler_id: Option<String>) -> Option<Self> {
        handle_time.map(|handle_time| Handling { handle_time, handler_id: handler_id.unwrap_or_default() })
    }
}

/// Whether a new message reopens its handled conversation: one from the customer's side
/// (incoming) that members see; staff's own replies and notes leave the mark.
pub fn reopens(direction: Direction, private: bool) -> bool {
    direction == Direction::Incoming && !private
}
