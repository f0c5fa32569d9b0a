//! Bounded text: the one rule every free-text field of a request follows. No NUL character
//! (PostgreSQL cannot store one, so it is refused on every backend rather than on one) and
//! at most a given number of characters (not bytes: limits are what a person types).

use super::Error;

/// `value` of request field `field` if it has no NUL and at most `max_chars` characters.
pub fn bounded(field: &str, value: String, max_chars: usize) -> Result<String, Error> {
    if value.contains('\0') {
        return Err(Error::invalid(field, "must not contain NUL characters"));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(Error::invalid(field, format!("has {chars} characters; at most {max_chars} are allowed")));
    }
    Ok(value)
}

/// [`bounded`] after trimming surrounding whitespace, for names and labels.
pub fn trimmed(field: &str, value: &str, max_chars: usize) -> Result<String, Error> {
    bounded(field, value.trim().to_owned(), max_chars)
}

/// An optional value: empty means none; otherwise [`bounded`].
pub fn optional(field: &str, value: String, max_chars: usize) -> Result<Option<String>, Error> {
    if value.is_empty() { Ok(None) } else { bounded(field, value, max_chars).map(Some) }
}

/// A listing's filter value: empty means "no filter"; at most [`MAX_FILTER_CHARS`], which is
/// more than any value stored (a longer one could only match nothing, and costs a query).
pub fn filter(field: &str, value: String) -> Result<Option<String>, Error> {
    optional(field, value, MAX_FILTER_CHARS)
}

/// Most characters in a picture's URL.
pub const MAX_URL_CHARS: usize = 2048;

/// A picture's address (an avatar, a listing's thumbnail): empty for none, else an
/// absolute `http` or `https` URL of at most [`MAX_URL_CHARS`], which clients may load
/// as it is. Other schemes (`javascript:`, `data:`, `file:`) are refused: a browser client
/// would follow them.
pub fn image_url(field: &str, value: String) -> Result<String, Error> {
    if value.is_empty() {
        return Ok(value);
    }
    let value = bounded(field, value, MAX_URL_CHARS)?;
    match url::Url::parse(&value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(value),
        Ok(url) => Err(Error::invalid(field, format!("must be an http or https URL, not {}:", url.scheme()))),
        Err(err) => Err(Error::invalid(field, format!("{value:?} is not a URL: {err}"))),
    }
}

/// Most characters in a listing's filter value.
pub const MAX_FILTER_CHARS: usize = 1024;

/// A client's idempotency key (`request_id`): empty for none, else at most 200 characters.
pub fn request_id(field: &str, value: String) -> Result<Option<String>, Error> {
    optional(field, value, MAX_REQUEST_ID_CHARS)
}

/// Most characters in a message's content (a template's, rendered or not, alike).
pub const MAX_CONTENT_CHARS: usize = 32 * 1024;

/// Most characters in a request id.
pub const MAX_REQUEST_ID_CHARS: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_within_the_limit_passes_unchanged() {
        assert_eq!(bounded("f", "héllo".into(), 5).unwrap(), "héllo", "characters, not bytes");
        assert_eq!(trimmed("f", "  hi  ", 2).unwrap(), "hi");
    }

    #[test]
    fn nul_and_overlong_text_name_the_field() {
        for result in [bounded("subject.title", "a\0b".into(), 10), bounded("subject.title", "abcdef".into(), 5)] {
            match result {
                Err(Error::InvalidArgument(violations)) => assert_eq!(violations[0].field, "subject.title"),
                other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
            }
        }
        assert!(trimmed("f", " \0 ", 10).is_err(), "NUL is not whitespace and survives trimming");
    }

    #[test]
    fn empty_filters_and_request_ids_mean_none() {
        assert_eq!(filter("f", String::new()).unwrap(), None);
        assert!(filter("f", "a\0".into()).is_err());
        assert_eq!(request_id("request_id", "r-1".into()).unwrap().as_deref(), Some("r-1"));
        assert!(request_id("request_id", "x".repeat(201)).is_err());
    }

    #[test]
    fn image_urls_are_http_or_https() {
        assert_eq!(image_url("u", String::new()).unwrap(), "");
        assert!(image_url("u", "https://cdn.example.com/a.jpg".into()).is_ok());
        for bad in ["javascript:alert(1)", "data:image/png;base64,AA", "cdn.example.com/a.jpg", "https://"] {
            assert!(image_url("u", bad.into()).is_err(), "{bad}");
        }
    }
}
