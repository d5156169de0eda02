//! docs/PROTOCOL.md "JWT": JSON Web Tokens at the handshake, beside MSwoole's token. The
//! tokens are signed with `openssl` as a backend would sign them (tests/src/jwt.rs), or
//! minted by `mswoole token --jwt`; every refusal is the 403 an MSwoole token gets.

use mswoole_tests::{
    json,
    jwt::{claims, jwt, jwt_with_header, RsaKeys, Signer},
    now, HostDir, RedisServer, TestHost, Token, Value,
};

const HS256_KEY: &str = "hs256-test-secret-0123456789abcdef";

/// A host directory with an RSA key pair in `keys/` and `[auth.jwt]` as given, plus
/// `rs256_public_key_file = "keys/jwt.public.pem"` when `rs256` is set.
fn prepare(extra_toml: &str, rs256: bool) -> (HostDir, RsaKeys) {
    let mut toml = extra_toml.to_string();
    if rs256 {
        toml.push_str("\n[auth.jwt]\nrs256_public_key_file = \"keys/jwt.public.pem\"");
    }
    let dir = TestHost::builder().config(&toml).prepare();
    let keys_dir = dir.root().join("keys");
    std::fs::create_dir_all(&keys_dir).expect("keys/ is created");
    let keys = RsaKeys::generate(&keys_dir, "jwt");
    (dir, keys)
}

/// A user's claims (sub 42, wechatUser in room-9, bob) with `extra` applied.
fn bob(extra: Value) -> Value {
    claims(json!(42), "wechatUser", "room-9", "bob", extra)
}

/// Asserts the handshake with `token` is refused with 403 `message: error auth`, and that
/// the host logged the refusal with `reason` in it.
async fn assert_refused(host: &TestHost, token: &str, reason: &str) {
    let mark = host.output().len();
    match host.try_connect(&format!("/live?auth={token}")).await {
        Ok(_) => panic!("a token for {reason:?} was accepted: {token}"),
        Err(refused) => {
            assert_eq!(refused.status, 403, "{reason}: {refused:?}");
            assert_eq!(refused.header("message"), Some("error auth"), "{reason}");
        }
    }
    let line = host
        .wait_for_line_after(mark, "saying the handshake was refused", |line| {
            line.contains("handshake refused")
        })
        .await;
    assert!(line.contains(reason), "expected {reason:?} in: {line}");
}

/// The `auth` a connection with `token` shows modules (through Index's echo).
async fn auth_of(host: &TestHost, token: &str) -> Value {
    let mut client = host.connect(&format!("/live?auth={token}")).await;
    client.echo(json!({})).await["auth"].clone()
}

#[tokio::test]
async fn hs256_and_rs256_tokens_give_the_identity_an_mswoole_token_gives() {
    let (dir, keys) = prepare(&format!("[auth.jwt]\nhs256_key = \"{HS256_KEY}\""), true);
    let host = dir.start().await;
    let mswoole = Token::new("42", "wechatUser", "room-9", "bob").mint();
    let expected = json!({"id": 42, "type": "wechatUser", "code": "room-9", "nickname": "bob"});
    assert_eq!(auth_of(&host, &mswoole).await, expected);
    let hs256 = jwt(&bob(json!({})), Signer::Hs256(HS256_KEY));
    assert_eq!(auth_of(&host, &hs256).await, expected, "HS256");
    let rs256 = jwt(&bob(json!({})), Signer::Rs256(&keys.private));
    assert_eq!(auth_of(&host, &rs256).await, expected, "RS256");
    // A string sub stays a string, as an MSwoole token's id does; other claims are dropped.
    let wall = claims(
        json!("w-7"),
        "wall",
        "demo",
        "big screen",
        json!({"info": {"x": 1}}),
    );
    let rs256 = jwt(&wall, Signer::Rs256(&keys.private));
    assert_eq!(
        auth_of(&host, &rs256).await,
        json!({"id": "w-7", "type": "wall", "code": "demo", "nickname": "big screen"})
    );
    // The message gets the room code from the token, as with an MSwoole token.
    let mut client = host.connect(&format!("/live?auth={hs256}")).await;
    assert_eq!(client.echo(json!({})).await["code"], json!("room-9"));

    // `mswoole token --jwt` mints both kinds with this config.
    let config = host.dir().config_path();
    let minted = Token::new("42", "wechatUser", "room-9", "bob")
        .config(&config)
        .jwt()
        .mint();
    assert_eq!(auth_of(&host, &minted).await, expected, "minted HS256");
    let minted = Token::new("42", "wechatUser", "room-9", "bob")
        .config(&config)
        .rs256(&keys.private)
        .mint();
    assert_eq!(auth_of(&host, &minted).await, expected, "minted RS256");
}

#[tokio::test]
async fn the_registry_records_a_jwt_identity_as_it_records_an_mswoole_token() {
    let redis = RedisServer::start();
    let host = TestHost::start(&format!(
        "{}\n[auth.jwt]\nhs256_key = \"{HS256_KEY}\"",
        redis.registry_toml("node-a")
    ))
    .await;
    let issued = now() - 10;
    let mswoole = Token::new("w-7", "wall", "demo", "big screen")
        .ctime(issued)
        .mint();
    let wall = claims(
        json!("w-7"),
        "wall",
        "demo",
        "big screen",
        json!({"iat": issued}),
    );
    let hs256 = jwt(&wall, Signer::Hs256(HS256_KEY));
    let mut records = Vec::new();
    for token in [&mswoole, &hs256] {
        let mut client = host.connect(&format!("/live?auth={token}")).await;
        let fd = client.fd().await;
        records.push(redis.cli(&["HGET", "mswoole:WEBSOCKET_FDINFO", &fd]));
    }
    assert_eq!(
        records[0],
        format!(
            r#"{{"id":"w-7","type":"wall","code":"demo","nickname":"big screen","ctime":{issued}}}"#
        )
    );
    assert_eq!(records[1], records[0], "the JWT's record");
}

#[tokio::test]
async fn every_refusal_is_403_error_auth() {
    let (dir, keys) = prepare(&format!("[auth.jwt]\nhs256_key = \"{HS256_KEY}\""), false);
    let host = dir.start().await;
    let hs256 = |extra: Value| jwt(&bob(extra), Signer::Hs256(HS256_KEY));

    // Signatures and algorithms.
    let other_key = jwt(&bob(json!({})), Signer::Hs256("another-secret"));
    assert_refused(&host, &other_key, "signature does not verify").await;
    // The signature's first character changed (its last one may only carry padding bits).
    let valid = hs256(json!({}));
    let at = valid.rfind('.').expect("a JWT has dots") + 1;
    let swap = if valid[at..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    let tampered = format!("{}{swap}{}", &valid[..at], &valid[at + 1..]);
    assert_refused(&host, &tampered, "signature does not verify").await;
    let unsigned = jwt(&bob(json!({})), Signer::Unsigned);
    assert_refused(&host, &unsigned, "algorithm").await;
    // `none` with the HS256 signature still attached: the header decides, not the signature.
    let signature = hs256(json!({}))
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_string();
    let none_header = jwt_with_header(&json!({"alg": "none"}), &bob(json!({})), Signer::Unsigned);
    assert_refused(&host, &format!("{none_header}{signature}"), "algorithm").await;
    let rs256 = jwt(&bob(json!({})), Signer::Rs256(&keys.private));
    assert_refused(&host, &rs256, "algorithm").await;

    // CVE-2026-25537: `exp` and `nbf` as strings (far future, and past).
    let later = (now() + 3600).to_string();
    let earlier = (now() - 3600).to_string();
    assert_refused(&host, &hs256(json!({"exp": later})), "`exp`").await;
    assert_refused(&host, &hs256(json!({"exp": earlier})), "`exp`").await;
    assert_refused(&host, &hs256(json!({"nbf": later})), "`nbf` is not a").await;
    assert_refused(&host, &hs256(json!({"nbf": earlier})), "`nbf` is not a").await;
    assert_refused(&host, &hs256(json!({"iat": "0"})), "`iat` is not a").await;

    // Times, with the default 5 s leeway.
    assert_refused(&host, &hs256(json!({"exp": now() - 30})), "expired").await;
    auth_of(&host, &hs256(json!({"exp": now() - 1}))).await;
    assert_refused(&host, &hs256(json!({"nbf": now() + 60})), "not valid yet").await;
    auth_of(&host, &hs256(json!({"nbf": now() + 1}))).await;
    assert_refused(
        &host,
        &hs256(json!({"iat": now() + 60})),
        "iat is in the future",
    )
    .await;

    // Required claims.
    for name in ["exp", "sub", "type", "code", "nickname"] {
        let token = hs256(json!({ name: null }));
        assert_refused(&host, &token, &format!("`{name}`")).await;
    }
    assert_refused(&host, &hs256(json!({"sub": ""})), "`sub`").await;
    assert_refused(&host, &hs256(json!({"type": 1})), "`type`").await;

    // Not a JWT at all, and two dots with nothing in between.
    assert_refused(&host, "a.b.c", "not a well-formed JWT").await;
    assert_refused(&host, "..", "not a well-formed JWT").await;
    // An MSwoole token still works beside them.
    auth_of(&host, &Token::wechat_user("7").mint()).await;
}

#[tokio::test]
async fn a_jwt_is_refused_while_auth_jwt_has_no_key() {
    let host = TestHost::start("").await;
    let token = jwt(&bob(json!({})), Signer::Hs256(HS256_KEY));
    assert_refused(&host, &token, "[auth.jwt] has no key").await;
}

#[tokio::test]
async fn an_rs256_only_host_refuses_hs256_even_signed_with_its_public_key() {
    let (dir, keys) = prepare("", true);
    let host = dir.start().await;
    auth_of(&host, &jwt(&bob(json!({})), Signer::Rs256(&keys.private))).await;
    // The algorithm-confusion attack: HS256 with the (public) RSA key as the secret.
    let public = std::fs::read_to_string(&keys.public).expect("the public key");
    let confused = jwt(&bob(json!({})), Signer::Hs256(&public));
    assert_refused(&host, &confused, "algorithm").await;
    let other = RsaKeys::generate(host.dir().root(), "other");
    let foreign = jwt(&bob(json!({})), Signer::Rs256(&other.private));
    assert_refused(&host, &foreign, "signature does not verify").await;
}

#[tokio::test]
async fn audience_and_issuer_are_checked_when_set() {
    let host = TestHost::start(&format!(
        "[auth.jwt]\nhs256_key = \"{HS256_KEY}\"\naudience = \"live\"\nissuer = \"backend\""
    ))
    .await;
    let hs256 = |extra: Value| jwt(&bob(extra), Signer::Hs256(HS256_KEY));
    auth_of(&host, &hs256(json!({"aud": "live", "iss": "backend"}))).await;
    auth_of(
        &host,
        &hs256(json!({"aud": ["other", "live"], "iss": "backend"})),
    )
    .await;
    let wrong_aud = hs256(json!({"aud": "other", "iss": "backend"}));
    assert_refused(&host, &wrong_aud, "aud").await;
    assert_refused(&host, &hs256(json!({"iss": "backend"})), "aud").await;
    let wrong_iss = hs256(json!({"aud": "live", "iss": "other"}));
    assert_refused(&host, &wrong_iss, "iss").await;
    assert_refused(&host, &hs256(json!({"aud": "live"})), "iss").await;
    // `mswoole token --jwt` puts the configured aud and iss in.
    let minted = Token::new("42", "wechatUser", "room-9", "bob")
        .config(&host.dir().config_path())
        .jwt()
        .mint();
    auth_of(&host, &minted).await;
}

#[tokio::test]
async fn unset_audience_and_issuer_are_not_checked() {
    let host = TestHost::start(&format!("[auth.jwt]\nhs256_key = \"{HS256_KEY}\"")).await;
    let token = jwt(
        &bob(json!({"aud": "anyone", "iss": "anybody"})),
        Signer::Hs256(HS256_KEY),
    );
    auth_of(&host, &token).await;
}

#[test]
fn start_stops_on_an_unreadable_public_key_naming_the_key_and_the_file() {
    let dir = TestHost::builder()
        .config("[auth.jwt]\nrs256_public_key_file = \"keys/none.pem\"")
        .prepare();
    let exit = dir.start_expecting_exit();
    let reason = exit.assert_failure_one_line();
    let file = dir.root().join("keys/none.pem");
    assert!(
        reason.contains("auth.jwt.rs256_public_key_file")
            && reason.contains(&file.display().to_string()),
        "{reason}"
    );
}

#[tokio::test]
async fn a_short_hs256_key_is_warned_about() {
    let warns = |line: &str| line.contains("WARN") && line.contains("auth.jwt.hs256_key");
    let short = TestHost::start("[auth.jwt]\nhs256_key = \"short-secret\"").await;
    short
        .wait_for_line("warning about the short key", warns)
        .await;
    let long = TestHost::start(&format!("[auth.jwt]\nhs256_key = \"{HS256_KEY}\"")).await;
    // Both hosts started the same way; the long key's start-up is over once it is ready.
    long.connect(&format!(
        "/?auth={}",
        jwt(&bob(json!({})), Signer::Hs256(HS256_KEY))
    ))
    .await;
    let output = long.output();
    assert!(
        !output.lines().any(warns),
        "a 34-byte key was warned about:\n{output}"
    );
}
