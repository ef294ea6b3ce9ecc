//! API key format: `cf_<8-char id>_<32 random url-safe chars>`. Only the SHA-256 (hex) of the
//! whole key is stored, next to the id; the plaintext is shown once.

use rand::Rng;
use sha2::{Digest, Sha256};

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub const ID_LEN: usize = 8;
pub const SECRET_LEN: usize = 32;

/// A plaintext API key, returned once at creation. Debug shows only `cf_<id>_***`.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainKey(String);

impl PlainKey {
    /// The full key, to hand to the user once.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn id(&self) -> &str {
        &self.0[3..3 + ID_LEN]
    }
}

impl std::fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cf_{}_***", self.id())
    }
}

/// Letters and digits, for generated ids such as `wh_…`.
pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

/// A fresh key and its id.
pub fn generate() -> PlainKey {
    PlainKey(format!("cf_{}_{}", random_string(ID_ALPHABET, ID_LEN), random_string(SECRET_ALPHABET, SECRET_LEN)))
}

/// The id part of a well-formed key, else `None`.
pub fn parse_id(plain: &str) -> Option<&str> {
    let rest = plain.strip_prefix("cf_")?;
    let (id, secret) = rest.split_at_checked(ID_LEN)?;
    let secret = secret.strip_prefix('_')?;
    let ok = id.bytes().all(|b| ID_ALPHABET.contains(&b))
        && secret.len() == SECRET_LEN
        && secret.bytes().all(|b| SECRET_ALPHABET.contains(&b));
    ok.then_some(id)
}

pub fn hash_hex(plain: &str) -> String {
    Sha256::digest(plain.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_parse_and_debug() {
        let k = generate();
        assert_eq!(k.expose().len(), 3 + ID_LEN + 1 + SECRET_LEN);
        assert_eq!(parse_id(k.expose()), Some(k.id()));
        let dbg = format!("{k:?}");
        assert_eq!(dbg, format!("cf_{}_***", k.id()));
        assert!(!dbg.contains(&k.expose()[12..]));
        assert_ne!(generate().expose(), k.expose());
        for bad in ["", "cf_", "cf_abcdefgh", "xx_abcdefgh_0123456789abcdef0123456789abcdef", "cf_ABCDEFGH_0123456789abcdef0123456789abcdef"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
        assert_eq!(hash_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(constant_time_eq(b"ab", b"ab") && !constant_time_eq(b"ab", b"ac") && !constant_time_eq(b"a", b"ab"));
    }
}
