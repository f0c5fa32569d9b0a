//! The data set, written through the store's seeding entry point (`store::seed`: the
//! use cases the API calls) exactly as the API would write it: an account,
//! an admin, an agent, a pool of members, and conversations between two members each with
//! their messages (counters and events included). The recipient of every other
//! conversation has muted it, so that sending there makes no notification: the two
//! halves measure what notifications cost a send.

use futures::{StreamExt, TryStreamExt};
use missive::{
    domain::{
        Caller,
        conversations::{Mute, NewConversation, NewParticipant, Subject},
        messages::{MessageDraft, MessageLimits, NewMessage},
        users::{NewUser, Role},
    },
    store::{Store, seed},
};

/// What the scenarios need to know of the seeded data.
pub struct Fixture {
    /// An admin's key (to make the fan-out's subscribers).
    pub admin_key: String,
    /// An agent's key: staff, sees everything.
    pub agent_key: String,
    /// Each conversation with the key of the member that created it.
    pub conversations: Vec<(String, String)>,
}

impl Fixture {
    /// The conversations whose recipient muted them (sends make no notification), or the
    /// others.
    pub fn muted(&self, muted: bool) -> Vec<(String, String)> {
        self.conversations.iter().skip(usize::from(!muted)).step_by(2).cloned().collect()
    }
}

struct User {
    caller: Caller,
    key: String,
}

async fn user(store: &Store, account_id: &str, role: Role, name: &str) -> Result<User, missive::domain::Error> {
    let new = NewUser::parse(Some(role), name.into(), String::new(), String::new(), String::new())?;
    let created = seed::create_user(store, account_id, new).await?;
    let key = seed::create_key(store, account_id, &created.id, "bench").await?.secret;
    Ok(User { caller: seed::authenticate(store, &key).await?, key })
}

/// A text message, validated as a send would be.
pub fn text(content: String) -> Result<NewMessage, missive::domain::Error> {
    MessageDraft::text(content).validate(MessageLimits { max_attachment_bytes: 1, schedule_horizon: 0 })
}

/// Words of the seeded messages: [`WORDS_PER_MESSAGE`] of a vocabulary of [`VOCABULARY`]
/// (`w1`, `w2`, … by rank) drawn with Zipf frequencies (s = 1), as natural language: `w1`
/// is in 70 % of messages, `w45` in 2.5 %, `w1100` in 0.1 %, `w20000` in 0.006 %. Each
/// conversation's words are its own seed's, so a seeded database is the same every time.
struct Words {
    rng: rand::rngs::StdRng,
    zipf: rand_distr::Zipf<f64>,
}

/// Words in the vocabulary.
pub const VOCABULARY: u64 = 20_000;
/// Words in a seeded message.
const WORDS_PER_MESSAGE: usize = 12;

impl Words {
    fn new(seed: u64) -> Self {
        use rand::SeedableRng;
        let zipf = rand_distr::Zipf::new(VOCABULARY as f64, 1.0).expect("a valid Zipf distribution");
        Self { rng: rand::rngs::StdRng::seed_from_u64(seed), zipf }
    }

    fn message(&mut self) -> String {
        use rand::distr::Distribution;
        let words: Vec<String> =
            (0..WORDS_PER_MESSAGE).map(|_| format!("w{}", self.zipf.sample(&mut self.rng) as u64)).collect();
        words.join(" ")
    }
}

/// Conversations seeded at once.
const SEEDING_IN_FLIGHT: usize = 64;

/// Conversations seeded between refreshes of the planner's statistics.
const STATISTICS_EVERY: usize = 5_000;

/// One conversation between `creator` and `other` with `count` messages, muted by `other`
/// when `index` is even; its id and the creator's key.
async fn seed_conversation(
    store: &Store,
    index: usize,
    creator: &User,
    other: &User,
    count: usize,
) -> Result<(String, String), Box<dyn std::error::Error>> {
    let new = NewConversation {
        subject: Subject {
            kind: "listing".into(),
            external_id: format!("lst_{index}"),
            title: String::new(),
            ..Default::default()
        },
        ..NewConversation::between(
            vec![NewParticipant { user_id: other.caller.user_id.clone(), label: "seller".into() }],
            "buyer",
        )
    };
    let id = seed::create_conversation(store, &creator.caller, new).await?.conversation.conversation.id;
    let mut words = Words::new(index as u64);
    let batch = (0..count).map(|_| text(words.message())).collect::<Result<_, _>>()?;
    seed::import_messages(store, &creator.caller, id.clone(), batch).await?;
    if index.is_multiple_of(2) {
        seed::set_mute(store, &other.caller, id.clone(), Some(Mute { expire_time: None })).await?;
    }
    if (index + 1).is_multiple_of(10_000) {
        eprintln!("  {} conversations seeded", index + 1);
    }
    Ok((id, creator.key.clone()))
}

/// Seeds `database_url` (an empty database) and closes it.
pub async fn seed(
    database_url: &str,
    conversation_count: usize,
    message_count: usize,
    member_count: usize,
) -> Result<Fixture, Box<dyn std::error::Error>> {
    let store = Store::open(database_url).await?;
    let account_id = seed::create_account(&store, "bench").await?;
    let admin = user(&store, &account_id, Role::Admin, "Admin").await?;
    let agent = user(&store, &account_id, Role::Agent, "Agent").await?;
    let mut members = Vec::with_capacity(member_count);
    for index in 0..member_count.max(2) {
        members.push(user(&store, &account_id, Role::Member, &format!("Member {index}")).await?);
    }
    let per_conversation = message_count / conversation_count.max(1);
    let extra = message_count % conversation_count.max(1);
    // Many conversations at once, so that the writer commits them in shared batches (one
    // flush for many): one at a time, each waited for its own flush.
    let mut seeded: Vec<(String, String)> = Vec::with_capacity(conversation_count);
    for start in (0..conversation_count).step_by(STATISTICS_EVERY) {
        let end = (start + STATISTICS_EVERY).min(conversation_count);
        let chunk: Vec<(String, String)> = futures::stream::iter(start..end)
            .map(|index| {
                let (creator, other) = (&members[index % members.len()], &members[(index + 1) % members.len()]);
                let count = per_conversation + usize::from(index < extra);
                seed_conversation(&store, index, creator, other, count)
            })
            .buffered(SEEDING_IN_FLIGHT)
            .try_collect()
            .await?;
        seeded.extend(chunk);
        // As the server does hourly: without statistics, SQLite's planner picks plans
        // that grow with the tables, and seeding slowed to a crawl past 10,000.
        store.refresh_statistics().await?;
    }
    store.close().await;
    if !database_url.starts_with("sqlite:") {
        // What autovacuum does within a minute of a bulk load: the planner's statistics
        // (without them it takes the new account's messages for a few hundred) and GIN's
        // pending entries merged.
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(database_url).await?;
        db.execute_unprepared("VACUUM ANALYZE").await?;
        db.close().await?;
    }
    Ok(Fixture { admin_key: admin.key, agent_key: agent.key, conversations: seeded })
}

/// Drops what keeps the search index (see `--without-search-index`: SQLite's triggers;
/// PostgreSQL's trigger, column and indexes); searches then find nothing new, and sends
/// cost what they cost without it.
pub async fn drop_search_index(database_url: &str) -> Result<(), Box<dyn std::error::Error>> {
    match database_url.strip_prefix("sqlite:") {
        Some(path) => {
            let db = rusqlite::Connection::open(path.split('?').next().unwrap_or(path))?;
            db.execute_batch(
                "DROP TRIGGER messages_search_insert; DROP TRIGGER messages_search_update; \
                 DROP TRIGGER messages_search_delete;",
            )?;
        }
        None => {
            use sea_orm::ConnectionTrait;
            let db = sea_orm::Database::connect(database_url).await?;
            db.execute_unprepared(
                "DROP INDEX ix_messages_search; DROP TRIGGER messages_search ON messages; \
                 ALTER TABLE messages DROP COLUMN search; DROP INDEX ix_messages_timeline",
            )
            .await?;
            db.close().await?;
        }
    }
    Ok(())
}
