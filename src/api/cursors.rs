//! Event cursors as clients hold them. A position in the log (`domain::events::Position`)
//! is a PostgreSQL transaction id and a number among every account's appends: both count
//! what the whole database does, and a cursor must reveal nothing of other accounts. So a
//! cursor is the position sealed with AES under a key of the account's own
//! (`accounts.cursor_key`): 22 URL-safe characters, ordered for nobody but the server. A
//! cursor of another account opens to nonsense, which the zero high bits of both numbers
//! catch with near certainty (and which could only name a place in the caller's own log).
//!
//! Cursors handed out before positions were the account's own event numbers, digits only;
//! they still work (`Start::AfterNumber`).

use aes::{
    Aes128, Block,
    cipher::{BlockDecrypt, BlockEncrypt, KeyInit},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{
    domain::{Error, events::Position},
    events::stream::Start,
};

/// Bits of each number that a real position leaves zero (2^48 transactions or appends
/// are decades away).
const SPARE_BITS: u32 = 16;

/// Seals and opens one account's cursors.
pub struct CursorSeal {
    cipher: Aes128,
}

impl CursorSeal {
    /// The seal of an account whose key (32 hex digits) is `key`.
    pub fn new(key: &str) -> Result<Self, Error> {
        let cipher = hex::decode(key)
            .ok()
            .and_then(|key| Aes128::new_from_slice(&key).ok())
            .ok_or_else(|| Error::Internal("the account's cursor key is not 16 bytes of hex".into()))?;
        Ok(Self { cipher })
    }

    /// The cursor of `position`.
    pub fn seal(&self, position: Position) -> String {
        let mut block = [0u8; 16];
        block[..8].copy_from_slice(&position.tx.to_be_bytes());
        block[8..].copy_from_slice(&position.seq.to_be_bytes());
        let mut block = Block::from(block);
        self.cipher.encrypt_block(&mut block);
        URL_SAFE_NO_PAD.encode(block)
    }

    /// Where a request's cursor (`field`) starts: empty for live only, digits for an
    /// account number of before positions, else a sealed position.
    pub fn open(&self, field: &str, cursor: &str) -> Result<Start, Error> {
        if cursor.is_empty() {
            return Ok(Start::Live);
        }
        let not_a_cursor = || Error::invalid(field, "not a cursor returned by Subscribe");
        if cursor.bytes().all(|byte| byte.is_ascii_digit()) {
            return cursor.parse().map(Start::AfterNumber).map_err(|_| not_a_cursor());
        }
        let block: [u8; 16] =
            URL_SAFE_NO_PAD.decode(cursor).ok().and_then(|bytes| bytes.try_into().ok()).ok_or_else(not_a_cursor)?;
        let mut block = Block::from(block);
        self.cipher.decrypt_block(&mut block);
        let number = |bytes: &[u8]| i64::from_be_bytes(bytes.try_into().expect("8 bytes"));
        let (tx, seq) = (number(&block[..8]), number(&block[8..]));
        let plausible = |value: i64| value >= 0 && value.leading_zeros() > SPARE_BITS;
        if !(plausible(tx) && plausible(seq)) {
            return Err(not_a_cursor());
        }
        Ok(Start::After(Position { tx, seq }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f";

    #[test]
    fn a_sealed_position_opens_to_itself() {
        let seal = CursorSeal::new(KEY).unwrap();
        for position in [Position::START, Position { tx: 0, seq: 41 }, Position { tx: 987_654_321, seq: 1 << 40 }] {
            let cursor = seal.seal(position);
            assert_eq!(cursor.len(), 22);
            assert!(matches!(seal.open("after", &cursor), Ok(Start::After(opened)) if opened == position));
        }
    }

    #[test]
    fn cursors_hide_their_numbers_and_belong_to_their_account() {
        let (mine, theirs) = (CursorSeal::new(KEY).unwrap(), CursorSeal::new(&"ab".repeat(16)).unwrap());
        let (one, two) = (mine.seal(Position { tx: 5, seq: 1 }), mine.seal(Position { tx: 5, seq: 2 }));
        assert_ne!(one[..8], two[..8], "neighbours look unrelated");
        assert!(theirs.open("after", &one).is_err(), "another account's cursor is refused");
    }

    #[test]
    fn old_numbers_empty_and_garbage() {
        let seal = CursorSeal::new(KEY).unwrap();
        assert!(matches!(seal.open("after", ""), Ok(Start::Live)));
        assert!(matches!(seal.open("after", "0"), Ok(Start::AfterNumber(0))));
        assert!(matches!(seal.open("after", "42"), Ok(Start::AfterNumber(42))));
        for garbage in ["-1", "x", "99999999999999999999999", "AAAA", "!!!!!!!!!!!!!!!!!!!!!!"] {
            assert!(matches!(seal.open("after", garbage), Err(Error::InvalidArgument(_))), "{garbage}");
        }
        assert!(CursorSeal::new("").is_err());
    }
}
