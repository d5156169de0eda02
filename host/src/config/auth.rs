//! `[auth]`: the handshake token (docs/PROTOCOL.md, "Tokens"), its previous key while keys
//! rotate, and `[auth.jwt]` beside it. A reload re-reads this section (README.md, "Tokens
//! and key rotation").

use serde::Deserialize;
use smart_default::SmartDefault;

use super::{check::non_empty, jwt::Jwt, until::Until};
use crate::edge::auth::{Cipher, DEFAULT_KEY};

/// `[auth]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Whether a token is required; without one a client gets the anonymous identity.
    #[default(true)]
    pub required: bool,
    /// Cipher key, padded with `0` (or cut) to the cipher's key size.
    #[default(DEFAULT_KEY.into())]
    pub key: String,
    /// The key before `key`: its tokens are accepted until `previous_key_until`.
    pub previous_key: Option<String>,
    /// When tokens under `previous_key` stop being accepted.
    pub previous_key_until: Option<Until>,
    /// `3des-ecb` (MSwoole) or `des-cbc`.
    pub cipher: Cipher,
    /// IV for `des-cbc`; `None` uses the key's first 8 bytes.
    pub iv: Option<String>,
    /// Maximum token age in seconds from its `ctime`; 0 = no limit.
    pub max_age_s: u64,
    /// `[auth.jwt]`: JSON Web Tokens beside MSwoole's.
    pub jwt: Jwt,
}

impl Auth {
    pub(super) fn validate(&self) -> Result<(), String> {
        non_empty("auth.key", &self.key)?;
        if let Some(iv) = &self.iv {
            non_empty("auth.iv", iv)?;
        }
        previous(
            ("auth.previous_key", self.previous_key.as_deref()),
            ("auth.previous_key_until", self.previous_key_until),
        )?;
        self.jwt.validate()
    }
}

/// A previous key comes with the date it ends, and a date with its key.
pub(super) fn previous(
    (key_name, key): (&str, Option<&str>),
    (until_name, until): (&str, Option<Until>),
) -> Result<(), String> {
    match (key, until) {
        (Some(key), Some(_)) => non_empty(key_name, key),
        (Some(_), None) => Err(format!(
            "{key_name} needs {until_name}: the RFC 3339 date its tokens stop being accepted, \
             such as 2026-07-01T00:00:00Z"
        )),
        (None, Some(_)) => Err(format!("{until_name} is set without {key_name}")),
        (None, None) => Ok(()),
    }
}
