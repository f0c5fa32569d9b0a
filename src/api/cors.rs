//! Which web pages may call the API from a browser: CORS for grpc-web. A page on another
//! origin (every real web app: the page comes from the product's domain, Missive from its
//! own) first sends a preflight `OPTIONS`; this layer answers it for the configured origins
//! and marks their responses readable, including the gRPC status headers a trailers-only
//! error carries. With no origins configured there is no layer at all, so a server that
//! does not opt in behaves exactly as before (browsers on other origins are refused).

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// What a page must read to see how a call ended (a trailers-only answer carries them as
/// headers), and its error details.
const EXPOSED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The layer for `origins` (each `scheme://host[:port]`, or `*` for any), or none when the
/// list is empty.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allowed = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allowed)
            .allow_methods([Method::POST])
            // Any request header a page asks for: grpc-web's own, the key, and whatever
            // metadata the app adds (request ids, …). Only the listed origins get an answer
            // the browser accepts, so this opens nothing to other pages.
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

/// Reads one `--cors-allowed-origins` entry: `*`, or an origin as a browser sends it
/// (`https://app.example.com`, `http://localhost:8080`), without a path.
pub fn parse_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value == "*" {
        return Ok(value.to_owned());
    }
    // Patterns are not supported: `https://*.example.com` would only ever match itself.
    if value.contains('*') {
        return Err(format!("{value:?}: wildcards in an origin are not supported; list each origin, or use * alone"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{value:?} is not an origin: it contains spaces or control characters"));
    }
    let url = url::Url::parse(value)
        .map_err(|err| format!("{value:?} is not an origin ({err}); use e.g. https://app.example.com"))?;
    let origin = url.origin();
    let bare = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && !value.ends_with('/')
        && url.username().is_empty()
        && url.password().is_none();
    if !matches!(url.scheme(), "http" | "https") || !origin.is_tuple() || !bare {
        return Err(format!(
            "{value:?} is not an origin: use scheme://host[:port] with no path, e.g. https://app.example.com"
        ));
    }
    Ok(origin.ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_read_as_browsers_send_them() {
        assert_eq!(parse_origin("https://App.Example.com").unwrap(), "https://app.example.com");
        assert_eq!(parse_origin("http://localhost:8080").unwrap(), "http://localhost:8080");
        assert_eq!(parse_origin("https://example.com:443").unwrap(), "https://example.com");
        assert_eq!(parse_origin("*").unwrap(), "*");
        let bad = [
            "example.com",
            "https://example.com/app",
            "https://example.com/",
            "ftp://x",
            "https://x?q=1",
            "https://*.example.com",
            "https://user@example.com",
            "https://a.com\nx",
        ];
        for bad in bad {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_origins_means_no_layer() {
        assert!(layer(&[]).is_none());
        assert!(layer(&["https://app.example.com".to_owned()]).is_some());
    }
}
