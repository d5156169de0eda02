//! README.md "Browser client": `/mswoole.js` in a real headless Chromium. A page joins a
//! Live room through it; its connection is cut from the server's side (a proxy in
//! between resets both sockets and refuses new ones for a while); the wall broadcasts
//! meanwhile; the page reconnects by itself, resumes, and shows every broadcast once, in
//! order. Also: the script and the ES module are served, and loaded in the browser.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use fantoccini::Client as Page;
use mswoole_tests::{
    http_get, json, live, live::Speaks, wait_for, Browser, Screen, TestHost, Token, Value,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::broadcast,
};

/// A TCP proxy in front of the host that can cut every connection through it.
struct Proxy {
    addr: SocketAddr,
    /// Resets every connection through the proxy.
    cut: broadcast::Sender<()>,
    /// Whether new connections are let through.
    open: Arc<AtomicBool>,
}

/// Drops a socket with a reset, as a dead network path would look to both ends.
fn reset(socket: TcpStream) {
    let _ = socket.set_zero_linger();
    drop(socket);
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy listens");
        let addr = listener.local_addr().expect("the proxy's address");
        let (cut, _) = broadcast::channel(4);
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, letting) = (cut.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !letting.load(Ordering::SeqCst) {
                    reset(client);
                    continue;
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return reset(client);
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.recv() => {
                            reset(client);
                            reset(server);
                        }
                    }
                });
            }
        });
        Proxy { addr, cut, open }
    }

    /// Resets every connection and refuses new ones.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        let _ = self.cut.send(());
    }

    /// Lets connections through again.
    fn reopen(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// What the page saw: its log of client events and the broadcasts it shows.
async fn seen(page: &Page) -> (Vec<String>, Vec<String>) {
    let value = page
        .execute("return [window.log, window.says]", Vec::new())
        .await
        .expect("the page's state can be read");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    (strings(&value[0]), strings(&value[1]))
}

/// Waits until the page shows exactly `says`.
async fn wait_says(page: &Page, says: &[&str]) {
    let expected = serde_json::to_string(says).expect("JSON");
    let script = format!("return JSON.stringify(window.says) === {expected:?}");
    wait_for(page, &format!("the page shows {says:?}"), &script).await;
}

#[tokio::test]
async fn the_script_and_the_module_are_served() {
    let host = TestHost::start("").await;
    for path in ["/mswoole.js", "/mswoole.mjs"] {
        let response = http_get(host.outside, path).await;
        assert_eq!(response.status, 200, "{path}");
        let kind = response.header("content-type").unwrap_or_default();
        assert!(kind.starts_with("text/javascript"), "{path}: {kind}");
        assert!(response.text().contains("class Mswoole"), "{path}");
    }
    let module = http_get(host.outside, "/mswoole.mjs").await.text();
    assert!(module.contains("export { Mswoole }"), "{module}");
}

#[tokio::test]
async fn a_page_whose_connection_is_cut_resumes_and_shows_every_broadcast_once_in_order() {
    let host = TestHost::start("").await;
    let proxy = Proxy::start(host.outside).await;
    let mut browser = Browser::start().await;
    let page = browser.window(Screen::Phone).await;
    page.goto(&format!("http://{}/", proxy.addr))
        .await
        .expect("the page loads through the proxy");

    // As an ES module.
    let module = page
        .execute(
            "return import('/mswoole.mjs').then(m => typeof m.Mswoole + ' ' + (m.default === m.Mswoole))",
            Vec::new(),
        )
        .await
        .expect("the module loads");
    assert_eq!(module, json!("function true"));
    // As a classic script.
    page.execute(
        "const s = document.createElement('script'); s.src = '/mswoole.js'; document.head.appendChild(s);",
        Vec::new(),
    )
    .await
    .expect("the script tag is added");
    wait_for(
        &page,
        "the script defines Mswoole",
        "return typeof Mswoole === 'function'",
    )
    .await;

    let token = Token::new("21", "wechatUser", "br", "phone").mint();
    page.execute(
        r#"
        window.log = []; window.says = [];
        const client = new Mswoole(`ws://${location.host}/live?auth=${encodeURIComponent(arguments[0])}`);
        client.on("open", () => { window.log.push("open"); client.send("live.user.join"); });
        client.on("userJoinSuccess", () => window.log.push("joined"));
        client.on("resumed", (e) => window.log.push("resumed " + e.missed));
        client.on("notResumed", (e) => window.log.push("notResumed " + e.reason));
        client.on("close", () => window.log.push("close"));
        client.on("wallSayBroadcast", (e) => {
            window.says.push(e.param.say);
            const line = document.createElement("p");
            line.className = "say";
            line.textContent = e.param.say;
            document.body.append(line);
        });
        window.client = client;
        "#,
        vec![json!(token)],
    )
    .await
    .expect("the client starts");
    wait_for(
        &page,
        "the page joins its room",
        "return window.log.includes('joined')",
    )
    .await;

    let mut wall = live::wall_in(&host, "w-21", "br", "screen").await;
    let say = async |wall: &mut mswoole_tests::Client, text: &str| {
        wall.ok("live.wall.say", json!({ "say": text }), "wallSaySuccess")
            .await;
    };
    say(&mut wall, "m1").await;
    wait_says(&page, &["m1"]).await;

    // The server side cuts the page's connection; the wall goes on meanwhile.
    proxy.cut();
    wait_for(
        &page,
        "the page sees the drop",
        "return window.log.includes('close')",
    )
    .await;
    for text in ["m2", "m3", "m4"] {
        say(&mut wall, text).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    proxy.reopen();

    wait_says(&page, &["m1", "m2", "m3", "m4"]).await;
    say(&mut wall, "m5").await;
    wait_says(&page, &["m1", "m2", "m3", "m4", "m5"]).await;
    let (log, says) = seen(&page).await;
    assert_eq!(
        says,
        ["m1", "m2", "m3", "m4", "m5"],
        "every broadcast once, in order"
    );
    assert!(
        log.iter().any(|entry| entry == "resumed 3"),
        "the page resumed with the three it missed: {log:?}"
    );
    assert!(
        !log.iter().any(|entry| entry.starts_with("notResumed")),
        "{log:?}"
    );
    assert_eq!(
        log.iter().filter(|entry| *entry == "open").count(),
        1,
        "one fresh session only (no rejoin needed): {log:?}"
    );
    let shown = page
        .execute(
            "return [...document.querySelectorAll('p.say')].map(p => p.textContent)",
            Vec::new(),
        )
        .await
        .expect("the page's lines");
    assert_eq!(shown, json!(["m1", "m2", "m3", "m4", "m5"]));
    let _ = page.close().await;
}
