//! JSON Web Tokens at the handshake (docs/PROTOCOL.md, "JWT"): HS256 with `auth.jwt.hs256_key`
//! (and `previous_hs256_key` until `previous_until`), RS256 with the public key of
//! `auth.jwt.rs256_public_key_file`.
//!
//! `jsonwebtoken` checks the signature, `exp` (required), `nbf`, `aud` and `iss`; since 10.3
//! it refuses an `exp` or `nbf` that is not a number instead of skipping the check
//! (CVE-2026-25537). The key is picked by the header's `alg` before the library sees the
//! token, so an HS256 token is never checked against the RSA public key (the
//! algorithm-confusion attack) and `none` is never accepted. What a JWT carries becomes the
//! claims an MSwoole token would have (`sub` → `id`, `type`, `code`, `nickname`, `iat` →
//! `ctime`): the identity is the same whichever token a client brought.

use std::collections::HashSet;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{
    crypto::rust_crypto::DEFAULT_PROVIDER, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey,
    Header, Validation,
};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::error::AuthError;
use crate::config::{Jwt, Until};

/// Selects the RustCrypto back end for the process, whatever features other crates turn
/// on (with both back ends enabled the library would pick none and panic on first use).
fn install_crypto() {
    // An error only means it is installed already.
    let _ = DEFAULT_PROVIDER.install_default();
}

/// The JWT keys and checks of `[auth.jwt]`.
pub struct JwtKeys {
    /// `hs256_key`, when set.
    hs256: Option<DecodingKey>,
    /// `previous_hs256_key` with `previous_until`.
    previous_hs256: Option<(DecodingKey, Until)>,
    /// The key of `rs256_public_key_file`.
    rs256: Option<DecodingKey>,
    /// `audience`, `issuer`, `leeway_s` as the library checks them, less the algorithm.
    validation: Validation,
    /// `leeway_s`, for `iat`.
    leeway_s: u64,
}

impl JwtKeys {
    /// The keys of a validated `[auth.jwt]`; `None` when it has none.
    pub fn new(config: &Jwt) -> Option<JwtKeys> {
        if !config.is_on() {
            return None;
        }
        install_crypto();
        // RFC 7518 §3.2: an HS256 key as long as the hash; a shorter one is guessable sooner.
        if (1..32).contains(&config.hs256_key.len()) {
            tracing::warn!(
                "auth.jwt.hs256_key is shorter than 32 bytes: use a random one (openssl rand -base64 32)"
            );
        }
        let secret = |key: &str| DecodingKey::from_secret(key.as_bytes());
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.leeway_s;
        validation.validate_nbf = true;
        validation.required_spec_claims = HashSet::from(["exp".to_string()]);
        // Checked only when configured; then the claim is required too.
        validation.validate_aud = config.audience.is_some();
        if let Some(audience) = &config.audience {
            validation.set_audience(&[audience]);
            validation.required_spec_claims.insert("aud".into());
        }
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        Some(JwtKeys {
            hs256: (!config.hs256_key.is_empty()).then(|| secret(&config.hs256_key)),
            previous_hs256: config
                .previous_hs256_key
                .as_deref()
                .zip(config.previous_until)
                .map(|(key, until)| (secret(key), until)),
            rs256: config.rs256_public_key.as_ref().map(|key| key.0.clone()),
            validation,
            leeway_s: config.leeway_s,
        })
    }

    /// Checks a JWT at `now` (for `iat` and `previous_until`; the library reads the system
    /// clock for `exp` and `nbf`). Returns the identity's claims and `exp`.
    pub fn verify(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<(Map<String, Value>, u64), AuthError> {
        // Each key with whether it is the previous one, current first.
        let (algorithm, keys): (Algorithm, Vec<(&DecodingKey, bool)>) =
            match header_alg(token)?.as_str() {
                "HS256" => {
                    let previous = self
                        .previous_hs256
                        .as_ref()
                        .filter(|(_, until)| until.is_after(now))
                        .map(|(key, _)| (key, true));
                    let current = self.hs256.iter().map(|key| (key, false));
                    (Algorithm::HS256, current.chain(previous).collect())
                }
                "RS256" => (
                    Algorithm::RS256,
                    self.rs256.iter().map(|key| (key, false)).collect(),
                ),
                _ => (Algorithm::HS256, Vec::new()),
            };
        let mut validation = self.validation.clone();
        validation.algorithms = vec![algorithm];
        let mut refused = AuthError::Algorithm;
        for (n, (key, previous)) in keys.into_iter().enumerate() {
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
                Ok(data) => {
                    if previous {
                        tracing::debug!("JWT accepted under auth.jwt.previous_hs256_key");
                    }
                    return identity_claims(&data.claims, now, self.leeway_s);
                }
                // Only a signature another key could verify is worth another try.
                Err(error) => match refusal(error.kind()) {
                    AuthError::BadSignature if n == 0 => refused = AuthError::BadSignature,
                    other => return Err(other),
                },
            }
        }
        Err(refused)
    }
}

/// The header's `alg`, read before any key is chosen.
fn header_alg(token: &str) -> Result<String, AuthError> {
    let header = token.split('.').next().unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(header)) => match header.get("alg") {
            Some(Value::String(alg)) => Ok(alg.clone()),
            _ => Err(AuthError::Algorithm),
        },
        _ => Err(AuthError::Malformed),
    }
}

/// The refusal a library error stands for.
fn refusal(kind: &ErrorKind) -> AuthError {
    let claim = |name: &str| match name {
        "exp" => "exp",
        "nbf" => "nbf",
        "aud" => "aud",
        "iss" => "iss",
        _ => "claim",
    };
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => AuthError::Algorithm,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAudience => AuthError::Audience,
        ErrorKind::InvalidIssuer => AuthError::Issuer,
        ErrorKind::MissingRequiredClaim(name) => match claim(name) {
            "aud" => AuthError::Audience,
            "iss" => AuthError::Issuer,
            name => AuthError::Claim(name),
        },
        ErrorKind::InvalidClaimFormat(name) => AuthError::NotANumber(claim(name)),
        _ => AuthError::Malformed,
    }
}

/// A NumericDate as unix seconds: a non-negative integer, or a fraction rounded.
fn seconds(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64)
            .map(|f| f.round() as u64)
    })
}

/// The claims an MSwoole token with the same identity would carry, in its order, and `exp`.
fn identity_claims(
    claims: &Map<String, Value>,
    now: OffsetDateTime,
    leeway_s: u64,
) -> Result<(Map<String, Value>, u64), AuthError> {
    let id = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => Value::from(sub.as_str()),
        Some(Value::Number(sub)) => Value::Number(sub.clone()),
        _ => return Err(AuthError::Claim("sub")),
    };
    let text = |name: &'static str| match claims.get(name) {
        Some(Value::String(text)) => Ok(Value::from(text.as_str())),
        _ => Err(AuthError::Claim(name)),
    };
    let code = match claims.get("code") {
        Some(code @ (Value::String(_) | Value::Number(_))) => code.clone(),
        _ => return Err(AuthError::Claim("code")),
    };
    let exp = claims
        .get("exp")
        .and_then(seconds)
        .ok_or(AuthError::NotANumber("exp"))?;
    let mut identity = Map::new();
    identity.insert("id".into(), id);
    identity.insert("type".into(), text("type")?);
    identity.insert("code".into(), code);
    identity.insert("nickname".into(), text("nickname")?);
    if let Some(iat) = claims.get("iat") {
        let iat = seconds(iat).ok_or(AuthError::NotANumber("iat"))?;
        let now = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        if iat > now.saturating_add(leeway_s) {
            return Err(AuthError::IssuedInTheFuture);
        }
        identity.insert("ctime".into(), Value::from(iat));
    }
    Ok((identity, exp))
}

/// What a JWT is signed with (`mswoole token --jwt`).
pub enum SigningKey<'a> {
    /// HS256 with this secret.
    Hs256(&'a str),
    /// RS256 with the RSA private key in this PEM text.
    Rs256(&'a [u8]),
}

/// Signs `claims` into a JWT, for tests, demos and backends that shell out.
pub fn sign(claims: &Value, key: SigningKey<'_>) -> Result<String, String> {
    install_crypto();
    let (algorithm, key) = match key {
        SigningKey::Hs256(secret) => (
            Algorithm::HS256,
            EncodingKey::from_secret(secret.as_bytes()),
        ),
        SigningKey::Rs256(pem) => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem)
                .map_err(|error| format!("not an RSA private key: {error}"))?,
        ),
    };
    jsonwebtoken::encode(&Header::new(algorithm), claims, &key)
        .map_err(|error| format!("cannot sign: {error}"))
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use serde_json::json;

    use super::*;

    const KEY: &str = "a-test-secret-of-32-bytes-or-more";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn keys(toml: &str) -> JwtKeys {
        let config = crate::config::Config::parse(toml, std::path::Path::new("/"))
            .expect("a valid test config");
        JwtKeys::new(&config.auth.jwt).expect("[auth.jwt] has a key")
    }

    fn hs256() -> JwtKeys {
        keys(&format!("[auth.jwt]\nhs256_key = \"{KEY}\""))
    }

    fn claims(extra: Value) -> Value {
        let mut claims = json!({
            "sub": 42, "type": "wechatUser", "code": "room-9", "nickname": "bob",
            "exp": now() + 60, "iat": now(),
        });
        if let (Value::Object(claims), Value::Object(extra)) = (&mut claims, extra) {
            for (name, value) in extra {
                match value {
                    Value::Null => claims.shift_remove(&name),
                    value => claims.insert(name, value),
                };
            }
        }
        claims
    }

    fn signed(claims: &Value) -> String {
        sign(claims, SigningKey::Hs256(KEY)).expect("signed")
    }

    fn verify(keys: &JwtKeys, token: &str) -> Result<(Map<String, Value>, u64), AuthError> {
        keys.verify(token, OffsetDateTime::now_utc())
    }

    #[test]
    fn a_jwt_yields_the_claims_an_mswoole_token_would() {
        let iat = now();
        let token = signed(&claims(json!({"iat": iat, "aud": "x", "info": {"a": 1}})));
        let (identity, exp) = verify(&hs256(), &token).expect("accepted");
        assert_eq!(
            Value::Object(identity),
            json!({"id": 42, "type": "wechatUser", "code": "room-9", "nickname": "bob", "ctime": iat})
        );
        assert_eq!(exp, iat + 60);
        let (identity, _) = verify(
            &hs256(),
            &signed(&claims(json!({"sub": "w-7", "iat": null}))),
        )
        .expect("accepted");
        assert_eq!(identity.get("id"), Some(&json!("w-7")));
        assert_eq!(identity.get("ctime"), None);
    }

    /// CVE-2026-25537: before jsonwebtoken 10.3 a string `exp` or `nbf` skipped the time check.
    #[test]
    fn a_string_exp_or_nbf_is_refused() {
        let far = (now() + 3600).to_string();
        let token = signed(&claims(json!({"exp": far})));
        assert_eq!(
            verify(&hs256(), &token).err(),
            Some(AuthError::Claim("exp"))
        );
        let token = signed(&claims(json!({"nbf": far})));
        assert_eq!(
            verify(&hs256(), &token).err(),
            Some(AuthError::NotANumber("nbf"))
        );
        // Past and as strings: a library that skipped the check would accept both.
        let past = (now() - 3600).to_string();
        for name in ["exp", "nbf"] {
            let token = signed(&claims(json!({ name: past })));
            assert!(verify(&hs256(), &token).is_err(), "{name}: {past:?}");
        }
        let token = signed(&claims(json!({"iat": "0"})));
        assert_eq!(
            verify(&hs256(), &token).err(),
            Some(AuthError::NotANumber("iat"))
        );
    }

    #[test]
    fn each_refusal_names_its_reason() {
        let keys = hs256();
        let refused = |extra: Value| verify(&keys, &signed(&claims(extra))).err();
        assert_eq!(refused(json!({"exp": now() - 6})), Some(AuthError::Expired));
        assert_eq!(
            refused(json!({"exp": now() - 3})),
            None,
            "within the leeway"
        );
        assert_eq!(
            refused(json!({"nbf": now() + 60})),
            Some(AuthError::NotYetValid)
        );
        assert_eq!(
            refused(json!({"nbf": now() + 3})),
            None,
            "within the leeway"
        );
        assert_eq!(
            refused(json!({"iat": now() + 60})),
            Some(AuthError::IssuedInTheFuture)
        );
        assert_eq!(refused(json!({"exp": null})), Some(AuthError::Claim("exp")));
        assert_eq!(refused(json!({"exp": -5})), Some(AuthError::Claim("exp")));
        for name in ["sub", "type", "code", "nickname"] {
            assert_eq!(
                refused(json!({ name: null })),
                Some(AuthError::Claim(name)),
                "{name}"
            );
            assert_eq!(
                refused(json!({ name: true })),
                Some(AuthError::Claim(name)),
                "{name}"
            );
        }
        assert_eq!(refused(json!({"sub": ""})), Some(AuthError::Claim("sub")));
        let other = sign(&claims(json!({})), SigningKey::Hs256("another-key")).expect("signed");
        assert_eq!(verify(&keys, &other).err(), Some(AuthError::BadSignature));
        assert_eq!(verify(&keys, "x.y.z").err(), Some(AuthError::Malformed));
    }

    #[test]
    fn alg_none_and_unconfigured_algorithms_are_refused() {
        let keys = hs256();
        let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let body = part(&claims(json!({})));
        for alg in ["none", "None", "HS512", "RS256", "ES256"] {
            let header = part(&json!({"alg": alg, "typ": "JWT"}));
            let token = format!("{header}.{body}.");
            assert_eq!(
                verify(&keys, &token).err(),
                Some(AuthError::Algorithm),
                "{alg}"
            );
            // With an HS256 signature under the right key, too.
            let signed = signed(&claims(json!({})));
            let signature = signed.rsplit('.').next().unwrap_or_default();
            let token = format!("{header}.{body}.{signature}");
            assert_eq!(
                verify(&keys, &token).err(),
                Some(AuthError::Algorithm),
                "{alg}"
            );
        }
        let header = part(&json!({"typ": "JWT"}));
        assert_eq!(
            verify(&keys, &format!("{header}.{body}.")).err(),
            Some(AuthError::Algorithm)
        );
    }

    #[test]
    fn aud_and_iss_are_checked_only_when_set() {
        let token = signed(&claims(json!({"aud": "other", "iss": "other"})));
        assert!(verify(&hs256(), &token).is_ok(), "neither is set");
        let checked = keys(&format!(
            "[auth.jwt]\nhs256_key = \"{KEY}\"\naudience = \"live\"\nissuer = \"backend\""
        ));
        let refused = |extra: Value| verify(&checked, &signed(&claims(extra))).err();
        assert_eq!(refused(json!({"aud": "live", "iss": "backend"})), None);
        assert_eq!(
            refused(json!({"aud": ["x", "live"], "iss": "backend"})),
            None
        );
        assert_eq!(
            refused(json!({"aud": "other", "iss": "backend"})),
            Some(AuthError::Audience)
        );
        assert_eq!(
            refused(json!({"iss": "backend"})),
            Some(AuthError::Audience)
        );
        assert_eq!(
            refused(json!({"aud": "live", "iss": "other"})),
            Some(AuthError::Issuer)
        );
        assert_eq!(refused(json!({"aud": "live"})), Some(AuthError::Issuer));
    }

    #[test]
    fn the_previous_hs256_key_holds_until_its_date() {
        // An hour from now, in whole seconds (RFC 3339 as the config has it).
        let until = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("0 ns")
            + time::Duration::HOUR;
        let text = until
            .format(&time::format_description::well_known::Rfc3339)
            .expect("formatted");
        let keys_with = keys;
        let keys = keys(&format!(
            "[auth.jwt]\nhs256_key = \"{KEY}\"\nprevious_hs256_key = \"old-secret\"\n\
             previous_until = \"{text}\""
        ));
        let just_before = until - time::Duration::SECOND;
        let old = sign(&claims(json!({})), SigningKey::Hs256("old-secret")).expect("signed");
        let new = signed(&claims(json!({})));
        assert!(keys.verify(&old, just_before).is_ok());
        assert_eq!(
            keys.verify(&old, until).err(),
            Some(AuthError::BadSignature)
        );
        assert!(keys.verify(&new, until).is_ok());
        // Moving to RS256: no current HS256 key, the previous one until its date.
        let moving = keys_with(&format!(
            "[auth.jwt]\nprevious_hs256_key = \"old-secret\"\nprevious_until = \"{text}\""
        ));
        assert!(moving.verify(&old, just_before).is_ok());
        // After it HS256 has no key at all.
        assert_eq!(moving.verify(&old, until).err(), Some(AuthError::Algorithm));
        assert_eq!(
            moving.verify(&new, just_before).err(),
            Some(AuthError::BadSignature)
        );
        // An expired token under the current key is not tried with the previous one.
        let expired = signed(&claims(json!({"exp": now() - 60})));
        assert_eq!(
            keys.verify(&expired, just_before).err(),
            Some(AuthError::Expired)
        );
    }

    mod properties {
        //! Whatever arrives in `auth=` with two dots, the check ends in a refusal or an
        //! identity with an id: never a panic.
        use proptest::prelude::*;

        use super::*;

        /// Three base64url parts of any JSON-ish text, and plain text with dots.
        fn token() -> impl Strategy<Value = String> {
            let part = prop_oneof![
                "[ -~]{0,40}".prop_map(|text| URL_SAFE_NO_PAD.encode(text)),
                Just(URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#)),
                Just(URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#)),
                "[A-Za-z0-9_-]{0,20}",
            ];
            prop_oneof![
                (part.clone(), part.clone(), part).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
                "[ -~]{0,20}\\.[ -~]{0,20}\\.[ -~]{0,20}",
            ]
        }

        proptest! {
            #[test]
            fn any_token_is_refused_or_has_an_id(token in token()) {
                if let Ok((claims, _)) = verify(&hs256(), &token) {
                    prop_assert!(matches!(claims.get("id"), Some(Value::Number(_) | Value::String(_))));
                }
            }

            #[test]
            fn a_changed_character_is_refused(index in any::<prop::sample::Index>(), with in "[A-Za-z0-9_-]") {
                let token = signed(&claims(json!({})));
                let at = index.index(token.len());
                let mut changed = token.clone();
                changed.replace_range(at..=at, &with);
                // The signature's last character included: its unused bits must be zero.
                if changed != token {
                    prop_assert!(verify(&hs256(), &changed).is_err(), "{}", changed);
                }
            }
        }
    }
}
