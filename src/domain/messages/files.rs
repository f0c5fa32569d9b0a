//! A message's files as sent (seed 003's `attachments: (string | Attachment)[]`): bytes
//! uploaded with the message, a link the server never fetches, or an attachment the
//! caller may already read, forwarded without its bytes being sent or stored again (every
//! file's bytes are stored once per account, by digest).

use sha2::{Digest, Sha256};

use super::{Attachment, MAX_FILENAME_CHARS, MessageKind};
use crate::domain::{Error, error::Violations, text};

/// Most characters in a link.
pub const MAX_URL_CHARS: usize = 2048;

/// Where a file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// Uploaded with the message.
    Data(Vec<u8>),
    /// A link, never fetched by the server.
    Link {
        /// An absolute `https` URL.
        url: String,
        /// Its size as the sender gave it (0: not known).
        size_bytes: i64,
    },
    /// An attachment (`att_…`) the caller may read: the store resolves it to
    /// [`FileSource::Stored`] (or the link it is), checking that the caller may.
    Forward(String),
    /// Bytes the account already stores.
    Stored {
        /// Their digest, the key they are kept under.
        sha256: String,
        /// Their size.
        size_bytes: i64,
    },
}

/// A file sent with a message.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// A file name without path separators ("" for a forwarded file: the original's).
    pub filename: String,
    /// A media type such as `application/pdf` ("" for a forwarded file, or a link's when
    /// not known).
    pub media_type: String,
    /// Its bytes, or where they are.
    pub source: FileSource,
}

impl NewAttachment {
    /// Bytes uploaded with the message.
    pub fn upload(filename: impl Into<String>, media_type: impl Into<String>, data: Vec<u8>) -> Self {
        Self { filename: filename.into(), media_type: media_type.into(), source: FileSource::Data(data) }
    }

    /// The file as it is described once stored as `id`: its size and SHA-256 with its
    /// name and type, or its link.
    pub fn describe(&self, id: String) -> Attachment {
        let (size_bytes, sha256, url) = match &self.source {
            FileSource::Data(data) => (data.len() as i64, hex::encode(Sha256::digest(data)), None),
            FileSource::Link { url, size_bytes } => (*size_bytes, String::new(), Some(url.clone())),
            FileSource::Stored { sha256, size_bytes } => (*size_bytes, sha256.clone(), None),
            // Resolved before anything is stored.
            FileSource::Forward(_) => (0, String::new(), None),
        };
        Attachment { id, filename: self.filename.clone(), media_type: self.media_type.clone(), size_bytes, sha256, url }
    }

    /// This forwarded file as `original` describes it: its name unless the sender gave
    /// another, its type, and its bytes (or link). An image message takes images only.
    pub fn forwarding(self, field: &str, original: &Attachment, kind: MessageKind) -> Result<Self, Error> {
        if kind == MessageKind::Image && !original.media_type.starts_with("image/") {
            return Err(Error::invalid(field, "an image message carries image/* attachments"));
        }
        let source = match &original.url {
            Some(url) => FileSource::Link { url: url.clone(), size_bytes: original.size_bytes },
            None => FileSource::Stored { sha256: original.sha256.clone(), size_bytes: original.size_bytes },
        };
        let filename = if self.filename.is_empty() { original.filename.clone() } else { self.filename };
        Ok(Self { filename, media_type: original.media_type.clone(), source })
    }

    /// Every check of the file at `field` (`attachments[i]`), as sent.
    pub(super) fn check(&self, field: &str, kind: MessageKind, max_bytes: usize, violations: &mut Violations) {
        let image = kind == MessageKind::Image;
        match &self.source {
            FileSource::Data(data) => {
                violations.check(check_filename(&format!("{field}.filename"), &self.filename));
                check_media_type(&format!("{field}.media_type"), &self.media_type, image, violations);
                if data.is_empty() {
                    violations.add(format!("{field}.data"), "must not be empty");
                }
                if data.len() > max_bytes {
                    violations.add(
                        format!("{field}.data"),
                        format!("has {} bytes; at most {max_bytes} are allowed", data.len()),
                    );
                }
            }
            FileSource::Link { url, size_bytes } => {
                violations.check(check_filename(&format!("{field}.filename"), &self.filename));
                if !self.media_type.is_empty() || image {
                    check_media_type(&format!("{field}.media_type"), &self.media_type, image, violations);
                }
                violations.check(check_link(&format!("{field}.url"), url));
                if *size_bytes < 0 {
                    violations.add(format!("{field}.size_bytes"), "must not be negative (0: not known)");
                }
            }
            FileSource::Forward(_) => {
                if !self.filename.is_empty() {
                    violations.check(check_filename(&format!("{field}.filename"), &self.filename));
                }
                if !self.media_type.is_empty() {
                    violations.add(format!("{field}.media_type"), "is the forwarded file's own: leave it empty");
                }
            }
            FileSource::Stored { .. } => {}
        }
    }
}

/// An absolute `https` URL with a host, parsed by the `url` crate (WHATWG's rules).
fn check_link(field: &str, value: &str) -> Result<(), Error> {
    text::bounded(field, value.to_owned(), MAX_URL_CHARS)?;
    match url::Url::parse(value) {
        Ok(link) if link.scheme() == "https" && link.host().is_some() => Ok(()),
        _ => Err(Error::invalid(field, "must be an absolute https URL (https://host/path)")),
    }
}

/// The file name a link goes by when none is given: the last segment of its path, or its
/// host.
pub fn name_of_link(value: &str) -> String {
    let Ok(link) = url::Url::parse(value) else { return String::new() };
    let segment = link.path_segments().and_then(|mut segments| segments.next_back()).unwrap_or_default();
    let decoded = percent_decoded(segment);
    if decoded.is_empty() || decoded.contains(['/', '\\']) {
        link.host_str().unwrap_or_default().to_owned()
    } else {
        decoded.chars().take(MAX_FILENAME_CHARS).collect()
    }
}

fn percent_decoded(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// A file name: bounded, not empty, no path separators.
fn check_filename(field: &str, filename: &str) -> Result<(), Error> {
    text::bounded(field, filename.to_owned(), MAX_FILENAME_CHARS)?;
    if filename.is_empty() || filename.contains(['/', '\\']) {
        return Err(Error::invalid(field, "must be a file name: not empty, no path separators"));
    }
    Ok(())
}

/// A media type, of an image for an image message.
fn check_media_type(field: &str, value: &str, image: bool, violations: &mut Violations) {
    if !is_media_type(value) {
        violations.add(field, "must be a media type such as image/png");
    } else if image && !value.starts_with("image/") {
        violations.add(field, "an image message carries image/* attachments");
    }
}

/// A concrete media type: parsed as RFC 2045 says (the `mime` crate: `type/subtype` with
/// well-formed parameters), and each name as RFC 6838 restricts it (1 to 127 of letters,
/// digits and `!#$&^_.+-`), which also rules out wildcards.
fn is_media_type(value: &str) -> bool {
    let restricted_name = |name: &str| {
        (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    value
        .parse::<mime::Mime>()
        .is_ok_and(|media| restricted_name(media.type_().as_str()) && restricted_name(media.subtype().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(file: NewAttachment, kind: MessageKind) -> Vec<String> {
        let mut violations = Violations::new();
        file.check("a", kind, 10, &mut violations);
        match violations.finish() {
            Ok(()) => Vec::new(),
            Err(Error::InvalidArgument(v)) => v.into_iter().map(|v| v.field).collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    fn link(url: &str, media_type: &str) -> NewAttachment {
        NewAttachment {
            filename: "brochure.pdf".into(),
            media_type: media_type.into(),
            source: FileSource::Link { url: url.into(), size_bytes: 0 },
        }
    }

    #[test]
    fn links_are_absolute_https_urls() {
        assert!(fields(link("https://cdn.example.com/b.pdf", ""), MessageKind::Document).is_empty());
        assert!(fields(link("https://cdn.example.com/b.pdf", "application/pdf"), MessageKind::Document).is_empty());
        for bad in ["http://cdn.example.com/b.pdf", "/b.pdf", "javascript:alert(1)", "https://", "file:///etc/passwd"] {
            assert_eq!(fields(link(bad, ""), MessageKind::Document), ["a.url"], "{bad}");
        }
        assert_eq!(fields(link("https://x.example/p.png", ""), MessageKind::Image), ["a.media_type"]);
        let forward = NewAttachment {
            filename: String::new(),
            media_type: "text/plain".into(),
            source: FileSource::Forward("att_1".into()),
        };
        assert_eq!(fields(forward, MessageKind::Document), ["a.media_type"]);
    }

    #[test]
    fn a_link_is_named_by_its_path() {
        assert_eq!(name_of_link("https://cdn.example.com/docs/Price%20list.pdf?v=2"), "Price list.pdf");
        assert_eq!(name_of_link("https://cdn.example.com/"), "cdn.example.com");
    }

    #[test]
    fn media_types_must_be_concrete() {
        for good in ["image/png", "application/pdf", "text/plain; charset=utf-8", "application/vnd.ms-excel"] {
            assert!(is_media_type(good), "{good}");
        }
        for bad in
            ["pdf", "image/", "/png", "image/*", "a/b/c", "", "image/x%y", "application/a~b", "text/plain; charset"]
        {
            assert!(!is_media_type(bad), "{bad}");
        }
    }
}
