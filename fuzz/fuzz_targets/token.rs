//! The token decoder (host/src/edge/auth.rs): whatever arrives as `auth=` is decoded
//! without a panic, anything it accepts has a usable `id`, and a token the host
//! encodes decodes back to the same claims, under both ciphers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mswoole::edge::auth::{AuthError, Cipher, TokenCodec, DEFAULT_KEY};
use serde_json::{Map, Value};

/// The input: a flags byte, then fields separated by NUL, so that seeds are readable
/// (`fuzz/corpus/token`): token, claims, nickname, key, IV.
struct Input<'a> {
    /// Decoded as a token, as the query's `auth=` value.
    token: &'a str,
    /// Read as JSON claims, encoded, then decoded again.
    claims: &'a str,
    /// A numeric (flag bit 1: `nickname` read as a number) or a string id (`nickname`).
    id: Result<i64, &'a str>,
    /// A free string claim for the round trip.
    nickname: &'a str,
    /// Which cipher (flag bit 0).
    cbc: bool,
    /// A key (empty: the default key) and an IV (absent or empty: the key's first bytes).
    key: &'a str,
    iv: Option<&'a str>,
}

impl<'a> Input<'a> {
    fn read(data: &'a [u8]) -> Option<Self> {
        let (&flags, rest) = data.split_first()?;
        let text = std::str::from_utf8(rest).ok()?;
        let mut fields = text.split('\0');
        let token = fields.next().unwrap_or("");
        let claims = fields.next().unwrap_or("");
        let nickname = fields.next().unwrap_or("");
        let key = fields.next().unwrap_or("");
        let iv = fields.next().filter(|iv| !iv.is_empty());
        Some(Input {
            token,
            claims,
            id: match flags & 2 {
                0 => Err(nickname),
                _ => Ok(nickname.trim().parse().unwrap_or(-i64::from(flags))),
            },
            nickname,
            cbc: flags & 1 == 1,
            key,
            iv,
        })
    }
}

/// Only the token alphabet: base64 with `+ / =` swapped for `* : _`.
fn token_alphabet(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b':' | b'_'))
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let cipher = if input.cbc {
        Cipher::DesCbc
    } else {
        Cipher::TripleDesEcb
    };
    let key = if input.key.is_empty() {
        DEFAULT_KEY
    } else {
        input.key
    };
    let codec = TokenCodec::new(key, cipher, input.iv);

    // Any text: an error, or claims with an `id` that is a number or a string.
    if let Ok(claims) = codec.decode(input.token) {
        assert!(
            matches!(claims.get("id"), Some(Value::Number(_) | Value::String(_))),
            "accepted a token without a usable id: {claims:?}"
        );
    }

    // A round trip of claims the host built itself.
    let mut claims = Map::new();
    claims.insert(
        "id".into(),
        match &input.id {
            Ok(n) => Value::from(*n),
            Err(s) => Value::from(*s),
        },
    );
    claims.insert("nickname".into(), Value::from(input.nickname));
    let claims = Value::Object(claims);
    let token = codec.encode(&claims);
    assert!(token_alphabet(&token), "{token:?}");
    assert_eq!(codec.decode(&token).map(Value::Object), Ok(claims));

    // A round trip of any JSON value: the same object back, or the shape's error.
    if let Ok(value) = serde_json::from_str::<Value>(input.claims) {
        let token = codec.encode(&value);
        assert!(token_alphabet(&token), "{token:?}");
        let expected = match &value {
            Value::Object(map) => match map.get("id") {
                Some(Value::Number(_) | Value::String(_)) => Ok(()),
                _ => Err(AuthError::MissingId),
            },
            _ => Err(AuthError::NotObject),
        };
        match (codec.decode(&token), expected) {
            (Ok(decoded), Ok(())) => assert_eq!(
                serde_json::to_string(&decoded).ok(),
                serde_json::to_string(&value).ok(),
                "round trip changed the claims"
            ),
            (got, expected) => assert_eq!(got.err(), expected.err(), "{value}"),
        }
    }
});
