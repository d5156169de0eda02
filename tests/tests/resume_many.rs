//! README.md "Resumable sessions" at scale: 1,000 resumable phones in a Live room drop at
//! once and resume at once while the wall broadcasts; every phone ends with every wall
//! message exactly once, in order, its seqs without a gap.

use std::{net::SocketAddr, time::Duration};

use mswoole_tests::{
    connect, json, live, live::Speaks, phone::wait_connections, Frame, TestHost, Token, Value,
};
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

const PHONES: usize = 1000;
/// The wall says something every this often.
const WALL_EVERY: Duration = Duration::from_millis(50);

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

/// What a phone heard of the wall, and its seq bookkeeping.
#[derive(Default)]
struct Heard {
    says: Vec<String>,
    last: u64,
}

impl Heard {
    /// Takes one stamped envelope: its seq must be the next.
    fn take(&mut self, text: &str) {
        let value = parse(text);
        assert_eq!(value["seq"], self.last + 1, "a gap or a repeat: {text}");
        self.last += 1;
        if value["event"] == "wallSayBroadcast" {
            if let Some(say) = value["param"]["say"].as_str() {
                self.says.push(say.to_string());
            }
        }
    }
}

/// One phone: joins, listens, drops on `dropping`, resumes on `resuming`, then listens
/// until it has heard `total` wall messages; returns them.
async fn phone(
    addr: SocketAddr,
    token: String,
    ready: mpsc::Sender<()>,
    resumed: mpsc::Sender<()>,
    mut dropping: watch::Receiver<bool>,
    mut resuming: watch::Receiver<bool>,
    mut total: watch::Receiver<usize>,
) -> Vec<String> {
    let mut client = connect(addr, &format!("/live?auth={token}&resume=1"))
        .await
        .unwrap_or_else(|refused| panic!("refused: {refused:?}"));
    let start = parse(&client.rx.recv_text().await);
    let session = start["param"]["session"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {start}"))
        .to_string();
    let mut heard = Heard::default();
    client.send_json(&json!({"method": "live.user.join"})).await;
    // The ack and the join's reply.
    for _ in 0..2 {
        heard.take(&client.rx.recv_text().await);
    }
    let _ = ready.send(()).await;
    loop {
        tokio::select! {
            frame = client.rx.recv_within(Duration::from_secs(30)) => match frame {
                Some(Frame::Text(text)) => heard.take(&text),
                other => panic!("a phone got {other:?} before its drop"),
            },
            _ = dropping.wait_for(|now| *now) => break,
        }
    }
    // Dropped without a close frame, as a phone going to the background.
    drop(client);
    let _ = resuming.wait_for(|now| *now).await;
    let mut client = connect(
        addr,
        &format!("/live?auth={token}&resume={session}&last={}", heard.last),
    )
    .await
    .unwrap_or_else(|refused| panic!("resume refused: {refused:?}"));
    client.set_timeout(Duration::from_secs(30));
    let first = parse(&client.rx.recv_text().await);
    assert_eq!(first["event"], "sessionResumed", "{first}");
    let _ = resumed.send(()).await;
    loop {
        let wanted = *total.borrow();
        if wanted > 0 && heard.says.len() >= wanted {
            return heard.says;
        }
        tokio::select! {
            frame = client.rx.recv_within(Duration::from_secs(30)) => match frame {
                Some(Frame::Text(text)) => heard.take(&text),
                other => panic!("a resumed phone got {other:?} after {} messages", heard.says.len()),
            },
            _ = total.changed() => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_phones_drop_and_resume_at_once_and_hear_every_wall_message_once() {
    // Bounds above the defaults: on a loaded two-core machine a debug build may take
    // seconds to take 1,000 resumes back while the wall goes on; the bounds have their
    // own tests (tests/tests/resume.rs).
    let host = TestHost::start("[recovery]\nmax_frames = 1024\nmax_bytes = 1048576").await;
    let token = Token::new("1", "wechatUser", "many", "phone").mint();
    let (ready_tx, mut ready) = mpsc::channel(PHONES);
    let (resumed_tx, mut resumed) = mpsc::channel(PHONES);
    let (drop_tx, dropping) = watch::channel(false);
    let (resume_tx, resuming) = watch::channel(false);
    let (total_tx, total) = watch::channel(0usize);
    let mut phones = Vec::new();
    for _ in 0..PHONES {
        phones.push(tokio::spawn(phone(
            host.outside,
            token.clone(),
            ready_tx.clone(),
            resumed_tx.clone(),
            dropping.clone(),
            resuming.clone(),
            total.clone(),
        )));
    }
    for _ in 0..PHONES {
        ready.recv().await.expect("every phone joins");
    }

    // The wall broadcasts from now until every phone is back.
    let mut wall = live::wall_in(&host, "w-1", "many", "screen").await;
    let (stop_tx, mut stop) = watch::channel(false);
    let (said_tx, said_so_far) = watch::channel(0usize);
    let broadcasting = tokio::spawn(async move {
        let mut said = 0usize;
        while !*stop.borrow() {
            wall.ok(
                "live.wall.say",
                json!({ "say": format!("w{said}") }),
                "wallSaySuccess",
            )
            .await;
            said += 1;
            let _ = said_tx.send(said);
            let _ = tokio::time::timeout(WALL_EVERY, stop.changed()).await;
        }
        said
    });
    // A few wall messages before the drop, a few while the phones are away, a few after.
    let wall_said = |at_least: usize| {
        let mut said = said_so_far.clone();
        async move {
            let _ = said.wait_for(|said| *said >= at_least).await;
            *said.borrow()
        }
    };
    let before = wall_said(3).await;
    let _ = drop_tx.send(true);
    wait_connections(&host, 1).await;
    wall_said(before + 3).await;
    let since = Instant::now();
    let _ = resume_tx.send(true);
    for _ in 0..PHONES {
        resumed.recv().await.expect("every phone resumes");
    }
    let took = since.elapsed();
    eprintln!("{PHONES} sessions resumed in {took:?} (debug build, wall broadcasting)");
    let after = *said_so_far.borrow();
    wall_said(after + 3).await;
    let _ = stop_tx.send(true);
    let said = broadcasting.await.expect("the wall");
    assert!(said >= 5, "the wall said only {said} messages");
    let _ = total_tx.send(said);
    let expected: Vec<String> = (0..said).map(|n| format!("w{n}")).collect();
    for (index, phone) in phones.into_iter().enumerate() {
        let says = phone.await.expect("a phone");
        assert_eq!(
            says, expected,
            "phone {index}: every wall message once, in order"
        );
    }
}
