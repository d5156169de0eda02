//! docs/PROTOCOL.md "Handshake" and "Tokens": who may upgrade, and the identity they get.

use mswoole_tests::{
    json, now, Client, TestHost, Token, VECTOR_CTIME, VECTOR_DES_CBC, VECTOR_DES_CBC_IV,
    VECTOR_LONG_KEY, VECTOR_NOT_JSON, VECTOR_WALL, VECTOR_WECHAT_USER,
};

/// Vector 1's identity as a module sees it (without `ctime`).
fn alice() -> serde_json::Value {
    json!({"id": 1, "type": "wechatUser", "code": "demo", "nickname": "alice"})
}

/// Asserts the handshake is refused with 403 and `message: error auth`.
async fn assert_refused(host: &TestHost, path_and_query: &str) {
    match host.try_connect(path_and_query).await {
        Ok(_) => panic!("{path_and_query} was upgraded, expected 403"),
        Err(refused) => {
            assert_eq!(refused.status, 403, "{path_and_query}: {refused:?}");
            assert_eq!(
                refused.header("message"),
                Some("error auth"),
                "{path_and_query}: {refused:?}"
            );
        }
    }
}

/// The auth a connection shows through echo.
async fn echoed_auth(client: &mut Client) -> serde_json::Value {
    client.echo(json!({})).await["auth"].clone()
}

#[tokio::test]
async fn the_vector_tokens_connect_on_any_path() {
    let host = TestHost::start("").await;
    let mut user = host
        .connect(&format!("/live?auth={VECTOR_WECHAT_USER}"))
        .await;
    assert_eq!(echoed_auth(&mut user).await, alice());
    let mut wall = host.connect(&format!("/?auth={VECTOR_WALL}")).await;
    assert_eq!(
        echoed_auth(&mut wall).await,
        json!({"id": "w-7", "type": "wall", "code": "demo", "nickname": "big screen"})
    );
}

#[test]
fn minted_tokens_with_ctime_reproduce_the_vectors() {
    let user = Token::new("1", "wechatUser", "demo", "alice")
        .ctime(VECTOR_CTIME as i64)
        .mint();
    assert_eq!(user, VECTOR_WECHAT_USER);
    let wall = Token::new("w-7", "wall", "demo", "big screen")
        .ctime(VECTOR_CTIME as i64)
        .mint();
    assert_eq!(wall, VECTOR_WALL);
}

#[tokio::test]
async fn a_minted_token_is_accepted() {
    let host = TestHost::start("").await;
    let token = Token::new("42", "wechatUser", "room-9", "bob").mint();
    let mut client = host.connect(&format!("/live?auth={token}")).await;
    let echoed = client.echo(json!({})).await;
    assert_eq!(
        echoed["auth"],
        json!({"id": 42, "type": "wechatUser", "code": "room-9", "nickname": "bob"})
    );
    assert_eq!(echoed["code"], json!("room-9"));
}

#[tokio::test]
async fn bad_tokens_are_refused_with_403_error_auth() {
    let host = TestHost::start("").await;
    let other_key = Token::wechat_user("7").key("not-the-configured-key").mint();
    for path in [
        "/".to_string(),
        "/live".to_string(),
        "/?auth=".to_string(),
        "/?auth=garbage".to_string(),
        "/?auth=%ZZ".to_string(),
        format!("/live?auth={other_key}"),
        format!("/live?auth={VECTOR_NOT_JSON}"),
    ] {
        assert_refused(&host, &path).await;
    }
    // Nothing of a refused handshake is registered.
    let status = host.manager(&json!({"method": "status"})).await;
    status.assert_is(200, "statusSuccess");
    assert_eq!(status.expect_param()["connections"], json!(0), "{status:?}");
}

#[tokio::test]
async fn a_percent_encoded_token_is_accepted() {
    let host = TestHost::start("").await;
    let encoded = VECTOR_WECHAT_USER.replace('*', "%2A").replace(':', "%3A");
    assert!(encoded.contains("%2A"), "the vector has a `*` to encode");
    let mut client = host.connect(&format!("/live?auth={encoded}")).await;
    assert_eq!(echoed_auth(&mut client).await["nickname"], json!("alice"));
}

#[tokio::test]
async fn another_configured_key_takes_its_own_tokens_only() {
    let host = TestHost::start("[auth]\nkey = \"another-key-0123\"").await;
    let token = Token::wechat_user("5").key("another-key-0123").mint();
    let mut client = host.connect(&format!("/live?auth={token}")).await;
    assert_eq!(echoed_auth(&mut client).await["id"], json!(5));
    assert_refused(&host, &format!("/live?auth={VECTOR_WECHAT_USER}")).await;
}

#[tokio::test]
async fn without_required_auth_a_tokenless_client_is_anonymous() {
    let host = TestHost::start("[auth]\nrequired = false").await;
    for path in ["/", "/live?auth="] {
        let mut client = host.connect(path).await;
        let echoed = client.echo(json!({})).await;
        let fd = echoed["fd"].as_str().expect("fd is a string").to_string();
        assert_eq!(
            echoed["auth"],
            json!({"id": fd, "type": "anonymous", "code": "", "nickname": ""}),
            "{path}"
        );
        assert_eq!(echoed["code"], json!(""), "{path}");
    }
}

#[tokio::test]
async fn without_required_auth_a_token_is_still_checked() {
    let host = TestHost::start("[auth]\nrequired = false").await;
    assert_refused(&host, "/?auth=garbage").await;
    assert_refused(&host, &format!("/?auth={VECTOR_NOT_JSON}")).await;
    let mut client = host.connect(&format!("/?auth={VECTOR_WECHAT_USER}")).await;
    assert_eq!(echoed_auth(&mut client).await["type"], json!("wechatUser"));
}

#[tokio::test]
async fn max_age_refuses_old_and_future_tokens() {
    let host = TestHost::start("[auth]\nmax_age_s = 60").await;
    assert_refused(&host, &format!("/live?auth={VECTOR_WECHAT_USER}")).await;
    let old = Token::wechat_user("3").ctime(now() - 3600).mint();
    assert_refused(&host, &format!("/live?auth={old}")).await;
    let future = Token::wechat_user("3").ctime(now() + 3600).mint();
    assert_refused(&host, &format!("/live?auth={future}")).await;

    let recent = Token::wechat_user("3").ctime(now() - 10).mint();
    host.connect(&format!("/live?auth={recent}")).await;
    let fresh = Token::wechat_user("3").mint();
    host.connect(&format!("/live?auth={fresh}")).await;
}

#[tokio::test]
async fn tokens_are_never_logged() {
    let host = TestHost::start("").await;
    let minted = Token::new("77", "wechatUser", "room", "carol").mint();
    let other_key = Token::wechat_user("78").key("some-other-key").mint();
    let mut user = host
        .connect(&format!("/live?auth={VECTOR_WECHAT_USER}"))
        .await;
    let mut wall = host.connect(&format!("/?auth={VECTOR_WALL}")).await;
    let mut carol = host.connect(&format!("/?auth={minted}")).await;
    assert_refused(&host, &format!("/?auth={VECTOR_NOT_JSON}")).await;
    assert_refused(&host, &format!("/?auth={other_key}")).await;
    for client in [&mut user, &mut wall, &mut carol] {
        client.echo(json!({})).await;
    }
    let printed = host.output();
    let logged = host.log_file();
    for token in [
        VECTOR_WECHAT_USER,
        VECTOR_WALL,
        VECTOR_NOT_JSON,
        &minted,
        &other_key,
    ] {
        assert!(!printed.contains(token), "a token was printed:\n{printed}");
        assert!(!logged.contains(token), "a token was logged:\n{logged}");
    }
}

#[tokio::test]
async fn the_default_key_on_a_public_address_is_warned_about() {
    let warns = |line: &str| line.contains("WARN") && line.to_lowercase().contains("key");
    let public = TestHost::start("[outside]\nhost = \"0.0.0.0\"").await;
    public
        .wait_for_line("warning about the default key", warns)
        .await;
    let loopback = TestHost::start("").await;
    let output = loopback.output();
    assert!(
        !output.lines().any(warns),
        "a loopback host warned about the key:\n{output}"
    );
}

#[tokio::test]
async fn a_key_longer_than_24_bytes_is_cut_to_24() {
    let host = TestHost::start("[auth]\nkey = \"this-key-is-longer-than-24-bytes\"").await;
    let mut client = host.connect(&format!("/live?auth={VECTOR_LONG_KEY}")).await;
    assert_eq!(echoed_auth(&mut client).await, alice());
    let minted = Token::new("1", "wechatUser", "demo", "alice")
        .config(&host.dir().config_path())
        .ctime(VECTOR_CTIME as i64)
        .mint();
    assert_eq!(minted, VECTOR_LONG_KEY);
}

#[tokio::test]
async fn des_cbc_tokens_are_accepted_when_configured() {
    let host = TestHost::start("[auth]\ncipher = \"des-cbc\"").await;
    let mut client = host.connect(&format!("/live?auth={VECTOR_DES_CBC}")).await;
    assert_eq!(echoed_auth(&mut client).await, alice());
    assert_refused(&host, &format!("/live?auth={VECTOR_WECHAT_USER}")).await;
    let minted = Token::new("1", "wechatUser", "demo", "alice")
        .config(&host.dir().config_path())
        .ctime(VECTOR_CTIME as i64)
        .mint();
    assert_eq!(minted, VECTOR_DES_CBC);
}

#[tokio::test]
async fn des_cbc_uses_the_configured_iv() {
    let host = TestHost::start("[auth]\ncipher = \"des-cbc\"\niv = \"12345678\"").await;
    let mut client = host
        .connect(&format!("/live?auth={VECTOR_DES_CBC_IV}"))
        .await;
    assert_eq!(echoed_auth(&mut client).await, alice());
    assert_refused(&host, &format!("/live?auth={VECTOR_DES_CBC}")).await;
}

#[tokio::test]
async fn a_missing_token_is_logged_as_missing() {
    let host = TestHost::start("").await;
    for path in ["/live", "/live?auth=", "/live?other=1"] {
        let mark = host.output().len();
        assert_refused(&host, path).await;
        let line = host
            .wait_for_line_after(mark, "saying the handshake was refused", |line| {
                line.contains("handshake refused")
            })
            .await;
        assert!(
            line.contains("missing") && !line.contains("base64"),
            "{path}: {line}"
        );
    }
    // A token that is there but broken is still named as such.
    let mark = host.output().len();
    assert_refused(&host, "/live?auth=@@@").await;
    let line = host
        .wait_for_line_after(mark, "saying the handshake was refused", |line| {
            line.contains("handshake refused")
        })
        .await;
    assert!(line.contains("base64"), "{line}");
}
