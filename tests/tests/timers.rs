//! Module timers in the running host (docs/MODULES.md, "Timers"): they belong to the
//! module, so a hot swap hands them to the new version without losing or doubling
//! a tick, and they stop before `onShutdown`.

use std::time::{Duration, Instant};

use mswoole_tests::{json, paths, ClientRx, Envelope, Frame, TestHost, VECTOR_WECHAT_USER};

/// Ticks received within `window`, as `(n, variant)`.
async fn ticks_for(client: &mut ClientRx, window: Duration) -> Vec<(u64, u64)> {
    let until = Instant::now() + window;
    let mut ticks = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        let Some(frame) = client.recv_within(left).await else {
            break;
        };
        let Frame::Text(text) = frame else {
            panic!("expected a tick, got {frame:?}");
        };
        let envelope = Envelope::parse(&text);
        envelope.assert_is(200, "tick");
        let param = envelope.expect_param();
        ticks.push((
            param["n"].as_u64().unwrap_or(0),
            param["variant"].as_u64().unwrap_or(0),
        ));
    }
    ticks
}

#[tokio::test]
async fn a_timer_goes_on_across_a_hot_swap_on_the_new_version_and_stops_at_shutdown() {
    let mut host = TestHost::builder()
        .config("[plugins]\nwatch = false\n[protocol]\nack = false")
        .plugin_copy(
            "libswap_fixture.so",
            &paths::fixture("variants/libswap_v1.so"),
        )
        .start()
        .await;
    let (mut tx, mut client) = host
        .connect(&format!("/live?auth={VECTOR_WECHAT_USER}"))
        .await
        .split();
    let armed = Instant::now();
    tx.send_json(&json!({"method": "swap.index.tick", "ms": 50}))
        .await;
    client.expect_envelope(200, "ticking").await;
    let before = ticks_for(&mut client, Duration::from_millis(500)).await;
    assert!(before.len() >= 3, "the timer fires: {before:?}");
    assert!(before.iter().all(|(_, variant)| *variant == 1));

    let file = host.dir().plugins_dir().join("libswap_fixture.so");
    std::fs::remove_file(&file).expect("removed");
    std::fs::copy(paths::fixture("variants/libswap_v2.so"), &file).expect("copied");
    host.console("reload", &[]).assert_success();
    let window = Duration::from_millis(1500);
    let after = ticks_for(&mut client, window).await;
    let all: Vec<u64> = before.iter().chain(&after).map(|(n, _)| *n).collect();
    assert!(
        all.windows(2).all(|w| w[1] == w[0] + 1),
        "every tick once, in order: {all:?}"
    );
    let on_v2 = after
        .iter()
        .skip_while(|(_, v)| *v == 1)
        .collect::<Vec<_>>();
    assert!(
        on_v2.len() >= 5,
        "the new version gets the ticks: {after:?}"
    );
    assert!(
        on_v2.iter().all(|(_, v)| *v == 2),
        "no tick goes back to the old version: {after:?}"
    );
    // One timer, not one per version: since it was armed, at most one tick per 50 ms
    // (two timers would number their ticks twice as fast).
    let last = all.last().copied().unwrap_or(0);
    let most = armed.elapsed().as_millis() as u64 / 50 + 1;
    assert!(
        last <= most,
        "{last} ticks since arming, at most {most}: doubled? {after:?}"
    );

    host.console("stop", &[]).assert_success();
    assert!(host.wait_exit(Duration::from_secs(10)).await.success());
    // The module logs every tick and its onShutdown: no tick comes after it.
    let log = host.log_file();
    let is_tick = |line: &str| {
        line.split_once("tick ").is_some_and(|(_, rest)| {
            rest.split_once(" v")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    let lines: Vec<&str> = log.lines().collect();
    let shutdown = lines
        .iter()
        .position(|line| line.contains("onShutdown v2"))
        .unwrap_or_else(|| panic!("onShutdown ran on the current version:\n{log}"));
    assert!(
        lines[..shutdown].iter().any(|line| is_tick(line)),
        "ticks are logged, so a late one would show:\n{log}"
    );
    let late: Vec<&&str> = lines[shutdown..]
        .iter()
        .filter(|line| is_tick(line))
        .collect();
    assert!(
        late.is_empty(),
        "no timer fired into a stopped module: {late:?}"
    );
}
