//! README.md "Tokens and key rotation": a previous key is accepted until its date and
//! refused after, and a reload (`mswoole reload`, SIGHUP, `POST /api/reload`) swaps the
//! keys for new handshakes while every open connection stays.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mswoole_tests::{
    http_request, json,
    jwt::{claims, jwt, Signer},
    now, rfc3339, Client, Config, TestHost, Token, Value, RECV_TIMEOUT,
};

/// A user token of each kind under an MSwoole key and an HS256 key. The MSwoole keys differ
/// in more than the lowest bit of a byte: DES ignores that bit, so `key-b` and `key-c`
/// would be one key.
fn tokens(mswoole_key: &str, hs256_key: &str) -> [String; 2] {
    let user = claims(json!(5), "wechatUser", "demo", "eve", json!({}));
    [
        Token::wechat_user("5").key(mswoole_key).mint(),
        jwt(&user, Signer::Hs256(hs256_key)),
    ]
}

/// The config a test host runs with: the test base plus `toml`.
fn config(toml: &str) -> String {
    let mut config = Config::base();
    config.merge(toml);
    config.render()
}

/// `[auth] key` and `[auth.jwt] hs256_key`.
fn keys(mswoole_key: &str, hs256_key: &str) -> String {
    format!("[auth]\nkey = \"{mswoole_key}\"\n[auth.jwt]\nhs256_key = \"{hs256_key}\"")
}

async fn assert_accepted(host: &TestHost, token: &str, what: &str) -> Client {
    match host.try_connect(&format!("/live?auth={token}")).await {
        Ok(client) => client,
        Err(refused) => panic!("{what} was refused: {refused:?}"),
    }
}

async fn assert_refused(host: &TestHost, token: &str, what: &str) {
    match host.try_connect(&format!("/live?auth={token}")).await {
        Ok(_) => panic!("{what} was accepted"),
        Err(refused) => {
            assert_eq!(refused.status, 403, "{what}: {refused:?}");
            assert_eq!(refused.header("message"), Some("error auth"), "{what}");
        }
    }
}

/// Each held connection still answers.
async fn assert_still_open(held: &mut [Client]) {
    for client in held {
        assert_eq!(client.echo(json!({"n": 1})).await["n"], json!(1));
    }
}

/// Waits until the wall clock reaches unix second `until`: the moment itself, not a
/// condition standing for it.
async fn wait_until(until: i64) {
    let target = UNIX_EPOCH + Duration::from_secs(u64::try_from(until).expect("after 1970"));
    if let Ok(left) = target.duration_since(SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
}

#[tokio::test]
async fn previous_keys_are_accepted_until_their_date_and_refused_after() {
    let until = now() + 6;
    let host = TestHost::start(&format!(
        "{}\n[auth]\nprevious_key = \"old-mswoole-key\"\nprevious_key_until = {}\n\
         [auth.jwt]\nprevious_hs256_key = \"old-hs256-key\"\nprevious_until = \"{}\"",
        keys("new-mswoole-key", "new-hs256-key"),
        rfc3339(until),
        rfc3339(until),
    ))
    .await;
    assert!(
        now() < until - 1,
        "the host took until previous_until to start: nothing left to test"
    );
    let old = tokens("old-mswoole-key", "old-hs256-key");
    let new = tokens("new-mswoole-key", "new-hs256-key");
    let mut held = Vec::new();
    for (token, kind) in old.iter().zip(["MSwoole", "JWT"]) {
        held.push(
            assert_accepted(
                &host,
                token,
                &format!("an old {kind} token before the date"),
            )
            .await,
        );
    }
    for token in &new {
        assert_accepted(&host, token, "a new token").await;
    }

    wait_until(until).await;
    for (token, kind) in old.iter().zip(["MSwoole", "JWT"]) {
        assert_refused(&host, token, &format!("an old {kind} token after the date")).await;
    }
    for token in &new {
        assert_accepted(&host, token, "a new token after the date").await;
    }
    // Nothing was restarted or closed: the connections made under the old keys go on.
    assert_still_open(&mut held).await;
}

#[tokio::test]
async fn a_reload_swaps_the_keys_and_keeps_every_connection() {
    let host = TestHost::start(&keys("mswoole-alpha", "hs256-key-a")).await;
    let a = tokens("mswoole-alpha", "hs256-key-a");
    let mut held = Vec::new();
    for token in &a {
        held.push(assert_accepted(&host, token, "a key-a token").await);
    }

    // `mswoole reload` picks up new keys.
    host.dir()
        .write_config(&config(&keys("mswoole-bravo", "hs256-key-b")));
    let reload = host.console("reload", &[]);
    reload.assert_success();
    assert!(reload.stdout.contains(r#""reloaded":true"#), "{reload:?}");
    wait_for_lines(&host, "token keys re-read", 1).await;
    let b = tokens("mswoole-bravo", "hs256-key-b");
    for token in &b {
        assert_accepted(&host, token, "a key-b token after mswoole reload").await;
    }
    for token in &a {
        assert_refused(&host, token, "a key-a token after mswoole reload").await;
    }
    assert_still_open(&mut held).await;

    // SIGHUP does the same.
    host.dir()
        .write_config(&config(&keys("mswoole-charlie", "hs256-key-c")));
    host.signal("HUP");
    wait_for_lines(&host, "token keys re-read", 2).await;
    for token in &tokens("mswoole-charlie", "hs256-key-c") {
        assert_accepted(&host, token, "a key-c token after SIGHUP").await;
    }
    for token in &b {
        assert_refused(&host, token, "a key-b token after SIGHUP").await;
    }

    // So does the HTTP API; here the new config rotates: key d, with key c until tomorrow.
    host.dir().write_config(&config(&format!(
        "{}\n[auth]\nprevious_key = \"mswoole-charlie\"\nprevious_key_until = {tomorrow}\n\
         [auth.jwt]\nprevious_hs256_key = \"hs256-key-c\"\nprevious_until = {tomorrow}",
        keys("mswoole-delta", "hs256-key-d"),
        tomorrow = rfc3339(now() + 86_400),
    )));
    let answer = post_reload(&host).await;
    assert_eq!(answer["param"]["keys"]["reloaded"], json!(true), "{answer}");
    for token in tokens("mswoole-charlie", "hs256-key-c")
        .iter()
        .chain(&tokens("mswoole-delta", "hs256-key-d"))
    {
        assert_accepted(&host, token, "a key-c or key-d token while rotating").await;
    }
    assert_still_open(&mut held).await;
}

/// Waits until the host printed `count` lines containing `text`.
async fn wait_for_lines(host: &TestHost, text: &str, count: usize) {
    let started = Instant::now();
    while host
        .output()
        .lines()
        .filter(|line| line.contains(text))
        .count()
        < count
    {
        assert!(
            started.elapsed() < RECV_TIMEOUT,
            "fewer than {count} lines with {text:?} within {RECV_TIMEOUT:?}:\n{}",
            host.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `POST /api/reload`'s envelope.
async fn post_reload(host: &TestHost) -> Value {
    let reply = http_request(host.manager, "POST", "/api/reload", &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[tokio::test]
async fn a_config_that_does_not_load_keeps_the_keys_and_says_why() {
    let host = TestHost::start(&keys("mswoole-alpha", "hs256-key-a")).await;
    let a = tokens("mswoole-alpha", "hs256-key-a");
    let mut held = vec![assert_accepted(&host, &a[0], "a key-a token").await];
    for (toml, says) in [
        (
            format!(
                "{}\n[auth.jwt]\nprevious_hs256_key = \"hs256-key-a\"",
                keys("mswoole-bravo", "hs256-key-b")
            ),
            "auth.jwt.previous_hs256_key needs auth.jwt.previous_until",
        ),
        (
            format!(
                "{}\n[auth]\nprevious_key = \"mswoole-alpha\"\nprevious_key_until = \"friday\"",
                keys("mswoole-bravo", "hs256-key-b")
            ),
            "auth.previous_key_until: `friday` is not an RFC 3339 date",
        ),
        (
            format!(
                "{}\n[auth.jwt]\nrs256_public_key_file = \"keys/missing.pem\"",
                keys("mswoole-bravo", "hs256-key-b")
            ),
            "auth.jwt.rs256_public_key_file: ",
        ),
    ] {
        host.dir().write_config(&config(&toml));
        let mark = host.output().len();
        let answer = post_reload(&host).await;
        let error = answer["param"]["keys"]["error"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            answer["param"]["keys"]["reloaded"],
            json!(false),
            "{answer}"
        );
        assert!(error.contains(says), "{says}: {answer}");
        host.wait_for_line_after(mark, "saying the keys were kept", |line| {
            line.contains("token keys kept") && line.contains(says)
        })
        .await;
        // The console reads the same file first (for the manager's address): it stops there.
        let console = host.console("reload", &[]);
        let reason = console.assert_failure_one_line();
        assert!(reason.contains(says), "{reason}");
        for token in &a {
            assert_accepted(&host, token, "a key-a token after a bad reload").await;
        }
        for token in &tokens("mswoole-bravo", "hs256-key-b") {
            assert_refused(&host, token, "a key-b token from a file that did not load").await;
        }
    }
    let missing = host.dir().root().join("keys/missing.pem");
    let answer = post_reload(&host).await;
    let error = answer["param"]["keys"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains(&missing.display().to_string()),
        "names the file: {error}"
    );
    assert_still_open(&mut held).await;
}
