//! The stable-ABI promise (docs/MODULES.md, "ABI evolution"): a plugin built against
//! plugin-api 1.0 as released loads in today's host, routes, and uses the host API;
//! a plugin built for a newer plugin-api is refused at load, naming both versions;
//! and a module built on today's plugin-api gets its names as declared.

use mswoole_tests::{json, paths, Client, TestHost, Token, Value, VECTOR_WECHAT_USER};

/// A host serving the 1.0 `Legacy` fixture next to today's Index.
async fn legacy_host() -> TestHost {
    TestHost::builder()
        .plugin_copy(
            "liblegacy_fixture.so",
            &paths::fixture("debug/liblegacy_fixture.so"),
        )
        .start()
        .await
}

async fn user(host: &TestHost, id: &str) -> Client {
    let token = Token::wechat_user(id)
        .config(&host.dir().config_path())
        .mint();
    host.connect(&format!("/live?auth={token}")).await
}

/// The `plugins` entry of `status` for `module`.
async fn plugin_status(host: &TestHost, module: &str) -> Value {
    let status = host.manager(&json!({"method": "status"})).await;
    status.expect_param()["plugins"]
        .as_array()
        .and_then(|plugins| plugins.iter().find(|p| p["name"] == module).cloned())
        .unwrap_or_else(|| panic!("{module} is not loaded: {status:?}"))
}

#[tokio::test]
async fn a_plugin_built_against_plugin_api_1_0_serves_in_todays_host() {
    let host = legacy_host().await;
    let legacy = plugin_status(&host, "Legacy").await;
    assert_eq!(legacy["plugin_api"], "1.0.0");
    assert_ne!(plugin_status(&host, "Index").await["plugin_api"], "1.0.0");

    // Routing, with the normalised names a 1.0 plugin was written for.
    let mut alice = user(&host, "1").await;
    let names = alice
        .call(&json!({"method": "LEGACY.chatroom.GetHistory"}))
        .await;
    assert_eq!(
        names.expect_param(),
        &json!({"controller": "Chatroom", "action": "gethistory"})
    );

    // Sets, close keys and controllers, send-to-set.
    let mut bob = user(&host, "2").await;
    for client in [&mut alice, &mut bob] {
        client
            .call(&json!({"method": "legacy.chatroom.join"}))
            .await
            .assert_is(200, "joined");
    }
    let told = alice
        .call(&json!({"method": "legacy.chatroom.tell", "say": "hi"}))
        .await;
    // The sender's own `told` may come before or after its reply: both are checked.
    let (reply, own) = if told.event() == "told" {
        (alice.recv_envelope().await, told)
    } else {
        (told, alice.recv_envelope().await)
    };
    assert_eq!(
        reply.expect_param(),
        &json!(2),
        "both members reached: {reply:?}"
    );
    assert_eq!(own.expect_param(), &json!("hi"));
    let heard = bob.recv_envelope().await;
    heard.assert_is(200, "told");
    assert_eq!(heard.expect_param(), &json!("hi"));

    // Identity, uid → fd, counters, hashes, lists, expiry, the host's timer.
    let bob_fd = bob.fd().await;
    let whoami = bob.call(&json!({"method": "legacy.chatroom.whoami"})).await;
    let whoami = whoami.expect_param();
    assert_eq!(whoami["identity"]["id"], 2);
    assert_eq!(whoami["uid_fd"], bob_fd.as_str());
    assert_eq!(whoami["api"], 1);
    for expected in 1..=2 {
        let count = bob.call(&json!({"method": "legacy.chatroom.count"})).await;
        assert_eq!(count.expect_param(), &json!(expected));
    }
    let noted = bob
        .call(&json!({"method": "legacy.chatroom.note", "text": "x"}))
        .await;
    assert_eq!(noted.expect_param(), &json!({"notes": 1, "log": ["x"]}));
    bob.call(&json!({"method": "legacy.chatroom.nap", "ms": 20}))
        .await
        .assert_is(200, "napped");

    // onClose reaches the 1.0 module, and the closed member has left the room.
    bob.close(1000).await;
    let left = alice.recv_envelope().await;
    left.assert_is(200, "left");
    assert_eq!(left.expect_param()["fd"], bob_fd.as_str());
    assert_eq!(left.expect_param()["controller"], "Chatroom");
    let after = alice
        .call(&json!({"method": "legacy.chatroom.tell", "say": "still here?"}))
        .await;
    let reply = if after.event() == "told" {
        alice.recv_envelope().await
    } else {
        after
    };
    assert_eq!(
        reply.expect_param(),
        &json!(1),
        "only alice is left: {reply:?}"
    );
}

#[tokio::test]
async fn a_plugin_built_for_a_newer_plugin_api_is_refused_naming_both_versions() {
    let host = TestHost::builder()
        .plugin_copy(
            "libswap_fixture.so",
            &paths::fixture("variants/libswap_ahead.so"),
        )
        .start()
        .await;
    let status = host.manager(&json!({"method": "status"})).await;
    let refusals = status.expect_param()["refusals"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let reason = refusals
        .iter()
        .find_map(|r| {
            r["reason"].as_str().filter(|_| {
                r["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with("libswap_fixture.so"))
            })
        })
        .unwrap_or_else(|| panic!("no refusal for the newer plugin: {status:?}"))
        .to_string();
    let host_api = plugin_status(&host, "Index").await["plugin_api"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        reason.contains("built for plugin-api 1.99.0")
            && reason.contains(&format!("this host offers plugin-api {host_api}")),
        "{reason}"
    );
    // Nothing of it runs, and the host goes on serving.
    let mut client = host
        .connect(&format!("/live?auth={VECTOR_WECHAT_USER}"))
        .await;
    client
        .call(&json!({"method": "swap.index.version"}))
        .await
        .assert_is(404, "controllerNotFound");
    client
        .call(&json!({"method": "index.index.index"}))
        .await
        .assert_is(200, "success");
}

#[tokio::test]
async fn a_module_on_todays_plugin_api_gets_its_names_as_declared() {
    let host = TestHost::builder()
        .plugin_copy(
            "libswap_fixture.so",
            &paths::fixture("variants/libswap_v1.so"),
        )
        .start()
        .await;
    let mut client = host
        .connect(&format!("/live?auth={VECTOR_WECHAT_USER}"))
        .await;
    for method in [
        "swap.chatroom.gethistory",
        "SWAP.CHATROOM.GETHISTORY",
        "swap.ChatRoom.getHistory",
    ] {
        let names = client.call(&json!({ "method": method })).await;
        assert_eq!(
            names.expect_param(),
            &json!({"controller": "ChatRoom", "action": "getHistory"}),
            "{method}"
        );
    }
    let controllers = &plugin_status(&host, "Swap").await["controllers"];
    assert_eq!(
        controllers["ChatRoom"],
        json!(["getHistory"]),
        "status shows names as declared"
    );
}
