//! docs/PROTOCOL.md "Messages and routing": what the host sets in every message (`fd`,
//! `code`, `auth`) and how it escapes strings, seen through `index.index.echo`
//! (docs/PROTOCOL.md, "Index actions").

use mswoole_tests::{json, TestHost, Token};

#[tokio::test]
async fn the_host_sets_fd_code_and_auth_over_what_the_client_sent() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    let echoed = client
        .echo(json!({"fd": "forged", "code": "evil", "auth": {"id": 999, "type": "wall"}, "n": 1}))
        .await;
    let fd = echoed["fd"].as_str().expect("fd is a string");
    assert_ne!(fd, "forged");
    assert!(!fd.is_empty());
    assert_eq!(echoed["code"], json!("demo"));
    assert_eq!(
        echoed["auth"],
        json!({"id": 1, "type": "wechatUser", "code": "demo", "nickname": "alice"})
    );
    assert_eq!(echoed["n"], json!(1));
    assert_eq!(echoed["method"], json!("index.index.echo"));
    // The same fd on every message of a connection, another for another connection.
    assert_eq!(client.fd().await, fd);
    let mut other = host.connect_user().await;
    assert_ne!(other.fd().await, fd);
}

#[tokio::test]
async fn string_values_are_html_escaped_recursively_keys_and_numbers_are_not() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    let echoed = client
        .echo(json!({
            "say": "<b>&\"'",
            "<key>": "plain",
            "nested": {"<k>": ["<i>", 5, 1.5, true, null, {"deep": "a&b"}]},
            "count": 7,
        }))
        .await;
    assert_eq!(echoed["say"], json!("&lt;b&gt;&amp;&quot;&#039;"));
    assert_eq!(echoed["<key>"], json!("plain"));
    assert_eq!(
        echoed["nested"],
        json!({"<k>": ["&lt;i&gt;", 5, 1.5, true, null, {"deep": "a&amp;b"}]})
    );
    assert_eq!(echoed["count"], json!(7));
}

#[tokio::test]
async fn fd_and_code_are_not_escaped_but_auth_is() {
    let host = TestHost::start("").await;
    let token = Token::new("8", "wechatUser", "a&b", "<x>").mint();
    let mut client = host.connect(&format!("/live?auth={token}")).await;
    let echoed = client.echo(json!({})).await;
    assert_eq!(echoed["code"], json!("a&b"));
    assert_eq!(
        echoed["auth"],
        json!({"id": 8, "type": "wechatUser", "code": "a&amp;b", "nickname": "&lt;x&gt;"})
    );
}

#[tokio::test]
async fn with_escape_html_off_nothing_is_escaped() {
    let host = TestHost::start("[protocol]\nescape_html = false").await;
    let token = Token::new("8", "wechatUser", "a&b", "<x>").mint();
    let mut client = host.connect(&format!("/live?auth={token}")).await;
    let echoed = client
        .echo(json!({"say": "<b>&\"'", "list": ["<i>"]}))
        .await;
    assert_eq!(echoed["say"], json!("<b>&\"'"));
    assert_eq!(echoed["list"], json!(["<i>"]));
    assert_eq!(echoed["code"], json!("a&b"));
    assert_eq!(
        echoed["auth"],
        json!({"id": 8, "type": "wechatUser", "code": "a&b", "nickname": "<x>"})
    );
}
