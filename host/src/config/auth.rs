//! `[auth]`: the handshake token (docs/PROTOCOL.md, "Tokens"), its previous key while keys
//! rotate, and `[auth.jwt]` beside it. A reload re-reads this section (README.md, "Tokens
//! and key rotation").

use serde::Deserialize;
use smart_default::SmartDefault;

use super::{
    check::non_empty,
    jwt::Jwt,
    until::{previous, Until},
};

/// The key MSwoole shipped with; it is public, so the host warns when it is used off loopback.
pub const DEFAULT_KEY: &str = "kfw001-websocket";

/// Which cipher the tokens are made with (`auth.cipher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Cipher {
    /// 3DES-EDE3 in ECB mode with a 24-byte key: MSwoole's `Encrypt::undes`.
    #[default]
    #[serde(rename = "3des-ecb")]
    TripleDesEcb,
    /// Single DES in CBC mode (key = first 8 key bytes) for deployments that issue tokens that way.
    #[serde(rename = "des-cbc")]
    DesCbc,
}

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
