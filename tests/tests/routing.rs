//! docs/PROTOCOL.md "Messages and routing": `module.controller.action`, its short forms and its refusals.

use mswoole_tests::{json, Client, TestHost, Value, ACK, SUCCESS, VECTOR_WALL};

/// Sends `message`, expects the ack, returns the reply's text.
async fn reply_text(client: &mut Client, message: Value) -> String {
    client.send_json(&message).await;
    assert_eq!(client.recv_text().await, ACK, "ack for {message}");
    client.recv_text().await
}

/// Asserts `method` is answered with `status` and `event`.
async fn assert_routed(
    client: &mut Client,
    method: &str,
    status: u64,
    event: &str,
) -> mswoole_tests::Envelope {
    let reply = client.call(&json!({ "method": method })).await;
    assert_eq!(
        (reply.status(), reply.event()),
        (status, event),
        "reply to {method:?}: {reply:?}"
    );
    reply
}

#[tokio::test]
async fn every_spelling_of_the_default_reaches_index_index_index() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    for message in [
        json!({"method": "index.index.index"}),
        json!({"method": "index.index"}),
        json!({"method": "index"}),
        json!({}),
        json!({"say": "no method at all"}),
        json!({"method": ""}),
        json!({"method": "..."}),
        json!({"method": "."}),
        json!({"method": "InDeX.InDeX.InDeX"}),
        json!({"method": "INDEX"}),
        json!({"method": ".index.index.index."}),
        json!({"method": "..index.index.."}),
    ] {
        assert_eq!(
            reply_text(&mut client, message.clone()).await,
            SUCCESS,
            "reply to {message}"
        );
    }
}

#[tokio::test]
async fn short_forms_resolve_inside_the_index_module() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    assert_routed(&mut client, "echo", 200, "echo").await;
    assert_routed(&mut client, "index.echo", 200, "echo").await;
    assert_routed(&mut client, "Index.Echo", 200, "echo").await;
    let fallback = assert_routed(&mut client, "fallback.Zap", 200, "onMessage").await;
    assert_eq!(fallback.param(), Some(&json!("zap")));
}

#[tokio::test]
async fn an_unknown_module_or_controller_is_404_controller_not_found() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    for method in [
        "nope.index.index",
        "index.nope.index",
        "nope.index",
        "live.nope.join",
        "index.index.index.index",
    ] {
        assert_routed(&mut client, method, 404, "controllerNotFound").await;
    }
}

#[tokio::test]
async fn an_empty_part_between_dots_is_404_controller_not_found() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    for method in ["index..index", "index.index..index", "a.b.c.d.e"] {
        assert_routed(&mut client, method, 404, "controllerNotFound").await;
    }
}

#[tokio::test]
async fn an_unknown_action_of_index_index_is_405_method_not_found() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    for method in ["index.index.nope", "index.nope", "nope", "Index.Index.NOPE"] {
        assert_routed(&mut client, method, 405, "methodNotFound").await;
    }
}

#[tokio::test]
async fn an_unknown_action_of_a_fallback_controller_reaches_on_message() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    let reply = assert_routed(&mut client, "index.fallback.SomeThing", 200, "onMessage").await;
    assert_eq!(reply.param(), Some(&json!("something")));
    // A declared action of that controller is served as itself.
    assert_routed(&mut client, "index.fallback.hello", 200, "hello").await;
}

#[tokio::test]
async fn lifecycle_hooks_are_never_routable() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    for method in [
        "index.index.onclose",
        "index.index.onmessage",
        "index.index.onreload",
        "index.index.onshutdown",
        "index.index.onClose",
        "onShutdown",
    ] {
        assert_routed(&mut client, method, 405, "methodNotFound").await;
    }
}

#[tokio::test]
async fn live_methods_are_answered_by_the_live_plugin() {
    let host = TestHost::start("").await;
    // docs/PROTOCOL.md "Live actions": what the Live module answers shows the call reached it.
    let mut user = host.connect_user().await;
    assert_routed(&mut user, "live.user.join", 200, "userJoinSuccess").await;
    assert_routed(&mut user, "Live.User.Out", 200, "userOutSuccess").await;
    assert_routed(&mut user, "live.wall.join", 403, "mustBeWall").await;
    let mut wall = host.connect(&format!("/?auth={VECTOR_WALL}")).await;
    assert_routed(&mut wall, "LIVE.USER.JOIN", 403, "mustBeWechatUser").await;
    assert_routed(&mut wall, "live.wall.join", 200, "wallJoinSuccess").await;
    // An action Live does not declare is refused by the router.
    assert_routed(&mut user, "live.user.dance", 405, "methodNotFound").await;
}
