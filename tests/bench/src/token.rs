//! MSwoole auth tokens (docs/PROTOCOL.md, "Tokens"), minted by the load generator and checked by the baseline.
//!
//! Token = base64 of the 3DES-EDE3-ECB ciphertext (PKCS#5 padding) of a JSON object, with
//! `+ / =` replaced by `* : _`. The key string is padded with ASCII `0` (or cut) to 24 bytes.
//! Minting here instead of calling `mswoole token` keeps 19,000 connections from needing
//! 19,000 processes, and lets the baseline check tokens the same way the host does.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::TdesEde3;
use serde::Serialize;
use serde_json::Value;

/// The key MSwoole shipped with, and the host's default.
pub const DEFAULT_KEY: &str = "kfw001-websocket";

/// DES block size in bytes.
const BLOCK: usize = 8;
/// 3DES-EDE3 key size in bytes.
const KEY_LEN: usize = 24;

/// The claims of a token, serialised in MSwoole's order: `{id,type,code,nickname,ctime}`.
#[derive(Debug, Clone, Serialize)]
pub struct Claims {
    /// User id: a number for phone users, a string for walls (both are accepted).
    pub id: Value,
    /// `wechatUser` (phone), `wall` (big screen), or another type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Room code.
    pub code: String,
    /// Display name.
    pub nickname: String,
    /// Issue time, unix seconds.
    pub ctime: u64,
}

impl Claims {
    /// A phone user (`wechatUser`) with a numeric id in room `code`, issued now.
    pub fn user(id: u64, code: &str) -> Self {
        Claims {
            id: Value::from(id),
            kind: "wechatUser".into(),
            code: code.into(),
            nickname: format!("bench-{id}"),
            ctime: now(),
        }
    }

    /// A big screen (`wall`) with a string id in room `code`, issued now.
    pub fn wall(id: &str, code: &str) -> Self {
        Claims {
            id: Value::from(id),
            kind: "wall".into(),
            code: code.into(),
            nickname: format!("bench-{id}"),
            ctime: now(),
        }
    }
}

/// The current unix time in seconds (0 if the clock is before 1970).
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Mints and opens tokens with one key; the key schedule is computed once.
#[derive(Clone)]
pub struct Codec {
    cipher: TdesEde3,
}

impl Codec {
    /// A codec for `key`, padded with `0` or cut to 24 bytes as MSwoole did.
    pub fn new(key: &str) -> Self {
        let mut padded = [b'0'; KEY_LEN];
        for (slot, byte) in padded.iter_mut().zip(key.bytes()) {
            *slot = byte;
        }
        Codec {
            cipher: TdesEde3::new(GenericArray::from_slice(&padded)),
        }
    }

    /// The token for `claims`.
    pub fn mint(&self, claims: &Claims) -> String {
        // Serialising a struct of strings and numbers cannot fail.
        let plain = serde_json::to_vec(claims).unwrap_or_default();
        self.seal(&plain)
    }

    /// Encrypts arbitrary plaintext (PKCS#5 padded) into the token alphabet.
    pub fn seal(&self, plain: &[u8]) -> String {
        let pad = BLOCK - plain.len() % BLOCK;
        let mut data = Vec::with_capacity(plain.len() + pad);
        data.extend_from_slice(plain);
        data.resize(plain.len() + pad, u8::try_from(pad).unwrap_or(8));
        for block in data.chunks_exact_mut(BLOCK) {
            self.cipher
                .encrypt_block(GenericArray::from_mut_slice(block));
        }
        STANDARD
            .encode(&data)
            .chars()
            .map(|c| match c {
                '+' => '*',
                '/' => ':',
                '=' => '_',
                other => other,
            })
            .collect()
    }

    /// The claims of a token as a JSON object with an `id`, or `None` when it does not open.
    pub fn open(&self, token: &str) -> Option<Value> {
        let b64: String = token
            .chars()
            .map(|c| match c {
                '*' => '+',
                ':' => '/',
                '_' => '=',
                other => other,
            })
            .collect();
        let mut data = STANDARD.decode(b64).ok()?;
        if data.is_empty() || data.len() % BLOCK != 0 {
            return None;
        }
        for block in data.chunks_exact_mut(BLOCK) {
            self.cipher
                .decrypt_block(GenericArray::from_mut_slice(block));
        }
        let pad = usize::from(*data.last()?);
        if pad == 0
            || pad > BLOCK
            || data[data.len() - pad..]
                .iter()
                .any(|&b| usize::from(b) != pad)
        {
            return None;
        }
        data.truncate(data.len() - pad);
        let value: Value = serde_json::from_slice(&data).ok()?;
        let id_ok = matches!(value.get("id"), Some(Value::Number(_) | Value::String(_)));
        id_ok.then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_USER: &str = "qXZAxvfsHzK7DkCw*XDV6YnE:1CBtLXTqAK7L04jN*2Ti1:Ky*Vsr3jypILgUCNpnIP*XfdV*gvZFfIbGnYHMjudVcJzIucjZuQEemUaKEw5G3PEgt*twA__";
    const VECTOR_WALL: &str = "24VXbnqHVU4JoGH6qd7WpHL:3fv11hHbZxbo7PVZ*H6L1S3vf3ZVcvp:7VY1q8Ty7XOJQV2e6Wpc7kU9:SrAppI:YleXIIpKmlZa0aIloQ7lpMaj77kFXA__";
    const VECTOR_NOT_JSON: &str = "LSZSzyg0xSyJ83tp:BPF9g__";
    const CTIME: u64 = 1_764_115_200;

    #[test]
    fn mints_the_public_vectors() {
        let codec = Codec::new(DEFAULT_KEY);
        let user = Claims {
            id: Value::from(1),
            kind: "wechatUser".into(),
            code: "demo".into(),
            nickname: "alice".into(),
            ctime: CTIME,
        };
        assert_eq!(codec.mint(&user), VECTOR_USER);
        let wall = Claims {
            id: Value::from("w-7"),
            kind: "wall".into(),
            code: "demo".into(),
            nickname: "big screen".into(),
            ctime: CTIME,
        };
        assert_eq!(codec.mint(&wall), VECTOR_WALL);
        assert_eq!(codec.seal(b"not json at all"), VECTOR_NOT_JSON);
    }

    #[test]
    fn opens_what_it_mints_and_refuses_the_rest() {
        let codec = Codec::new(DEFAULT_KEY);
        let claims = codec.open(VECTOR_USER).expect("vector 1 opens");
        assert_eq!(claims["nickname"], "alice");
        assert_eq!(codec.open(VECTOR_NOT_JSON), None);
        assert_eq!(codec.open("not base64 !"), None);
        assert_eq!(codec.open(""), None);
        assert_eq!(Codec::new("another key").open(VECTOR_USER), None);
        let minted = codec.mint(&Claims::wall("w-1", "bench"));
        assert_eq!(
            codec.open(&minted).expect("minted token opens")["type"],
            "wall"
        );
    }
}
