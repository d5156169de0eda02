//! MSwoole-compatible auth tokens (docs/PROTOCOL.md, "Tokens"): base64 of a DES-family ciphertext of a JSON object,
//! with `+ / =` swapped for `* : _` so the token survives a query string untouched (and
//! never holds a dot, which tells it from a JWT).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use des::cipher::generic_array::GenericArray;
use des::cipher::{
    BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit,
};
use des::{Des, TdesEde3};
use serde_json::{Map, Value};

use super::error::AuthError;
pub use crate::config::{Cipher, DEFAULT_KEY};

/// DES block size in bytes (DES and 3DES alike).
const BLOCK: usize = 8;

/// How far (seconds) a token's `ctime` may lie in the future, to absorb clock skew between issuers.
const FUTURE_SKEW_S: i128 = 300;

/// The keyed cipher, set up once.
#[derive(Clone)]
enum Keyed {
    Ecb(Box<TdesEde3>),
    Cbc { key: [u8; BLOCK], iv: [u8; BLOCK] },
}

/// Encrypts and decrypts tokens with the configured key; built once at start-up.
#[derive(Clone)]
pub struct TokenCodec {
    engine: Keyed,
}

impl fmt::Debug for TokenCodec {
    /// Shows the cipher only: the key must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cipher = match self.engine {
            Keyed::Ecb(_) => Cipher::TripleDesEcb,
            Keyed::Cbc { .. } => Cipher::DesCbc,
        };
        f.debug_struct("TokenCodec")
            .field("cipher", &cipher)
            .finish_non_exhaustive()
    }
}

/// `s`'s bytes padded on the right with ASCII `0` to `N` bytes, or cut to `N` (as MSwoole did).
fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b'0'; N];
    for (dst, src) in out.iter_mut().zip(s.as_bytes()) {
        *dst = *src;
    }
    out
}

/// Appends PKCS#5/7 padding (always at least one byte).
fn pad(mut data: Vec<u8>) -> Vec<u8> {
    let n = BLOCK - data.len() % BLOCK;
    // n is in 1..=8, so the cast is exact.
    data.resize(data.len() + n, n as u8);
    data
}

/// Strips PKCS#5/7 padding, checking every padding byte.
fn unpad(mut data: Vec<u8>) -> Result<Vec<u8>, AuthError> {
    let n = usize::from(*data.last().ok_or(AuthError::Decrypt)?);
    if n == 0 || n > BLOCK || n > data.len() {
        return Err(AuthError::Decrypt);
    }
    let body = data.len() - n;
    if data[body..].iter().any(|&b| usize::from(b) != n) {
        return Err(AuthError::Decrypt);
    }
    data.truncate(body);
    Ok(data)
}

impl TokenCodec {
    /// Sets up the cipher from the configured key (and, for des-cbc, the IV).
    pub fn new(key: &str, cipher: Cipher, iv: Option<&str>) -> TokenCodec {
        let engine = match cipher {
            Cipher::TripleDesEcb => {
                let key: [u8; 24] = padded(key);
                Keyed::Ecb(Box::new(TdesEde3::new(&GenericArray::from(key))))
            }
            Cipher::DesCbc => {
                let key: [u8; BLOCK] = padded(key);
                let iv = iv.map_or(key, padded);
                Keyed::Cbc { key, iv }
            }
        };
        TokenCodec { engine }
    }

    /// Encrypts already padded bytes in place.
    fn encrypt(&self, data: &mut [u8]) {
        match &self.engine {
            Keyed::Ecb(c) => {
                for block in data.chunks_exact_mut(BLOCK) {
                    c.encrypt_block(GenericArray::from_mut_slice(block));
                }
            }
            Keyed::Cbc { key, iv } => {
                let mut c = cbc::Encryptor::<Des>::new(&(*key).into(), &(*iv).into());
                for block in data.chunks_exact_mut(BLOCK) {
                    c.encrypt_block_mut(GenericArray::from_mut_slice(block));
                }
            }
        }
    }

    /// Decrypts whole blocks in place (the caller checked the length).
    fn decrypt(&self, data: &mut [u8]) {
        match &self.engine {
            Keyed::Ecb(c) => {
                for block in data.chunks_exact_mut(BLOCK) {
                    c.decrypt_block(GenericArray::from_mut_slice(block));
                }
            }
            Keyed::Cbc { key, iv } => {
                let mut c = cbc::Decryptor::<Des>::new(&(*key).into(), &(*iv).into());
                for block in data.chunks_exact_mut(BLOCK) {
                    c.decrypt_block_mut(GenericArray::from_mut_slice(block));
                }
            }
        }
    }

    /// Decrypts and parses a token (the form after the query was percent-decoded).
    pub fn decode(&self, token: &str) -> Result<Map<String, Value>, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Encoding);
        }
        let b64: String = token
            .chars()
            .map(|c| match c {
                '*' => '+',
                ':' => '/',
                '_' => '=',
                other => other,
            })
            .collect();
        let mut data = STANDARD.decode(b64).map_err(|_| AuthError::Encoding)?;
        if data.is_empty() || data.len() % BLOCK != 0 {
            return Err(AuthError::Decrypt);
        }
        self.decrypt(&mut data);
        let plain = unpad(data)?;
        let value: Value = serde_json::from_slice(&plain).map_err(|_| AuthError::NotJson)?;
        let Value::Object(claims) = value else {
            return Err(AuthError::NotObject);
        };
        match claims.get("id") {
            Some(Value::Number(_) | Value::String(_)) => Ok(claims),
            _ => Err(AuthError::MissingId),
        }
    }

    /// Encrypts a JSON object into a token string (used by `mswoole token` and tests).
    pub fn encode(&self, claims: &Value) -> String {
        let mut data = pad(claims.to_string().into_bytes());
        self.encrypt(&mut data);
        STANDARD
            .encode(data)
            .chars()
            .map(|c| match c {
                '+' => '*',
                '/' => ':',
                '=' => '_',
                other => other,
            })
            .collect()
    }
}

/// Reads `ctime` as unix seconds: an integer, a float (truncated) or a string of digits.
fn ctime_of(claims: &Map<String, Value>) -> Option<i128> {
    match claims.get("ctime")? {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i128)),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    }
}

/// Checks `ctime` against max_age_s (0 = no limit) at unix time `now`: missing ctime / older than
/// max_age / more than 300 s in the future are refused when max_age_s > 0.
pub fn check_age(claims: &Map<String, Value>, max_age_s: u64, now: u64) -> Result<(), AuthError> {
    if max_age_s == 0 {
        return Ok(());
    }
    let ctime = ctime_of(claims).ok_or(AuthError::MissingCtime)?;
    let now = i128::from(now);
    if ctime > now + FUTURE_SKEW_S {
        return Err(AuthError::FromTheFuture);
    }
    if now - ctime > i128::from(max_age_s) {
        return Err(AuthError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const V1: &str = "qXZAxvfsHzK7DkCw*XDV6YnE:1CBtLXTqAK7L04jN*2Ti1:Ky*Vsr3jypILgUCNpnIP*XfdV*gvZFfIbGnYHMjudVcJzIucjZuQEemUaKEw5G3PEgt*twA__";
    const V1_JSON: &str =
        r#"{"id":1,"type":"wechatUser","code":"demo","nickname":"alice","ctime":1764115200}"#;
    const V2: &str = "24VXbnqHVU4JoGH6qd7WpHL:3fv11hHbZxbo7PVZ*H6L1S3vf3ZVcvp:7VY1q8Ty7XOJQV2e6Wpc7kU9:SrAppI:YleXIIpKmlZa0aIloQ7lpMaj77kFXA__";
    const V2_JSON: &str =
        r#"{"id":"w-7","type":"wall","code":"demo","nickname":"big screen","ctime":1764115200}"#;
    const V3_NOT_JSON: &str = "LSZSzyg0xSyJ83tp:BPF9g__";

    fn ecb() -> TokenCodec {
        TokenCodec::new(DEFAULT_KEY, Cipher::TripleDesEcb, None)
    }

    fn obj(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).expect("test JSON")
    }

    #[test]
    fn public_vectors_decode() {
        let c = ecb();
        assert_eq!(c.decode(V1), Ok(obj(V1_JSON)));
        assert_eq!(c.decode(V2), Ok(obj(V2_JSON)));
        assert_eq!(c.decode(V3_NOT_JSON), Err(AuthError::NotJson));
    }

    #[test]
    fn encode_reproduces_vector_exactly() {
        let c = ecb();
        let claims: Value = serde_json::from_str(V1_JSON).expect("json");
        assert_eq!(c.encode(&claims), V1);
        let claims: Value = serde_json::from_str(V2_JSON).expect("json");
        assert_eq!(c.encode(&claims), V2);
    }

    #[test]
    fn garbage_and_wrong_key_are_refused() {
        let c = ecb();
        assert_eq!(c.decode(""), Err(AuthError::Encoding));
        assert_eq!(c.decode("not base64 !!"), Err(AuthError::Encoding));
        assert_eq!(c.decode("YWJj"), Err(AuthError::Decrypt)); // 3 bytes: not whole blocks
        let wrong = TokenCodec::new("another-key", Cipher::TripleDesEcb, None);
        assert!(wrong.decode(V1).is_err());
        assert!(wrong.decode(V2).is_err());
        // Tampering with the last block breaks the padding (or at least the JSON).
        let mut bad = V1.to_string();
        bad.replace_range(bad.len() - 6..bad.len() - 3, "AAA");
        assert!(c.decode(&bad).is_err());
    }

    #[test]
    fn shape_checks() {
        let c = ecb();
        assert_eq!(
            c.decode(&c.encode(&json!([1, 2]))),
            Err(AuthError::NotObject)
        );
        assert_eq!(
            c.decode(&c.encode(&json!({"type": "wall"}))),
            Err(AuthError::MissingId)
        );
        assert_eq!(
            c.decode(&c.encode(&json!({"id": null}))),
            Err(AuthError::MissingId)
        );
        assert_eq!(
            c.decode(&c.encode(&json!({"id": [1]}))),
            Err(AuthError::MissingId)
        );
        assert!(c.decode(&c.encode(&json!({"id": "x"}))).is_ok());
    }

    #[test]
    fn padding_is_checked_strictly() {
        assert_eq!(unpad(vec![1, 2, 3, 4, 5, 3, 3, 3]), Ok(vec![1, 2, 3, 4, 5]));
        assert_eq!(unpad(vec![1, 2, 3, 4, 5, 3, 2, 3]), Err(AuthError::Decrypt));
        assert_eq!(unpad(vec![1, 2, 3, 4, 5, 6, 7, 0]), Err(AuthError::Decrypt));
        assert_eq!(unpad(vec![9; 8]), Err(AuthError::Decrypt));
        assert_eq!(unpad(vec![8; 8]), Ok(vec![]));
        assert_eq!(pad(vec![]), vec![8; 8]);
    }

    #[test]
    fn key_padding() {
        assert_eq!(&padded::<8>("ab"), b"ab000000");
        assert_eq!(&padded::<8>("0123456789"), b"01234567");
    }

    #[test]
    fn des_cbc_round_trip() {
        let c = TokenCodec::new(DEFAULT_KEY, Cipher::DesCbc, Some("12345678"));
        let claims = json!({"id": 9, "type": "wall", "code": "r&d", "nickname": "大屏"});
        let token = c.encode(&claims);
        assert_eq!(c.decode(&token).map(Value::Object), Ok(claims));
        // The default IV (the key's first 8 bytes) differs from this one.
        let default_iv = TokenCodec::new(DEFAULT_KEY, Cipher::DesCbc, None);
        assert_ne!(default_iv.decode(&token), c.decode(&token));
        // And an ECB codec with the same key cannot read it.
        assert!(ecb().decode(&token).is_err());
    }

    #[test]
    fn des_cbc_matches_openssl() {
        // Produced with OpenSSL 3.0 (DES lives in the legacy provider):
        //   printf '%s' '{"id":5,"type":"wechatUser","code":"demo"}' \
        //   | openssl enc -des-cbc -provider legacy -provider default \
        //       -K 6b66773030312d77 -iv 6b66773030312d77 -nosalt -base64 -A | tr '+/=' '*:_'
        // (key and IV = "kfw001-w", the first 8 bytes of the default key).
        let expected = "ARGpb2:nqOHKGKvce7VwkfHo6QEYomm08hSwF0zqf45BM7HmSojGTXZEUUBBXlzh";
        let c = TokenCodec::new(DEFAULT_KEY, Cipher::DesCbc, None);
        let claims: Value =
            serde_json::from_str(r#"{"id":5,"type":"wechatUser","code":"demo"}"#).expect("json");
        assert_eq!(c.encode(&claims), expected);
        assert_eq!(c.decode(expected).map(Value::Object), Ok(claims));
    }

    #[test]
    fn age_rules() {
        let now = 1_764_115_200 + 1000;
        let v1 = obj(V1_JSON);
        assert_eq!(check_age(&v1, 0, now), Ok(()));
        assert_eq!(check_age(&v1, 1000, now), Ok(()));
        assert_eq!(check_age(&v1, 999, now), Err(AuthError::Expired));
        let no_ctime = obj(r#"{"id":1}"#);
        assert_eq!(check_age(&no_ctime, 0, now), Ok(()));
        assert_eq!(check_age(&no_ctime, 60, now), Err(AuthError::MissingCtime));
        let bad_ctime = obj(r#"{"id":1,"ctime":"soon"}"#);
        assert_eq!(check_age(&bad_ctime, 60, now), Err(AuthError::MissingCtime));
        let ahead = obj(&format!(r#"{{"id":1,"ctime":{}}}"#, now + 300));
        assert_eq!(check_age(&ahead, 60, now), Ok(()));
        let too_far = obj(&format!(r#"{{"id":1,"ctime":{}}}"#, now + 301));
        assert_eq!(check_age(&too_far, 60, now), Err(AuthError::FromTheFuture));
        let as_string = obj(&format!(r#"{{"id":1,"ctime":"{}"}}"#, now - 10));
        assert_eq!(check_age(&as_string, 60, now), Ok(()));
    }

    #[test]
    fn errors_are_short_and_debug_hides_the_key() {
        assert_eq!(AuthError::Expired.to_string(), "token has expired");
        let dbg = format!("{:?}", ecb());
        assert!(!dbg.contains("kfw"));
        assert!(dbg.contains("TripleDesEcb"));
    }

    mod properties {
        //! The invariants the `token` fuzz target checks (docs/FUZZING.md).
        use proptest::prelude::*;
        use serde_json::{json, Value};

        use super::super::*;

        fn codec() -> impl Strategy<Value = TokenCodec> {
            (
                any::<bool>(),
                "[ -~]{0,30}",
                prop::option::of("[ -~]{1,10}"),
            )
                .prop_map(|(cbc, key, iv)| {
                    let cipher = if cbc {
                        Cipher::DesCbc
                    } else {
                        Cipher::TripleDesEcb
                    };
                    let key = if key.is_empty() {
                        DEFAULT_KEY.to_string()
                    } else {
                        key
                    };
                    TokenCodec::new(&key, cipher, iv.as_deref())
                })
        }

        proptest! {
            #[test]
            fn a_token_the_host_makes_decodes_to_the_same_claims(
                codec in codec(),
                id in prop_oneof![any::<i64>().prop_map(Value::from), any::<String>().prop_map(Value::from)],
                nickname in any::<String>(), ctime in any::<u32>(),
            ) {
                let claims = json!({"id": id, "type": "wechatUser", "nickname": nickname, "ctime": ctime});
                let token = codec.encode(&claims);
                prop_assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b':' | b'_')));
                prop_assert_eq!(codec.decode(&token).map(Value::Object), Ok(claims));
            }

            #[test]
            fn any_text_decodes_to_an_error_or_claims_with_an_id(
                token in prop_oneof![any::<String>(), "[A-Za-z0-9*:_]{0,64}"],
            ) {
                let codec = TokenCodec::new(DEFAULT_KEY, Cipher::TripleDesEcb, None);
                if let Ok(claims) = codec.decode(&token) {
                    prop_assert!(matches!(claims.get("id"), Some(Value::Number(_) | Value::String(_))));
                }
            }

            #[test]
            fn a_changed_character_never_yields_the_same_claims(index in any::<prop::sample::Index>(), with in "[A-Za-z0-9*:]") {
                let codec = TokenCodec::new(DEFAULT_KEY, Cipher::TripleDesEcb, None);
                let claims = json!({"id": 1, "code": "demo"});
                let token = codec.encode(&claims);
                let at = index.index(token.trim_end_matches('_').len());
                let mut changed = token.clone();
                changed.replace_range(at..=at, &with);
                match codec.decode(&changed) {
                    Ok(decoded) if changed != token => prop_assert_ne!(Value::Object(decoded), claims),
                    _ => {}
                }
            }
        }
    }
}
