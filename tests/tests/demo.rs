//! The demo pages (README.md, "Demo"): off unless `[demo] enabled = true`; when on, tokens
//! from `/demo/token` work, and in a real headless Chromium a phone page says something,
//! the wall page approves it and the phone page shows the broadcast. The browser test
//! saves screenshots of both pages (into `target/screenshots/`, or with
//! `MSWOOLE_UPDATE_SCREENSHOTS=1` into `docs/img/`, the ones the README shows).

use fantoccini::{Client as Page, Locator};
use mswoole_tests::{
    http_get, json, live::Speaks, paths, wait_for, Browser, Screen, TestHost, Value,
};

const DEMO_ON: &str = "[demo]\nenabled = true\n";

/// `GET path` on the outside port, as JSON.
async fn get_json(host: &TestHost, path: &str) -> (u16, Value) {
    let response = http_get(host.outside, path).await;
    let body = serde_json::from_slice(&response.body)
        .unwrap_or_else(|error| panic!("{path}: not JSON ({error}): {}", response.text()));
    (response.status, body)
}

#[tokio::test]
async fn the_demo_is_off_unless_enabled() {
    let host = TestHost::start("").await;
    for path in [
        "/demo/wall",
        "/demo/phone",
        "/demo/client.js",
        "/demo/token?type=wall&code=demo&nickname=x",
    ] {
        let response = http_get(host.outside, path).await;
        assert_eq!(response.status, 404, "{path} with the demo off");
    }
}

#[tokio::test]
async fn pages_are_served_and_minted_tokens_work() {
    let host = TestHost::start(DEMO_ON).await;
    for (path, kind) in [
        ("/demo/wall", "text/html"),
        ("/demo/phone", "text/html"),
        ("/demo/client.js", "text/javascript"),
    ] {
        let response = http_get(host.outside, path).await;
        assert_eq!(response.status, 200, "{path}");
        let content_type = response.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert!(
            !response.text().contains("http://") && !response.text().contains("https://"),
            "{path} loads nothing from outside"
        );
    }
    let (status, wall) =
        get_json(&host, "/demo/token?type=wall&code=r1&nickname=big%20screen").await;
    assert_eq!(status, 200, "{wall}");
    let (status, phone) = get_json(
        &host,
        "/demo/token?type=wechatUser&code=r1&nickname=%E5%B0%8F%E6%98%8E",
    )
    .await;
    assert_eq!(status, 200, "{phone}");
    assert_ne!(wall["id"], phone["id"]);

    let token = |minted: &Value| minted["token"].as_str().unwrap_or_default().to_owned();
    let mut screen = host.connect(&format!("/live?auth={}", token(&wall))).await;
    let auth = screen.echo(json!({})).await["auth"].clone();
    assert_eq!(
        (&auth["type"], &auth["code"], &auth["nickname"], &auth["id"]),
        (
            &json!("wall"),
            &json!("r1"),
            &json!("big screen"),
            &wall["id"]
        )
    );
    screen
        .ok("live.wall.join", json!({}), "wallJoinSuccess")
        .await;
    let mut user = host.connect(&format!("/live?auth={}", token(&phone))).await;
    assert_eq!(user.echo(json!({})).await["auth"]["nickname"], "小明");
    user.ok("live.user.join", json!({}), "userJoinSuccess")
        .await;
    user.ok("live.user.say", json!({"say": "hi"}), "userSaySuccess")
        .await;
    assert_eq!(screen.hears("userSayNeedCheck").await["say"], "hi");

    let (status, error) = get_json(&host, "/demo/token?type=admin&code=r1").await;
    assert_eq!(status, 400);
    assert!(
        error["error"].as_str().unwrap_or_default().contains("type"),
        "{error}"
    );
}

/// The element's text, or a failure naming the selector.
async fn text_of(page: &Page, selector: &str) -> String {
    page.find(Locator::Css(selector))
        .await
        .unwrap_or_else(|error| panic!("{selector}: {error}"))
        .text()
        .await
        .unwrap_or_else(|error| panic!("{selector}: {error}"))
}

/// Types into an input and presses its form's button.
async fn submit(page: &Page, input: &str, text: &str, button: &str) {
    let field = page
        .find(Locator::Css(input))
        .await
        .unwrap_or_else(|error| panic!("{input}: {error}"));
    field
        .send_keys(text)
        .await
        .unwrap_or_else(|error| panic!("typing into {input}: {error}"));
    page.find(Locator::Css(button))
        .await
        .unwrap_or_else(|error| panic!("{button}: {error}"))
        .click()
        .await
        .unwrap_or_else(|error| panic!("clicking {button}: {error}"));
}

/// A script that returns the first `selector` element whose text contains `text`
/// (its text), or null.
fn find_text(selector: &str, text: &str) -> String {
    format!(
        "const t = {text}; for (const e of document.querySelectorAll({selector})) {{ if (e.innerText.includes(t)) return e.innerText; }} return null;",
        text = json!(text),
        selector = json!(selector),
    )
}

#[tokio::test]
async fn a_phone_says_the_wall_approves_and_the_phone_shows_the_broadcast() {
    let host = TestHost::start(DEMO_ON).await;
    let base = format!("http://{}", host.outside);
    // A plain client in the room too: what the pages do must reach the wire.
    let mut listener = mswoole_tests::live::user_in(&host, "41", "demo", "listener").await;

    let mut browser = Browser::start().await;
    let wall = browser.window(Screen::Wall).await;
    let phone = browser.window(Screen::Phone).await;

    wall.goto(&format!("{base}/demo/wall?code=demo"))
        .await
        .expect("the wall page loads");
    wait_for(
        &wall,
        "the wall joins",
        "return document.body.dataset.joined === 'wall'",
    )
    .await;
    assert_eq!(text_of(&wall, "#status").await, "connected");

    phone
        .goto(&format!("{base}/demo/phone?code=demo"))
        .await
        .expect("the phone page loads");
    submit(&phone, "#nickname", "小明", "#join").await;
    wait_for(
        &phone,
        "the phone joins",
        "return document.body.classList.contains('joined')",
    )
    .await;

    let said = "大家好! Hello from the phone <3";
    submit(&phone, "#say-text", said, "#say").await;
    let queued = wait_for(
        &wall,
        "the message in the moderation queue",
        &find_text("#queue li[data-id]", said),
    )
    .await;
    assert!(
        queued.as_str().unwrap_or_default().contains("小明"),
        "{queued}"
    );
    // Not broadcast before the wall decides.
    let early = phone
        .execute(&find_text("#feed li[data-broadcast]", said), Vec::new())
        .await
        .expect("the phone page runs scripts");
    assert_eq!(early, Value::Null, "broadcast before approval");

    wall.execute(
        "for (const e of document.querySelectorAll('#queue li[data-id]')) { if (e.innerText.includes(arguments[0])) { e.querySelector('.approve').click(); return true; } } return false;",
        vec![json!(said)],
    )
    .await
    .expect("the approve button is clicked");
    wait_for(
        &wall,
        "the approved message on the wall",
        &find_text("#approved li.user", said),
    )
    .await;
    wait_for(
        &phone,
        "the broadcast on the phone",
        &find_text("#feed li[data-broadcast='user']", said),
    )
    .await;
    let heard = listener.hears("userSayBroadcast").await;
    assert_eq!(
        heard["say"], "大家好! Hello from the phone &lt;3",
        "escaped on the wire"
    );
    assert_eq!(heard["nickname"], "小明");

    // The wall speaks: every phone hears it.
    let announced = "欢迎来到直播间 Welcome to the live room!";
    submit(&wall, "#wall-text", announced, "#wall-form button").await;
    wait_for(
        &phone,
        "the wall's message on the phone",
        &find_text("#feed li[data-broadcast='wall']", announced),
    )
    .await;
    assert_eq!(
        listener.hears("wallSayBroadcast").await["say"],
        "欢迎来到直播间 Welcome to the live room!"
    );

    // The wall takes a message back: the phone strikes it through.
    let oops = "Oops, wrong room";
    submit(&wall, "#wall-text", oops, "#wall-form button").await;
    let posted = wait_for(
        &phone,
        "the second wall message on the phone",
        &find_text("#feed li[data-broadcast='wall']", oops),
    )
    .await;
    assert!(posted.as_str().unwrap_or_default().contains(oops));
    let recalled_id = listener.hears("wallSayBroadcast").await["id"].clone();
    wall.execute(
        "for (const e of document.querySelectorAll('#approved li.wall')) { if (e.innerText.includes(arguments[0])) { e.querySelector('.recall').click(); return true; } } return false;",
        vec![json!(oops)],
    )
    .await
    .expect("the recall button is clicked");
    assert_eq!(listener.hears("wallSayRecall").await, recalled_id);
    wait_for(
        &phone,
        "the recall on the phone",
        &find_text("#feed li.recalled[data-broadcast='wall']", oops),
    )
    .await;
    wait_for(
        &wall,
        "the recall on the wall",
        &find_text("#approved li.wall.recalled", oops),
    )
    .await;

    // A second message waits in the queue, so the wall's screenshot shows one.
    let waiting = "能看到我吗? Can the big screen see me?";
    submit(&phone, "#say-text", waiting, "#say").await;
    wait_for(
        &wall,
        "the second message in the queue",
        &find_text("#queue li[data-id]", waiting),
    )
    .await;

    // Into target/ on every run; into docs/img (the README's pictures) when asked, so
    // a test run does not leave the committed screenshots modified.
    let docs = match std::env::var_os("MSWOOLE_UPDATE_SCREENSHOTS") {
        Some(_) => paths::workspace_root().join("docs/img"),
        None => paths::target_dir().join("screenshots"),
    };
    std::fs::create_dir_all(&docs).expect("the screenshot directory is created");
    for (page, name) in [(&wall, "demo-wall.png"), (&phone, "demo-phone.png")] {
        let png = page.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
        std::fs::write(docs.join(name), png).expect("the screenshot is saved");
    }
    wall.close().await.expect("the wall session ends");
    phone.close().await.expect("the phone session ends");
}

#[tokio::test]
async fn a_poll_runs_on_the_demo_pages() {
    // The Vote module (examples/vote) next to Live: the pages speak its events.
    let host = TestHost::builder()
        .config(DEMO_ON)
        .plugin_copy("libmswoole_vote.so", &paths::vote_plugin())
        .start()
        .await;
    let base = format!("http://{}", host.outside);
    let mut browser = Browser::start().await;
    let wall = browser.window(Screen::Wall).await;
    let phone = browser.window(Screen::Phone).await;
    wall.goto(&format!("{base}/demo/wall?code=poll"))
        .await
        .expect("the wall page loads");
    wait_for(
        &wall,
        "the wall joins",
        "return document.body.dataset.joined === 'wall'",
    )
    .await;
    phone
        .goto(&format!("{base}/demo/phone?code=poll"))
        .await
        .expect("the phone page loads");
    submit(&phone, "#nickname", "小红", "#join").await;
    wait_for(
        &phone,
        "the phone joins",
        "return document.body.classList.contains('joined')",
    )
    .await;

    // The pages have no button to open a poll: a second screen of the room opens it
    // (without joining the room's screens, so it gets replies only).
    let mut screen = mswoole_tests::live::connect(&host, "w-2", "wall", "poll", "console").await;
    let opened = screen
        .ok(
            "vote.wall.open",
            json!({"title": "喝茶还是咖啡? Tea or coffee?", "options": ["茶 tea", "咖啡 coffee"], "seconds": 60}),
            "voteOpenSuccess",
        )
        .await;
    wait_for(
        &phone,
        "the poll on the phone",
        &find_text("#poll.open .title", "Tea or coffee?"),
    )
    .await;
    wait_for(
        &wall,
        "the poll on the wall",
        &find_text("#poll .title", "Tea or coffee?"),
    )
    .await;
    // The phone votes by tapping the second option.
    phone
        .execute(
            "const b = document.querySelectorAll('#poll button')[1]; b.click(); return true;",
            Vec::new(),
        )
        .await
        .expect("the option is tapped");
    wait_for(
        &phone,
        "the vote taken",
        &find_text("#poll .state", "Voted"),
    )
    .await;
    // The wall's bars follow the tally.
    wait_for(
        &wall,
        "the tally on the wall",
        &find_text("#poll .label", "1 · 100%"),
    )
    .await;
    let result = screen
        .ok(
            "vote.wall.result",
            json!({"poll": opened["poll"]}),
            "voteResult",
        )
        .await;
    assert_eq!(
        result["counts"],
        json!([0, 1]),
        "the page's tap reached the wire"
    );
    screen
        .ok("vote.wall.close", json!({}), "voteCloseSuccess")
        .await;
    wait_for(
        &phone,
        "the result on the phone",
        &find_text("#poll.closed .state", "1 votes"),
    )
    .await;
    wait_for(
        &wall,
        "the result on the wall",
        &find_text("#poll .state", "Closed · 1 votes"),
    )
    .await;
    let docs = paths::target_dir().join("screenshots");
    std::fs::create_dir_all(&docs).expect("the screenshot directory is created");
    for (page, name) in [
        (&wall, "demo-wall-poll.png"),
        (&phone, "demo-phone-poll.png"),
    ] {
        let png = page.screenshot().await.expect("a screenshot");
        std::fs::write(docs.join(name), png).expect("the screenshot is saved");
    }
    wall.close().await.expect("the wall session ends");
    phone.close().await.expect("the phone session ends");
}
