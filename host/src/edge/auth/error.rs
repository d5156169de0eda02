//! Why a token was refused.

use std::fmt;

/// Why a token was refused: logged, never sent (every refusal is the same 403). The text
/// never contains the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// The handshake carried no token (`auth=` absent or empty) while one is required.
    Missing,
    /// Not valid (token-alphabet) base64, or empty.
    Encoding,
    /// Wrong length, wrong key or bad padding.
    Decrypt,
    /// The plaintext is not JSON.
    NotJson,
    /// The plaintext is JSON but not an object.
    NotObject,
    /// `id` is absent or neither a number nor a string.
    MissingId,
    /// `ctime` is older than `auth.max_age_s`, or a JWT's `exp` (plus the leeway) has passed.
    Expired,
    /// `ctime` is more than five minutes ahead of this host's clock.
    FromTheFuture,
    /// `auth.max_age_s` is set but the token has no numeric `ctime`.
    MissingCtime,
    /// A JWT while `[auth.jwt]` has no key.
    JwtOff,
    /// Not three base64url parts with a JSON header and payload.
    Malformed,
    /// The header's `alg` is not one `[auth.jwt]` has a key for (`none` never is).
    Algorithm,
    /// The signature does not verify with the key for its algorithm.
    BadSignature,
    /// A required claim is absent, or of the wrong type (`sub`, `type`, `code`, `nickname`, `exp`).
    Claim(&'static str),
    /// A time claim (`exp`, `nbf`, `iat`) that is not a non-negative number.
    NotANumber(&'static str),
    /// `nbf` (minus the leeway) is still ahead.
    NotYetValid,
    /// `iat` is ahead of this host's clock by more than the leeway.
    IssuedInTheFuture,
    /// `aud` is absent or not `auth.jwt.audience`.
    Audience,
    /// `iss` is absent or not `auth.jwt.issuer`.
    Issuer,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Claim(name) => {
                return write!(f, "JWT claim `{name}` is missing or of the wrong type")
            }
            AuthError::NotANumber(name) => {
                return write!(f, "JWT claim `{name}` is not a non-negative number")
            }
            _ => {}
        }
        f.write_str(match self {
            AuthError::Missing => "no token: auth= is missing or empty",
            AuthError::Encoding => "token is not valid base64",
            AuthError::Decrypt => "token does not decrypt with the configured key",
            AuthError::NotJson => "token plaintext is not JSON",
            AuthError::NotObject => "token plaintext is not a JSON object",
            AuthError::MissingId => "token has no usable id",
            AuthError::Expired => "token has expired",
            AuthError::FromTheFuture => "token ctime is in the future",
            AuthError::MissingCtime => "token has no ctime",
            AuthError::JwtOff => "a JWT, but [auth.jwt] has no key",
            AuthError::Malformed => "token is not a well-formed JWT",
            AuthError::Algorithm => "JWT algorithm has no key in [auth.jwt]",
            AuthError::BadSignature => "JWT signature does not verify",
            AuthError::NotYetValid => "JWT is not valid yet (nbf)",
            AuthError::IssuedInTheFuture => "JWT iat is in the future",
            AuthError::Audience => "JWT aud is not auth.jwt.audience",
            AuthError::Issuer => "JWT iss is not auth.jwt.issuer",
            AuthError::Claim(_) | AuthError::NotANumber(_) => "",
        })
    }
}

impl std::error::Error for AuthError {}
