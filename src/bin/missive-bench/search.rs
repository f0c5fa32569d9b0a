//! Search: `SearchMessages` one call at a time, as staff (the whole account) and as a
//! member (its conversations), for a word in most messages, a frequent, a medium and a
//! rare word, and two words together (the seeded words' frequencies: `seed::Words`).

use std::sync::Arc;

use missive::api::pb::{self, message_service_client::MessageServiceClient};

use crate::{
    scenarios::{Failure, Measured, PageCall, Plan, authed, one_at_a_time},
    seed::Fixture,
    server::Server,
};

/// The queries measured, by the name their scenarios take: how common each word is in the
/// seeded messages.
const QUERIES: [(&str, &str); 5] = [
    ("w1_70pct", "w1"),
    ("w45_2pct", "w45"),
    ("w1100_0.1pct", "w1100"),
    ("w20000_rare", "w20000"),
    ("two_words", "w45 w50"),
];

/// Every query as staff and as a member, one call at a time.
pub async fn search(server: &Server, fixture: &Fixture, plan: &Plan) -> Result<Vec<Measured>, Failure> {
    let mut measured = Vec::new();
    for (name, call) in calls(server, fixture).await? {
        measured.push(one_at_a_time(server, &name, plan.duration / 2, call).await);
    }
    Ok(measured)
}

/// The calls [`search`] measures, by scenario name.
pub async fn calls(server: &Server, fixture: &Fixture) -> Result<Vec<(String, PageCall)>, Failure> {
    let client = MessageServiceClient::new(server.channel().await?);
    let (_, member_key) = fixture.conversations.first().cloned().ok_or("nothing was seeded")?;
    let mut calls = Vec::new();
    for (caller, key) in [("staff", fixture.agent_key.clone()), ("member", member_key)] {
        for (name, query) in QUERIES {
            let (client, key) = (client.clone(), key.clone());
            let call: PageCall = Arc::new(move || {
                let request = pb::SearchMessagesRequest { query: query.into(), ..Default::default() };
                let (mut client, request) = (client.clone(), authed(&key, request));
                Box::pin(
                    async move { client.search_messages(request).await.map(|page| page.into_inner().next_page_token) },
                )
            });
            calls.push((format!("search_{caller}_{name}"), call));
        }
    }
    Ok(calls)
}
