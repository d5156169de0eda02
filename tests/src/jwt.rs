//! JSON Web Tokens made the way a backend in any language makes them, without the host's
//! library: header and claims are base64url JSON, the signature comes from `openssl`
//! (HMAC-SHA256, or RSA PKCS#1 v1.5 with SHA-256 under a key pair the test generates).
//! So a test can sign anything — a string `exp`, `alg: none`, a foreign algorithm — and
//! what the host accepts is checked against an independent implementation.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};

use crate::now;

/// An RSA key pair in PEM files, made by `openssl` for one test.
#[derive(Debug, Clone)]
pub struct RsaKeys {
    /// The private key (PKCS#8 PEM): what a backend signs with.
    pub private: PathBuf,
    /// The public key (SPKI PEM): what `auth.jwt.rs256_public_key_file` names.
    pub public: PathBuf,
}

impl RsaKeys {
    /// Generates a 2048-bit pair as `<name>.private.pem` and `<name>.public.pem` in `dir`.
    pub fn generate(dir: &Path, name: &str) -> RsaKeys {
        let keys = RsaKeys {
            private: dir.join(format!("{name}.private.pem")),
            public: dir.join(format!("{name}.public.pem")),
        };
        let private = path_text(&keys.private);
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                private,
            ],
            b"",
        );
        let public = path_text(&keys.public);
        openssl(&["pkey", "-pubout", "-in", private, "-out", public], b"");
        keys
    }
}

fn path_text(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Runs `openssl <args>` with `input` on stdin; returns stdout.
fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run openssl (tests/run.sh installs it): {error}"));
    let mut stdin = child.stdin.take().expect("openssl's stdin");
    stdin.write_all(input).expect("openssl reads its input");
    drop(stdin);
    let output = child.wait_with_output().expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// How a token is signed.
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    /// HMAC-SHA256 with this secret (`alg` HS256).
    Hs256(&'a str),
    /// RSA SHA-256 with this private key (`alg` RS256).
    Rs256(&'a Path),
    /// No signature at all (`alg` none).
    Unsigned,
}

impl Signer<'_> {
    /// The `alg` this signer writes in the header.
    fn alg(&self) -> &'static str {
        match self {
            Signer::Hs256(_) => "HS256",
            Signer::Rs256(_) => "RS256",
            Signer::Unsigned => "none",
        }
    }

    /// The signature of `message`.
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Signer::Hs256(secret) => {
                openssl(&["dgst", "-sha256", "-binary", "-hmac", secret], message)
            }
            Signer::Rs256(private) => openssl(
                &["dgst", "-sha256", "-binary", "-sign", path_text(private)],
                message,
            ),
            Signer::Unsigned => Vec::new(),
        }
    }
}

/// A JWT of `claims` with `header` (its `alg` as given), signed by `signer`.
pub fn jwt_with_header(header: &Value, claims: &Value, signer: Signer<'_>) -> String {
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let message = format!("{}.{}", part(header), part(claims));
    let signature = URL_SAFE_NO_PAD.encode(signer.sign(message.as_bytes()));
    format!("{message}.{signature}")
}

/// A JWT of `claims` signed by `signer`, with the header it implies.
pub fn jwt(claims: &Value, signer: Signer<'_>) -> String {
    jwt_with_header(&json!({"alg": signer.alg(), "typ": "JWT"}), claims, signer)
}

/// The claims a backend would issue for a user, valid for five minutes from now; `extra`
/// adds or replaces claims, and a `null` in it removes one.
pub fn claims(sub: Value, kind: &str, code: &str, nickname: &str, extra: Value) -> Value {
    let mut claims = json!({
        "sub": sub, "type": kind, "code": code, "nickname": nickname,
        "iat": now(), "exp": now() + 300,
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
