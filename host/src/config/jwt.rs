//! `[auth.jwt]`: JSON Web Tokens at the handshake (docs/PROTOCOL.md, "JWT"), beside
//! MSwoole's token. Off unless `hs256_key` (or its previous key) or `rs256_public_key_file`
//! is set.

use std::{fmt, path::PathBuf};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use smart_default::SmartDefault;

use super::until::{previous, Until};

/// `[auth.jwt]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Jwt {
    /// The HS256 secret; empty = HS256 tokens are refused (unless a previous key still holds).
    pub hs256_key: String,
    /// The HS256 secret before `hs256_key`: accepted until `previous_until`.
    pub previous_hs256_key: Option<String>,
    /// When tokens under `previous_hs256_key` stop being accepted.
    pub previous_until: Option<Until>,
    /// The RSA public key (PEM) RS256 tokens are checked with, relative to the config file's
    /// directory; unset = RS256 tokens are refused.
    pub rs256_public_key_file: Option<PathBuf>,
    /// The `aud` a token must carry; unset = `aud` is not checked.
    pub audience: Option<String>,
    /// The `iss` a token must carry; unset = `iss` is not checked.
    pub issuer: Option<String>,
    /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`; at most [`MAX_LEEWAY_S`].
    #[default(5)]
    pub leeway_s: u64,
    /// The key `rs256_public_key_file` holds, read when the config is loaded.
    #[serde(skip)]
    pub rs256_public_key: Option<RsaPublicKey>,
}

/// The largest `leeway_s`: a clock an hour off is broken, not skewed (and the JWT library
/// subtracts the leeway from the current time).
pub const MAX_LEEWAY_S: u64 = 3600;

/// An RSA public key read from a PEM file.
#[derive(Clone)]
pub struct RsaPublicKey(pub DecodingKey);

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RsaPublicKey")
    }
}

impl Jwt {
    /// Whether any JWT is accepted at all.
    pub fn is_on(&self) -> bool {
        !self.hs256_key.is_empty()
            || self.previous_hs256_key.is_some()
            || self.rs256_public_key_file.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        previous(
            (
                "auth.jwt.previous_hs256_key",
                self.previous_hs256_key.as_deref(),
            ),
            ("auth.jwt.previous_until", self.previous_until),
        )?;
        if self.leeway_s > MAX_LEEWAY_S {
            return Err(format!(
                "auth.jwt.leeway_s must be at most {MAX_LEEWAY_S} (seconds of clock skew)"
            ));
        }
        for (name, value) in [("audience", &self.audience), ("issuer", &self.issuer)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!(
                    "auth.jwt.{name} must not be empty (leave it out not to check it)"
                ));
            }
        }
        Ok(())
    }

    /// Reads the PEM file `rs256_public_key_file` names, so a missing or wrong file stops
    /// start-up (or a reload) naming the key and the file.
    pub(super) fn read_public_key(&mut self) -> Result<(), String> {
        let Some(file) = &self.rs256_public_key_file else {
            return Ok(());
        };
        let fail = |why: &str| format!("auth.jwt.rs256_public_key_file: {}: {why}", file.display());
        let pem = std::fs::read(file).map_err(|error| fail(&format!("cannot read: {error}")))?;
        let label = String::from_utf8_lossy(&pem)
            .lines()
            .find_map(|line| line.trim().strip_prefix("-----BEGIN ").map(str::to_string));
        match label.as_deref() {
            Some("PUBLIC KEY-----" | "RSA PUBLIC KEY-----") => {}
            Some(other) if other.contains("PRIVATE") => {
                return Err(fail(
                    "holds a private key; give the public key \
                     (openssl pkey -in private.pem -pubout -out public.pem)",
                ))
            }
            _ => return Err(fail("not a PEM public key (-----BEGIN PUBLIC KEY-----)")),
        }
        let key = DecodingKey::from_rsa_pem(&pem)
            .map_err(|error| fail(&format!("not an RSA public key: {error}")))?;
        self.rs256_public_key = Some(RsaPublicKey(key));
        Ok(())
    }
}
