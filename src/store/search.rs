//! Message search: finds the messages a caller may read whose content matches a query,
//! over each database's full-text index (kept by the database in the statement that
//! writes a message: see the migration `m20261206_000002_message_search`).
//!
//! **Who finds what** is decided by the rules reads use, not by anything of search's own:
//! the conversations a caller may see (`domain::conversations::can_view`: staff their
//! account's, members those they take part in) and the note rule
//! (`access::visible_messages`). Tombstones are never found. Every statement below holds
//! those conditions; what narrows a search further (the conversations named inside an
//! FTS5 query) only makes it faster.
//!
//! **How it is found**, each database as its index serves best (plans checked at 1 M
//! messages for rare and frequent words alike: docs/benchmarks.md):
//! - SQLite walks the FTS5 index newest first (its rowid order, the order messages were
//!   stored), joining each match to its message, until a page is full: a word in many
//!   messages fills it at once, a rare word's few matches are all there is. A caller held
//!   to some conversations (a member, or a conversation filter) has them named in the FTS5
//!   query, so that the index itself skips the rest ([`SCOPE_IN_QUERY`]).
//! - PostgreSQL, for a member (or staff whose words are in fewer than [`FEW_MATCHES`] of
//!   the account's messages, which the GIN index counts cheaply), fetches what matches and
//!   sorts it ([`Drive::Sorted`]), in a form that keeps the planner from walking the
//!   account's timeline row by row for a rare word: it intersects the index's matches
//!   with the member's conversations, or walks those conversations' messages, as its
//!   statistics say. Staff whose words are in many messages walk the account's timeline
//!   index newest first ([`Drive::Timeline`]): a page is full after a few rows. Newest
//!   first is the send time, then the id.
//!
//! Page tokens hold only what the caller has seen (the last hit's id, its rank): never a
//! rowid or a score, which are counted over every account.

use std::collections::HashMap;

use strum::IntoEnumIterator;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult,
    sea_query::{
        Alias, Condition, Expr, ExprTrait, JoinType, Order as SortOrder, PostgresQueryBuilder, Query, QueryBuilder,
        SelectStatement, SimpleExpr, Value,
    },
};

use super::{
    Listing, Store, access, accounts,
    entities::{attachment, conversation, message},
    views,
};
use crate::domain::{
    Caller, Error, View,
    channels::Channel,
    paging::Page,
    search::{
        COUNT_LIMIT, Hit, HitKey, MATCH_END, MATCH_START, MessageSearch, RELEVANCE_WINDOW, SearchOrder, Snippet, Term,
        Terms,
    },
};

/// How many messages matched: exact, or at least [`COUNT_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counted {
    /// Matches counted, at most [`COUNT_LIMIT`].
    pub total: u64,
    /// More match than counted.
    pub capped: bool,
}

/// A page of hits, newest first or by relevance.
pub async fn search(
    store: &Store,
    caller: &Caller,
    search: &MessageSearch,
    page: &Page<HitKey>,
    view: View,
) -> Result<Listing<Hit, Counted>, Error> {
    let db = &store.db;
    if let Some(id) = &search.conversation_id {
        // NOT_FOUND for a conversation the caller may not see, as every RPC naming one.
        access::load_visible(db, caller, id).await?;
    }
    let backend = db.get_database_backend();
    let (scope, language) = match backend {
        DbBackend::Postgres => (None, accounts::search_language(db, &caller.account_id).await?),
        _ => (named_scope(db, caller, search).await?, accounts::SIMPLE.to_owned()),
    };
    if scope.as_ref().is_some_and(Vec::is_empty) {
        // A member in no conversation finds nothing.
        return Ok(Listing { items: Vec::new(), next_page_token: String::new(), total: Counted::default() });
    }
    let index = TextIndex::of(backend, (&caller.account_id, language), &search.terms, scope.as_deref());
    let drive = Drive::choose(db, &index, caller).await?;
    let plan = Plan { index: &index, drive, caller, search };
    let found: Vec<Found> = match search.order {
        SearchOrder::Newest => {
            let after = match &page.after {
                Some(hit) => Some(plan.place_of(db, &hit.id).await?),
                None => None,
            };
            plan.candidates(db, after, page.fetch_limit(), false).await?
        }
        SearchOrder::Relevance => plan.ranked(db, page).await?,
    };
    // Tokens hold what the caller has seen (the last hit's id, and its rank in relevance
    // order), never a rowid or a score, which would tell of other accounts' messages.
    let (found, next) = page.finish(found, |hit| HitKey { id: hit.id.clone(), rank: hit.rank });
    let keys: Vec<HitKey> = found.iter().map(|hit| HitKey { id: hit.id.clone(), rank: hit.rank }).collect();
    let places: Vec<i64> = found.iter().map(|hit| hit.place).collect();
    let counted = plan.count(db).await?;
    let items = present(db, caller, &index, keys, &places, view).await?;
    Ok(Listing { items, next_page_token: next, total: counted })
}

/// The conversations a search is held to, when few enough to name in an FTS5 query: the
/// filter's, or a member's (see [`SCOPE_IN_QUERY`]). Staff's whole account is none.
async fn named_scope(
    db: &DatabaseConnection,
    caller: &Caller,
    search: &MessageSearch,
) -> Result<Option<Vec<String>>, Error> {
    if let Some(id) = &search.conversation_id {
        return Ok(Some(vec![id.clone()]));
    }
    if caller.is_staff() {
        return Ok(None);
    }
    let mut select = access::taking_part(caller);
    select.limit(SCOPE_IN_QUERY as u64 + 1);
    let ids: Vec<String> = db
        .query_all(&select)
        .await?
        .into_iter()
        .map(|row| row.try_get::<String>("", "conversation_id"))
        .collect::<Result<_, _>>()?;
    Ok((ids.len() <= SCOPE_IN_QUERY).then_some(ids))
}

/// The hits of `keys`, in their order, with snippets.
async fn present(
    db: &DatabaseConnection,
    caller: &Caller,
    index: &TextIndex,
    keys: Vec<HitKey>,
    places: &[i64],
    view: View,
) -> Result<Vec<Hit>, Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = index.hits(db, &keys, places).await?;
    let (rows, mut snippets): (Vec<message::Model>, HashMap<String, Snippet>) = keys
        .iter()
        .filter_map(|key| found.remove(&key.id))
        .map(|(row, snippet)| {
            let id = row.id.clone();
            (row, (id, snippet))
        })
        .unzip();
    let mut conversation_ids: Vec<String> = rows.iter().map(|row| row.conversation_id.clone()).collect();
    conversation_ids.sort();
    conversation_ids.dedup();
    let records = access::load_many(db, &caller.account_id, &conversation_ids).await?;
    let shown = views::present_across(db, caller, rows, records, view).await?;
    Ok(shown
        .into_iter()
        .map(|message| Hit { snippet: snippets.remove(&message.message.id).unwrap_or_default(), message })
        .collect())
}

/// Each database's text index, as SQL over `messages` for a parsed query.
enum TextIndex {
    /// SQLite's FTS5 table `message_search` (`content`, `conversation_id`), keyed by the
    /// messages' rowid: the query in FTS5's syntax.
    Fts5 { query: String, account_id: String },
    /// PostgreSQL's `messages.search` (`tsvector`, GIN): each term's tsquery function and
    /// its text, parsed in the language of the account's index.
    Tsvector { terms: Vec<(&'static str, String)>, language: String, account_id: String },
}

/// Characters of a message shown whole in its snippet.
const SHORT_CONTENT: usize = 160;

/// Most conversations named inside an FTS5 query: the index intersects the words with
/// them at once; beyond, the walk checks each match's conversation instead.
pub const SCOPE_IN_QUERY: usize = 200;

impl TextIndex {
    /// The query in the database's own syntax, built from parsed terms: what a caller
    /// typed is only ever a quoted string (FTS5) or a bound parameter (PostgreSQL). On
    /// SQLite, `scope` (conversation ids) restricts the matches inside the index.
    fn of(backend: DbBackend, account: (&str, String), terms: &Terms, scope: Option<&[String]>) -> Self {
        let (account_id, language) = account;
        match backend {
            DbBackend::Postgres => Self::Tsvector {
                account_id: account_id.to_owned(),
                language,
                terms: terms
                    .iter()
                    .map(|term| match term {
                        // The database's parser splits the words as it split the messages.
                        Term::Word(text) | Term::Phrase(text) => ("phraseto_tsquery", text.clone()),
                        // Letters and digits only (`Terms::parse`), quoted as a lexeme.
                        Term::Prefix(stem) => ("to_tsquery", format!("'{stem}':*")),
                    })
                    .collect(),
            },
            _ => {
                let words: Vec<String> = terms
                    .iter()
                    .map(|term| match term {
                        Term::Word(text) | Term::Phrase(text) => fts5_string(text),
                        Term::Prefix(stem) => format!("{}*", fts5_string(stem)),
                    })
                    .collect();
                // Only the content is searched: `conversation_id` is indexed for scopes.
                let mut query = format!("content : ({})", words.join(" "));
                if let Some(scope) = scope {
                    // Indexed without its `conv_` prefix (the migration's view).
                    let ids: Vec<String> =
                        scope.iter().map(|id| fts5_string(id.strip_prefix("conv_").unwrap_or(id))).collect();
                    query.push_str(&format!(" AND conversation_id : ({})", ids.join(" OR ")));
                }
                Self::Fts5 { query, account_id: account_id.to_owned() }
            }
        }
    }

    /// The account searched.
    fn account_id(&self) -> &str {
        match self {
            Self::Fts5 { account_id, .. } | Self::Tsvector { account_id, .. } => account_id,
        }
    }

    /// `sql` with the query in place of `{q}` (FTS5's as one parameter, PostgreSQL's as
    /// its tsquery expression) and, on PostgreSQL, the account's text search configuration
    /// in place of `{config}`.
    fn with_query(&self, sql: &str) -> SimpleExpr {
        match self {
            Self::Fts5 { query, .. } => Expr::cust_with_values(sql.replace("{q}", "?"), [query.clone()]),
            Self::Tsvector { terms, language, .. } => {
                // Literals, not parameters (quoted by sea-query's PostgreSQL writer, `E'…'`
                // where needed): after five runs of a prepared statement PostgreSQL may keep a
                // generic plan, made without the words, and take a word in 70 % of the
                // messages for a rare one (a member's search went from 0.3 to 31 ms). With the
                // words in the text, every plan sees them and their statistics.
                let literal = |text: &str| PostgresQueryBuilder.value_to_string(&Value::from(text.to_owned()));
                let config = format!("{}::regconfig", literal(language));
                let parts: Vec<String> =
                    terms.iter().map(|(function, text)| format!("{function}({config}, {})", literal(text))).collect();
                let tsquery = format!("({})", parts.join(" && "));
                Expr::cust(sql.replace("{q}", &tsquery).replace("{config}", &config))
            }
        }
    }

    /// The messages with their matches: on SQLite the index walked newest first, each
    /// match joined to its message (FTS5 first: `CROSS JOIN` keeps SQLite's planner from
    /// turning it round); on PostgreSQL the messages whose `search` matches.
    fn source(&self) -> SelectStatement {
        let mut select = Query::select();
        match self {
            Self::Fts5 { .. } => select
                .from(Alias::new("message_search"))
                .join(JoinType::CrossJoin, message::Entity, Condition::all())
                .and_where(self.with_query("message_search MATCH {q}"))
                .and_where(Expr::cust("messages.rowid = message_search.rowid")),
            Self::Tsvector { .. } => select.from(message::Entity).and_where(self.with_query("messages.search @@ {q}")),
        };
        select
    }

    /// A found row's score, higher for a better match.
    fn score(&self) -> SimpleExpr {
        match self {
            // The content alone is scored: the conversation ids a scope names are no match.
            Self::Fts5 { .. } => Expr::cust("-bm25(message_search, 1.0, 0.0)"),
            Self::Tsvector { .. } => self.with_query("ts_rank(messages.search, {q})::float8"),
        }
    }

    /// How many messages of the account the caller may see PostgreSQL's index holds for
    /// the words, up to `limit`.
    async fn probe(&self, db: &DatabaseConnection, caller: &Caller, limit: u64) -> Result<u64, Error> {
        let mut select = self.source();
        select
            .expr(Expr::val(1))
            .and_where(access::of_account::<message::Entity>(&caller.account_id))
            .cond_where(access::visible_messages(caller.is_staff()))
            .limit(limit);
        count_of(db, select).await
    }

    /// The rows of `keys`' messages with their snippets (the content around the matches,
    /// the matches marked), by id. On SQLite the index is walked only across the keys'
    /// rowids: a word in most messages has many matches besides the page's.
    async fn hits(
        &self,
        db: &DatabaseConnection,
        keys: &[HitKey],
        places: &[i64],
    ) -> Result<HashMap<String, (message::Model, Snippet)>, Error> {
        let mut select = self.source();
        let marked = match self {
            Self::Fts5 { .. } => {
                let low = places.iter().copied().min().unwrap_or_default();
                let high = places.iter().copied().max().unwrap_or_default();
                select.and_where(Expr::cust_with_values("message_search.rowid BETWEEN ? AND ?", [low, high]));
                Expr::cust(format!("snippet(message_search, 0, '{MATCH_START}', '{MATCH_END}', '…', 24)"))
            }
            // Computed only for the page's rows (it reads the whole content). A short
            // message is shown whole, as FTS5's snippet shows it.
            Self::Tsvector { .. } => {
                let marks = format!("StartSel={MATCH_START}, StopSel={MATCH_END}");
                self.with_query(&format!(
                    "CASE WHEN length(messages.content) <= {SHORT_CONTENT} \
                     THEN ts_headline({{config}}, messages.content, {{q}}, '{marks}, HighlightAll=true') \
                     ELSE ts_headline({{config}}, messages.content, {{q}}, '{marks}, MaxWords=24, \
                     MinWords=12, MaxFragments=1, FragmentDelimiter=…') END"
                ))
            }
        };
        let ids: Vec<String> = keys.iter().map(|key| key.id.clone()).collect();
        for column in message::Column::iter() {
            select.column((message::Entity, column));
        }
        select
            .expr_as(marked, Alias::new("marked"))
            .and_where(access::of_account::<message::Entity>(self.account_id()))
            .and_where(Expr::col((message::Entity, message::Column::Id)).is_in(ids));
        let mut found = HashMap::new();
        for row in db.query_all(&select).await? {
            let message = message::Model::from_query_result(&row, "")?;
            let marked: Option<String> = row.try_get("", "marked")?;
            let snippet = Snippet::from_marked(&marked.unwrap_or_default());
            found.insert(message.id.clone(), (message, snippet));
        }
        Ok(found)
    }
}

/// `text` as an FTS5 string: in double quotes, a quote inside doubled. FTS5 tokenizes a
/// string as it tokenized the messages and finds its words as a phrase.
fn fts5_string(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// How the messages are reached (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drive {
    /// SQLite: its index, newest first.
    Walk,
    /// PostgreSQL, few matches, or many in a member's conversations: what the planner
    /// finds (the index's matches, or the conversations' messages), sorted.
    Sorted,
    /// PostgreSQL, many matches in the whole account: its timeline index, newest first.
    Timeline,
}

impl Drive {
    async fn choose(db: &DatabaseConnection, index: &TextIndex, caller: &Caller) -> Result<Self, Error> {
        Ok(if matches!(index, TextIndex::Fts5 { .. }) {
            Self::Walk
        } else if !caller.is_staff() || index.probe(db, caller, FEW_MATCHES).await? < FEW_MATCHES {
            Self::Sorted
        } else {
            Self::Timeline
        })
    }
}

/// Matches PostgreSQL's index may hold for the words before staff's search stops
/// fetching them all and walks the account's timeline: sorting this many takes a few
/// milliseconds.
const FEW_MATCHES: u64 = 1000;

/// One search's SQL.
struct Plan<'a> {
    index: &'a TextIndex,
    drive: Drive,
    caller: &'a Caller,
    search: &'a MessageSearch,
}

/// A message found: its place in newest-first order (SQLite's rowid, PostgreSQL's send
/// time) and id, its score when ranked, and its rank in relevance order.
#[derive(Debug, Clone, FromQueryResult)]
struct Found {
    place: i64,
    id: String,
    score: f64,
    #[sea_orm(skip)]
    rank: Option<u64>,
}

impl Plan<'_> {
    /// The messages found after `after` (a place and id) newest first, at most `limit`,
    /// with their scores when `scored`.
    async fn candidates(
        &self,
        db: &DatabaseConnection,
        after: Option<(i64, String)>,
        limit: u64,
        scored: bool,
    ) -> Result<Vec<Found>, Error> {
        let (place, sort) = self.order();
        let id = Expr::col((message::Entity, message::Column::Id));
        let mut select = self.found();
        select
            .expr_as(place.clone(), Alias::new("place"))
            .expr_as(id.clone(), Alias::new("id"))
            .expr_as(if scored { self.index.score() } else { Expr::val(0.0f64) }, Alias::new("score"));
        // SQLite's rowid is unique: the id only breaks PostgreSQL's ties of send time.
        let tie = self.drive != Drive::Walk;
        if let Some((at, last)) = after {
            select.and_where(if tie {
                Expr::tuple([place.clone(), id.clone()]).lt(Expr::tuple([Expr::val(at), Expr::val(last)]))
            } else {
                place.clone().lt(at)
            });
        }
        select.order_by_expr(sort, SortOrder::Desc);
        if tie {
            select.order_by_expr(id, SortOrder::Desc);
        }
        select.limit(limit);
        Ok(Found::find_by_statement(db.get_database_backend().build(&select)).all(db).await?)
    }

    /// The place of message `id`, which a page token names as the last hit: INVALID_ARGUMENT
    /// when it is gone (its conversation deleted since).
    async fn place_of(&self, db: &DatabaseConnection, id: &str) -> Result<(i64, String), Error> {
        let (place, _) = self.order_of_messages();
        let select = Query::select()
            .expr_as(place, Alias::new("place"))
            .from(message::Entity)
            .and_where(access::of_account::<message::Entity>(&self.caller.account_id))
            .and_where(Expr::col((message::Entity, message::Column::Id)).eq(id))
            .to_owned();
        let row = db.query_one(&select).await?;
        let place = row.map(|row| row.try_get::<i64>("", "place")).transpose()?;
        let gone = || Error::invalid("page_token", "continues after a message that is gone: search again");
        Ok((place.ok_or_else(gone)?, id.to_owned()))
    }

    /// The page after `page.after` (and one more) by relevance: the best of the
    /// [`RELEVANCE_WINDOW`] newest matches, best first, then newest first.
    async fn ranked(&self, db: &DatabaseConnection, page: &Page<HitKey>) -> Result<Vec<Found>, Error> {
        let mut window = self.candidates(db, None, RELEVANCE_WINDOW, true).await?;
        window.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.place.cmp(&a.place)).then_with(|| b.id.cmp(&a.id)));
        let skipped = page.after.as_ref().and_then(|hit| hit.rank).unwrap_or(0);
        Ok(window
            .into_iter()
            .enumerate()
            .skip(skipped as usize)
            .take(page.fetch_limit() as usize)
            .map(|(index, found)| Found { rank: Some(index as u64 + 1), ..found })
            .collect())
    }

    /// How many match, up to [`COUNT_LIMIT`].
    async fn count(&self, db: &DatabaseConnection) -> Result<Counted, Error> {
        let mut select = self.found();
        select.expr(Expr::val(1)).limit(COUNT_LIMIT + 1);
        let found = count_of(db, select).await?;
        Ok(Counted { total: Ord::min(found, COUNT_LIMIT), capped: found > COUNT_LIMIT })
    }

    /// Newest first, and how to sort by it. SQLite: the index's rowid, walked backwards.
    /// PostgreSQL: the send time, which only the timeline walks in order; a sorted drive
    /// sorts what it found in a form no index serves (`+ 0`), so that the planner does not
    /// walk the timeline checking every row for a rare word (its trap).
    fn order(&self) -> (SimpleExpr, SimpleExpr) {
        let (place, fenced) = self.order_of_messages();
        match self.drive {
            Drive::Walk => (Expr::cust("message_search.rowid"), Expr::cust("message_search.rowid")),
            Drive::Timeline => (place.clone(), place),
            Drive::Sorted => (place, fenced),
        }
    }

    /// A message's place in newest-first order, as a column of `messages` (SQLite's rowid
    /// is the index's), and in a form no index serves.
    fn order_of_messages(&self) -> (SimpleExpr, SimpleExpr) {
        match self.index {
            TextIndex::Fts5 { .. } => (Expr::cust("messages.rowid"), Expr::cust("+messages.rowid")),
            TextIndex::Tsvector { .. } => {
                let time: SimpleExpr = Expr::col((message::Entity, message::Column::CreateTime));
                (time.clone(), time.add(0))
            }
        }
    }

    /// The messages found, before columns: the words', the caller's, the filters'.
    fn found(&self) -> SelectStatement {
        let caller = self.caller;
        let mut select = self.index.source();
        select
            .and_where(access::of_account::<message::Entity>(&caller.account_id))
            .cond_where(access::visible_messages(caller.is_staff()))
            .and_where(Expr::col((message::Entity, message::Column::DeleteTime)).is_null())
            .cond_where(self.filters());
        if !caller.is_staff() {
            select.and_where(
                Expr::col((message::Entity, message::Column::ConversationId)).in_subquery(access::taking_part(caller)),
            );
        }
        select
    }
    /// The request's filters.
    fn filters(&self) -> Condition {
        let search = self.search;
        let col = |column: message::Column| Expr::col((message::Entity, column));
        let mut all = Condition::all();
        if let Some(id) = &search.conversation_id {
            all = all.add(col(message::Column::ConversationId).eq(id.clone()));
        }
        if let Some(id) = &search.sender_id {
            all = all.add(col(message::Column::SenderId).eq(id.clone()));
        }
        if let Some(kind) = search.kind {
            all = all.add(col(message::Column::Kind).eq(kind.as_str()));
        }
        if let Some(direction) = search.direction {
            all = all.add(col(message::Column::Direction).eq(direction.as_str()));
        }
        if let Some(channel) = search.channel {
            all = all.add(self.channel_seen(channel));
        }
        if let Some(after) = search.after {
            all = all.add(col(message::Column::CreateTime).gte(after));
        }
        if let Some(before) = search.before {
            all = all.add(col(message::Column::CreateTime).lt(before));
        }
        if let Some(with) = search.has_attachments {
            let attached = Query::select()
                .expr(Expr::val(1))
                .from(attachment::Entity)
                .and_where(access::of_account::<attachment::Entity>(&self.caller.account_id))
                .and_where(
                    Expr::col((attachment::Entity, attachment::Column::MessageId))
                        .equals((message::Entity, message::Column::Id)),
                )
                .to_owned();
            let exists = Expr::exists(attached);
            all = all.add(if with { exists } else { exists.not() });
        }
        if search.subject_kind.is_some() || search.subject_external_id.is_some() {
            let mut subject = Query::select();
            subject
                .column((conversation::Entity, conversation::Column::Id))
                .from(conversation::Entity)
                .and_where(access::of_account::<conversation::Entity>(&self.caller.account_id));
            if let Some(kind) = &search.subject_kind {
                subject
                    .and_where(Expr::col((conversation::Entity, conversation::Column::SubjectKind)).eq(kind.clone()));
            }
            if let Some(id) = &search.subject_external_id {
                subject.and_where(
                    Expr::col((conversation::Entity, conversation::Column::SubjectExternalId)).eq(id.clone()),
                );
            }
            all = all.add(col(message::Column::ConversationId).in_subquery(subject));
        }
        all
    }

    /// The channel as the caller sees it: a member sees only its own messages' envelopes
    /// (`Message::seen_by`), so another's relayed message is in-app to it.
    fn channel_seen(&self, channel: Channel) -> Condition {
        let stored = Expr::col((message::Entity, message::Column::Channel));
        let own = Expr::col((message::Entity, message::Column::SenderId)).eq(self.caller.user_id.clone());
        let in_app = channel == Channel::InApp;
        match (self.caller.is_staff(), in_app) {
            (true, true) => Condition::all().add(stored.is_null()),
            (true, false) => Condition::all().add(stored.eq(channel.as_str())),
            (false, true) => Condition::any().add(stored.is_null()).add(own.not()),
            (false, false) => Condition::all().add(stored.eq(channel.as_str())).add(own),
        }
    }
}

/// The number of rows `select` finds.
async fn count_of(db: &DatabaseConnection, select: SelectStatement) -> Result<u64, Error> {
    let counting = Query::select()
        .expr_as(Expr::cust("count(*)"), Alias::new("n"))
        .from_subquery(select, Alias::new("found"))
        .to_owned();
    let row = db.query_one(&counting).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0) as u64)
}
