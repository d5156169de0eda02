//! Handshake tokens: who a client is (docs/PROTOCOL.md, "Tokens" and "JWT").
//!
//! Two kinds of token arrive in `auth=`: MSwoole's ([`mswoole`]: 3DES of a JSON object) and
//! JSON Web Tokens ([`jwt`]). A token with two dots is a JWT; MSwoole's alphabet has no dot.
//! Either way the client gets the same identity, so modules and the registry cannot tell
//! which kind it brought.
//!
//! [`Tokens`] holds every key as one config had them. A reload builds a new one from the
//! re-read file and swaps it in whole ([`TokenKeys`]), so a handshake checks against the old
//! keys or the new ones, never half of each, and open connections are not touched (README.md,
//! "Tokens and key rotation").

mod error;
pub mod jwt;
pub mod mswoole;

use std::{path::Path, sync::Arc};

use arc_swap::ArcSwap;
use serde_json::{Map, Value};
use time::OffsetDateTime;

pub use self::error::AuthError;
pub use self::mswoole::{check_age, Cipher, TokenCodec, DEFAULT_KEY};
use crate::{
    config::{Auth, Config, Until},
    identity::Identity,
};

/// Whether `token` has JWT's shape: exactly two dots.
pub fn is_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

/// Every key a handshake token is checked with, and the `[auth]` rules around them.
pub struct Tokens {
    /// `auth.required`.
    required: bool,
    /// `auth.max_age_s`.
    max_age_s: u64,
    /// `auth.key`.
    codec: TokenCodec,
    /// `auth.previous_key`, with `auth.previous_key_until`.
    previous: Option<(TokenCodec, Until)>,
    /// `[auth.jwt]`, when it has a key.
    jwt: Option<jwt::JwtKeys>,
}

impl Tokens {
    /// The keys of a validated `[auth]` section.
    pub fn new(auth: &Auth) -> Tokens {
        let codec = |key: &str| TokenCodec::new(key, auth.cipher, auth.iv.as_deref());
        Tokens {
            required: auth.required,
            max_age_s: auth.max_age_s,
            codec: codec(&auth.key),
            previous: auth
                .previous_key
                .as_deref()
                .zip(auth.previous_key_until)
                .map(|(key, until)| (codec(key), until)),
            jwt: jwt::JwtKeys::new(&auth.jwt),
        }
    }

    /// The codec of `auth.key`, which the demo pages mint with.
    pub fn codec(&self) -> &TokenCodec {
        &self.codec
    }

    /// The identity the handshake's token (`auth=`, percent-decoded) gives connection `fd`.
    pub fn identify(&self, token: Option<&str>, fd: String) -> Result<Identity, AuthError> {
        self.identify_at(token, fd, OffsetDateTime::now_utc())
    }

    /// [`Tokens::identify`] at `now` (a JWT's `exp` and `nbf` are checked against the
    /// system clock whatever `now` says).
    fn identify_at(
        &self,
        token: Option<&str>,
        fd: String,
        now: OffsetDateTime,
    ) -> Result<Identity, AuthError> {
        let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        match token.filter(|token| !token.is_empty()) {
            None if !self.required => Ok(Identity::anonymous(fd)),
            None => Err(AuthError::Missing),
            Some(token) if is_jwt(token) => {
                let keys = self.jwt.as_ref().ok_or(AuthError::JwtOff)?;
                let (claims, exp) = keys.verify(token, now)?;
                Ok(Identity::from_claims(fd, claims).expiring(exp))
            }
            Some(token) => {
                let claims = self.decode(token, now)?;
                check_age(&claims, self.max_age_s, unix)?;
                Ok(Identity::from_claims(fd, claims))
            }
        }
    }

    /// Decrypts an MSwoole token with `auth.key`, else with `auth.previous_key` while it holds.
    fn decode(&self, token: &str, now: OffsetDateTime) -> Result<Map<String, Value>, AuthError> {
        let refused = match self.codec.decode(token) {
            Ok(claims) => return Ok(claims),
            Err(refused) => refused,
        };
        match &self.previous {
            Some((previous, until)) if until.is_after(now) => match previous.decode(token) {
                Ok(claims) => {
                    tracing::debug!("token accepted under auth.previous_key");
                    Ok(claims)
                }
                // The current key's reason: the previous key is the exception.
                Err(_) => Err(refused),
            },
            _ => Err(refused),
        }
    }
}

/// The keys new handshakes are checked with, swapped whole by a reload.
pub struct TokenKeys(ArcSwap<Tokens>);

impl TokenKeys {
    /// The keys of a validated `[auth]` section.
    pub fn new(auth: &Auth) -> TokenKeys {
        TokenKeys(ArcSwap::from_pointee(Tokens::new(auth)))
    }

    /// The keys now.
    pub fn current(&self) -> Arc<Tokens> {
        self.0.load_full()
    }

    /// Re-reads and validates the config file the host was started with and swaps in its
    /// `[auth]` keys; any error in the file keeps the keys in use and says why.
    pub fn reload(&self, file: &Path) -> Result<(), String> {
        let config = Config::load(file).map_err(|error| error.to_string())?;
        self.0.store(Arc::new(Tokens::new(&config.auth)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn auth(toml: &str) -> Auth {
        Config::parse(toml, Path::new("/"))
            .expect("a valid test config")
            .auth
    }

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .expect("an RFC 3339 test date")
    }

    #[test]
    fn the_previous_key_holds_until_its_date_and_not_a_second_longer() {
        let tokens = Tokens::new(&auth(
            "[auth]\nkey = \"new-key\"\nprevious_key = \"old-key\"\n\
             previous_key_until = 2026-07-01T00:00:00Z",
        ));
        let claims = json!({"id": 7, "type": "wall"});
        let old = TokenCodec::new("old-key", Cipher::TripleDesEcb, None).encode(&claims);
        let new = TokenCodec::new("new-key", Cipher::TripleDesEcb, None).encode(&claims);
        let before = at("2026-06-30T23:59:59Z");
        let after = at("2026-07-01T00:00:00Z");
        for (token, now, accepted) in [
            (&old, before, true),
            (&old, after, false),
            (&new, before, true),
            (&new, after, true),
        ] {
            let identity = tokens.identify_at(Some(token), "f".into(), now);
            assert_eq!(identity.is_ok(), accepted, "{token} at {now}: {identity:?}");
        }
        // The refusal names the current key's reason.
        assert_eq!(
            tokens.identify_at(Some(&old), "f".into(), after).err(),
            Some(AuthError::Decrypt)
        );
    }

    #[test]
    fn a_jwt_gives_the_identity_an_mswoole_token_gives_plus_its_exp() {
        let tokens = Tokens::new(&auth(
            "[auth.jwt]\nhs256_key = \"a-test-secret-of-32-bytes-or-more\"",
        ));
        let iat = u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
        let claims =
            json!({"id": 7, "type": "wall", "code": "demo", "nickname": "w", "ctime": iat});
        let mswoole = tokens
            .identify(Some(&tokens.codec().encode(&claims)), "f".into())
            .expect("an MSwoole token");
        let jwt = jwt::sign(
            &json!({"sub": 7, "type": "wall", "code": "demo", "nickname": "w", "iat": iat, "exp": iat + 60}),
            jwt::SigningKey::Hs256("a-test-secret-of-32-bytes-or-more"),
        )
        .expect("signed");
        let jwt = tokens.identify(Some(&jwt), "f".into()).expect("a JWT");
        assert_eq!(jwt.info, mswoole.info);
        assert_eq!(jwt.injection(false), mswoole.injection(false));
        assert_eq!((jwt.exp, mswoole.exp), (Some(iat + 60), None));
    }

    #[test]
    fn a_token_with_two_dots_is_a_jwt() {
        assert!(is_jwt("a.b.c"));
        assert!(is_jwt(".."));
        assert!(!is_jwt("a.b"));
        assert!(!is_jwt("a.b.c.d"));
        assert!(!is_jwt("qXZAxvfsHzK7DkCw*XDV6YnE:1CBtLXTqAK7L04jN*2Ti1:Ky*Vsr3jypILgUCNpnIP*XfdV*gvZFfIbGnYHMjudVcJzIucjZuQEemUaKEw5G3PEgt*twA__"));
        let tokens = Tokens::new(&auth(""));
        assert_eq!(
            tokens.identify(Some("a.b.c"), "f".into()).err(),
            Some(AuthError::JwtOff)
        );
    }
}
