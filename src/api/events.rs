//! EventService: the `Subscribe` stream.

use std::pin::Pin;

use strum::IntoEnumIterator;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{ApiState, convert, cursors::CursorSeal, gate::StreamSeat, pb, status};
use crate::{
    domain::{
        Error,
        channels::Channel,
        error::Violations,
        events::{EventFilter, EventKind, KindFilter, MAX_FILTER_CONVERSATIONS},
        ids,
    },
    events::{StreamItem, stream},
    store,
};

/// The EventService handlers.
pub struct EventApi {
    state: ApiState,
}

impl EventApi {
    /// The service over `state`.
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

/// The relays' channels (all but in-app) and the delivery states.
const MOST_CHANNELS: usize = 4;
const MOST_DELIVERY_STATES: usize = 4;

fn parse_filter(request: &pb::SubscribeRequest) -> Result<EventFilter, Error> {
    if request.conversation_ids.len() > MAX_FILTER_CONVERSATIONS {
        return Err(Error::invalid("conversation_ids", format!("at most {MAX_FILTER_CONVERSATIONS} conversations")));
    }
    // Each type at most once, and the heartbeat: more entries can only be repeats.
    let most_types = EventKind::iter().count() + 1;
    if request.types.len() > most_types {
        return Err(Error::invalid("types", format!("at most {most_types} types (each once)")));
    }
    let mut violations = Violations::new();
    let mut filter = EventFilter::default();
    if !request.types.is_empty() {
        let mut kinds = Vec::new();
        for (index, value) in request.types.iter().enumerate() {
            if let Some(Some(kind)) = violations.check(convert::event_kind_from(&format!("types[{index}]"), *value)) {
                kinds.push(kind);
            }
        }
        filter.kinds = KindFilter::Only(kinds);
    }
    for (index, value) in request.conversation_ids.iter().enumerate() {
        if let Some(id) = violations.check(ids::parse(&format!("conversation_ids[{index}]"), value, ids::CONVERSATION))
        {
            filter.conversation_ids.push(id);
        }
    }
    // Each at most once: more entries can only be repeats.
    if request.channels.len() > MOST_CHANNELS {
        return Err(Error::invalid("channels", format!("at most {MOST_CHANNELS} channels (each once)")));
    }
    if request.delivery_states.len() > MOST_DELIVERY_STATES {
        return Err(Error::invalid("delivery_states", format!("at most {MOST_DELIVERY_STATES} states (each once)")));
    }
    for (index, value) in request.channels.iter().enumerate() {
        let field = format!("channels[{index}]");
        match violations.check(convert::channel_from(&field, *value)) {
            Some(Channel::InApp) => violations.add(field, "in-app messages have no envelope: name a relay's channel"),
            Some(channel) => filter.channels.push(channel),
            None => {}
        }
    }
    for (index, value) in request.delivery_states.iter().enumerate() {
        let field = format!("delivery_states[{index}]");
        match violations.check(convert::delivery_state_from(&field, *value)) {
            Some(Some(state)) => filter.delivery_states.push(state),
            Some(None) => violations.add(field, "DELIVERY_STATE_UNSPECIFIED is not a state"),
            None => {}
        }
    }
    violations.finish()?;
    Ok(filter)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl pb::event_service_server::EventService for EventApi {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = self.state.caller(&request)?;
        // The stream's place among its key's open streams, held for as long as it is open.
        let seat = request.extensions().get::<StreamSeat>().cloned();
        let request = request.into_inner();
        let seal = CursorSeal::new(&store::accounts::cursor_key(&self.state.store, &caller.account_id).await?)?;
        let start = seal.open("after", &request.after)?;
        let filter = parse_filter(&request)?;
        let items = stream::open(self.state.streams.clone(), caller, start, filter).await?;
        let events = items.map(move |item| {
            let _held = &seat;
            match item {
                StreamItem::Event(event) => Ok(convert::event(*event, &seal)),
                StreamItem::Heartbeat { position } => Ok(convert::heartbeat(seal.seal(position))),
                StreamItem::End(err) => Err(Status::from(*err)),
                StreamItem::ShuttingDown => {
                    Err(status::shutting_down("resume from the last cursor (another replica may serve it)"))
                }
            }
        });
        Ok(Response::new(Box::pin(events)))
    }
}
