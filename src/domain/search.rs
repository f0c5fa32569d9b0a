//! Message search: the query language people type (plain words, `"phrases"`, `prefix*`),
//! its limits, the filters and orders a search takes, and the highlighted snippet of a hit.
//!
//! A query is parsed into [`Term`]s here; the store builds SQLite's FTS5 or PostgreSQL's
//! `tsquery` from those terms (`store::search`), so no text a caller types ever reaches a
//! database as query syntax. Who may find what is not decided here: search shows exactly
//! what reads show (`messages::visible_to`, the conversations a caller may see).

use serde::{Deserialize, Serialize};

use super::{
    Caller, Error, Micros,
    channels::Channel,
    messages::{Direction, MessageKind},
};

/// Most bytes in a query: a search is a few words, not a document.
pub const MAX_QUERY_BYTES: usize = 512;
/// Most terms (words, phrases, prefixes) in a query.
pub const MAX_TERMS: usize = 16;
/// Fewest characters before a prefix's `*`: shorter prefixes match most of the index.
pub const MIN_PREFIX_CHARS: usize = 2;
/// A page of hits when the request leaves its size 0.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
/// The largest page of hits (each carries a snippet).
pub const MAX_PAGE_SIZE: i32 = 100;
/// Matches are counted up to this many: `total_size` is exact below it, a lower bound at it.
pub const COUNT_LIMIT: u64 = 1000;
/// Relevance ranks this many of the newest matches: a word in most messages would
/// otherwise rank them all for every page.
pub const RELEVANCE_WINDOW: u64 = 1000;

/// What one part of a query asks for. Each holds the text as typed (lower-cased), for the
/// database's own tokenizer to split as it split the messages: `e-mail` is the phrase
/// `e mail` on either database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A word, or words joined by punctuation (`e-mail`, `3.14`), found as a phrase.
    Word(String),
    /// Words in double quotes, found next to each other in this order.
    Phrase(String),
    /// A word and any word it begins (`invoi*`): letters and digits only.
    Prefix(String),
}

/// A parsed query: every term must occur in a message for it to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms(Vec<Term>);

impl Terms {
    /// Parses request field `field`. Refused: an empty query, one with no word (only
    /// operators or punctuation), an unclosed quote, a `*` anywhere but after a word of at
    /// least [`MIN_PREFIX_CHARS`], more than [`MAX_TERMS`] terms or [`MAX_QUERY_BYTES`].
    pub fn parse(field: &str, text: &str) -> Result<Self, Error> {
        let invalid = |why: String| Error::invalid(field, why);
        if text.trim().is_empty() {
            return Err(invalid("is required: the words to search for".into()));
        }
        if text.len() > MAX_QUERY_BYTES {
            return Err(invalid(format!("has {} bytes; at most {MAX_QUERY_BYTES} are allowed", text.len())));
        }
        if text.contains('\0') {
            return Err(invalid("must not contain NUL characters".into()));
        }
        let pieces: Vec<&str> = text.split('"').collect();
        if pieces.len().is_multiple_of(2) {
            return Err(invalid("has an unclosed double quote: a phrase is \"words in quotes\"".into()));
        }
        let mut terms = Vec::new();
        for (index, piece) in pieces.into_iter().enumerate() {
            if index % 2 == 1 {
                // Inside quotes: one phrase, operators and all taken as text.
                if has_word(piece) {
                    terms.push(Term::Phrase(normalize(piece)));
                }
                continue;
            }
            for chunk in piece.split_whitespace() {
                if let Some(term) = Self::bare(chunk).map_err(invalid)? {
                    terms.push(term);
                }
            }
        }
        if terms.is_empty() {
            return Err(invalid("has no word to search for (only operators or punctuation)".into()));
        }
        if terms.len() > MAX_TERMS {
            return Err(invalid(format!("has {} terms; at most {MAX_TERMS} are allowed", terms.len())));
        }
        Ok(Self(terms))
    }

    /// One unquoted chunk: a prefix when it ends in `*`, else a word; nothing when it has
    /// no letter or digit (a lone `-` or `*` means nothing in a query of plain words).
    fn bare(chunk: &str) -> Result<Option<Term>, String> {
        let stem = chunk.strip_suffix('*');
        let text = stem.unwrap_or(chunk);
        if text.contains('*') {
            return Err(format!("{chunk:?}: a * may only end a word, as in invoi*"));
        }
        if !has_word(text) {
            return Ok(None);
        }
        let Some(stem) = stem else { return Ok(Some(Term::Word(normalize(text)))) };
        if !stem.chars().all(char::is_alphanumeric) {
            return Err(format!("{chunk:?}: a prefix is one word of letters and digits before the *"));
        }
        if stem.chars().count() < MIN_PREFIX_CHARS {
            return Err(format!("{chunk:?}: a prefix needs at least {MIN_PREFIX_CHARS} characters before the *"));
        }
        Ok(Some(Term::Prefix(normalize(stem))))
    }

    /// The terms, in the order typed.
    pub fn iter(&self) -> impl Iterator<Item = &Term> {
        self.0.iter()
    }

    /// The query in one canonical spelling (for page tokens: the same search typed with
    /// other spaces or capitals continues the same pages).
    pub fn canonical(&self) -> String {
        let spelled: Vec<String> = self
            .0
            .iter()
            .map(|term| match term {
                Term::Word(text) => text.clone(),
                Term::Phrase(text) => format!("\"{text}\""),
                Term::Prefix(text) => format!("{text}*"),
            })
            .collect();
        spelled.join(" ")
    }
}

fn has_word(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// Lower case, runs of whitespace as one space.
fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The order of hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchOrder {
    /// Newest first, by when each message was sent; pages go back to the first message.
    #[default]
    Newest,
    /// Best match first, among the [`RELEVANCE_WINDOW`] newest matches.
    Relevance,
}

/// A search: its terms, the order, and the filters (each optional; all must hold).
#[derive(Debug, Clone)]
pub struct MessageSearch {
    /// What to find.
    pub terms: Terms,
    /// In which order.
    pub order: SearchOrder,
    /// `conv_…`: one conversation (NOT_FOUND when the caller may not see it).
    pub conversation_id: Option<String>,
    /// `usr_…`: messages this user sent.
    pub sender_id: Option<String>,
    /// Messages of this kind.
    pub kind: Option<MessageKind>,
    /// Messages going this way.
    pub direction: Option<Direction>,
    /// The channel as the caller sees it: a member sees the channel of its own messages
    /// only, so another's relayed message is in-app to it (as `ListMessages` shows it).
    pub channel: Option<Channel>,
    /// Sent at or after this time.
    pub after: Option<Micros>,
    /// Sent strictly before this time.
    pub before: Option<Micros>,
    /// With at least one attachment (true) or none (false).
    pub has_attachments: Option<bool>,
    /// In conversations about this kind of subject.
    pub subject_kind: Option<String>,
    /// In conversations about the subject with this external id.
    pub subject_external_id: Option<String>,
}

impl MessageSearch {
    /// Identifies the search for page tokens: the caller, the terms and every filter.
    pub fn fingerprint(&self, caller: &Caller) -> String {
        format!(
            "search|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            caller.user_id,
            self.terms.canonical(),
            self.order,
            self.conversation_id,
            self.sender_id,
            self.kind,
            self.direction,
            self.channel,
            self.after,
            self.before,
            self.has_attachments,
            self.subject_kind,
            self.subject_external_id,
        )
    }
}

/// Where a page of hits continues: after the hit with this id, or in relevance order
/// after this many hits. Only what the caller has seen: a token is readable, and the
/// store's own numbers (rowids, scores) would tell of other accounts' messages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HitKey {
    /// The last hit's message id.
    pub id: String,
    /// Hits returned so far, in relevance order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u64>,
}

/// A message found, and the excerpt of it that matched.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The message, as the caller may see it.
    pub message: super::views::MessageView,
    /// Where it matched.
    pub snippet: Snippet,
}

/// An excerpt of a hit's content around what matched, as runs of text, each marked
/// whether it matched: clients render the marks as they like, with no markup to escape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snippet(pub Vec<SnippetPart>);

/// A run of a snippet's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnippetPart {
    /// The run's text.
    pub text: String,
    /// Part of what the query matched.
    pub matched: bool,
}

/// Marks a database puts around a match in a snippet: Unicode's first private-use
/// characters, which no text the product shows uses for itself.
pub const MATCH_START: char = '\u{E000}';
/// Ends a match (see [`MATCH_START`]).
pub const MATCH_END: char = '\u{E001}';

impl Snippet {
    /// Splits a database's marked excerpt into runs. Marks out of place (a message that
    /// itself holds the private-use characters) end or start a run, never fail.
    pub fn from_marked(marked: &str) -> Self {
        let mut parts = Vec::new();
        let (mut text, mut matched) = (String::new(), false);
        for c in marked.chars() {
            let flips = (c == MATCH_START && !matched) || (c == MATCH_END && matched);
            if c == MATCH_START || c == MATCH_END {
                if flips {
                    if !text.is_empty() {
                        parts.push(SnippetPart { text: std::mem::take(&mut text), matched });
                    }
                    matched = !matched;
                }
                continue;
            }
            text.push(c);
        }
        if !text.is_empty() {
            parts.push(SnippetPart { text, matched });
        }
        Self(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Term>, String> {
        Terms::parse("query", text).map(|terms| terms.0).map_err(|err| err.to_string())
    }

    #[test]
    fn words_phrases_and_prefixes() {
        assert_eq!(
            parse(r#"  Invoice "Sent  Today" pay* e-mail "#).unwrap(),
            vec![
                Term::Word("invoice".into()),
                Term::Phrase("sent today".into()),
                Term::Prefix("pay".into()),
                Term::Word("e-mail".into()),
            ]
        );
        assert_eq!(Terms::parse("q", "A  b").unwrap().canonical(), Terms::parse("q", "a b").unwrap().canonical());
    }

    #[test]
    fn operators_alone_carry_no_meaning() {
        assert_eq!(parse("hello - *").unwrap(), vec![Term::Word("hello".into())]);
        assert_eq!(parse("AND OR NOT").unwrap().len(), 3, "operator words are words");
    }

    #[test]
    fn refusals_name_the_query() {
        for (text, why) in [
            ("", "is required"),
            ("   ", "is required"),
            ("* - \"\" ()", "no word"),
            ("\"unbalanced", "unclosed double quote"),
            ("a*b", "may only end a word"),
            ("a*", "at least 2"),
            ("e-ma*", "one word"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains("query") && err.contains(why), "{text:?}: {err}");
        }
        assert!(parse(&"word ".repeat(200)).unwrap_err().contains("bytes"));
        assert!(parse(&"w ".repeat(17)).unwrap_err().contains("terms"));
    }

    #[test]
    fn snippets_split_at_the_marks() {
        let snippet = Snippet::from_marked("pay the \u{E000}invoice\u{E001} today");
        assert_eq!(
            snippet.0,
            vec![
                SnippetPart { text: "pay the ".into(), matched: false },
                SnippetPart { text: "invoice".into(), matched: true },
                SnippetPart { text: " today".into(), matched: false },
            ]
        );
        let stray = Snippet::from_marked("a\u{E001}b\u{E000}c");
        assert_eq!(stray.0.iter().map(|p| p.text.as_str()).collect::<String>(), "abc");
    }
}
