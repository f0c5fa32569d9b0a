//! What an idempotent create's fingerprint is taken of (see `domain::idempotency`): the
//! request's protobuf encoding, which is deterministic because `build.rs` asks prost for
//! ordered maps, with each attachment's data replaced by its SHA-256 digest, so that
//! fingerprinting a request with large files copies none of them.

use prost::Message;
use sha2::{Digest, Sha256};

use super::pb;

/// The bytes to fingerprint `request` by; `files` finds the attachments it carries.
pub(super) fn encoded<M: Message>(
    request: &mut M,
    files: fn(&mut M) -> Option<&mut Vec<pb::NewAttachment>>,
) -> Vec<u8> {
    let originals: Vec<Vec<u8>> = files(request)
        .map(|attachments| {
            attachments
                .iter_mut()
                .map(|attachment| {
                    let digest = Sha256::digest(&attachment.data).to_vec();
                    std::mem::replace(&mut attachment.data, digest)
                })
                .collect()
        })
        .unwrap_or_default();
    let encoded = request.encode_to_vec();
    if let Some(attachments) = files(request) {
        for (attachment, data) in attachments.iter_mut().zip(originals) {
            attachment.data = data;
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(data: &[u8]) -> pb::SendMessageRequest {
        pb::SendMessageRequest {
            content: "see attached".into(),
            attachments: vec![pb::NewAttachment {
                filename: "a.txt".into(),
                media_type: "text/plain".into(),
                data: data.into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn attachments(request: &mut pb::SendMessageRequest) -> Option<&mut Vec<pb::NewAttachment>> {
        Some(&mut request.attachments)
    }

    #[test]
    fn files_count_by_their_digest_and_are_given_back_untouched() {
        let mut request = send(b"the file");
        let first = encoded(&mut request, attachments);
        assert_eq!(request, send(b"the file"), "the request is as it was");
        assert_eq!(encoded(&mut send(b"the file"), attachments), first, "the same request, the same bytes");
        assert_ne!(encoded(&mut send(b"another file"), attachments), first, "another file, other bytes");
        assert!(!first.windows(8).any(|w| w == b"the file"), "the file itself is not in them");
    }
}
