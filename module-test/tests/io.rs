//! SQL and HTTP under the kit: the host's own database layer and HTTP client, so a
//! module's tests see the same rows, error kinds and envelopes as the host gives.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;

use mswoole_module_test::{serde_json::json, Options, TestHost};
use mswoole_plugin_api::{
    serde_json::Value, BoxFuture, Envelope, Host, HttpRequest, IoErrorKind, Module, ModuleError,
    ModuleInfo, Outcome, Request,
};

/// A guest book: notes in SQL, and a fetch through the host's HTTP client.
struct Notes {
    host: Host,
    db: String,
}

impl Module for Notes {
    fn info() -> ModuleInfo {
        ModuleInfo::new("Notes", "1.0.0").controller(
            "Book",
            &["add", "addPair", "list", "broken", "fetch", "info"],
        )
    }

    fn new(host: Host, config: Value) -> Result<Self, String> {
        let db = config["database"].as_str().unwrap_or("default").to_string();
        Ok(Notes { host, db })
    }

    fn on_start(&self) -> BoxFuture<Result<(), ModuleError>> {
        let (host, db) = (self.host.clone(), self.db.clone());
        Box::pin(async move {
            host.execute(
                &db,
                "CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                 text TEXT NOT NULL UNIQUE)",
                &[],
            )
            .await?;
            Ok(())
        })
    }

    fn call(&self, request: Request) -> BoxFuture<Outcome> {
        let (host, db) = (self.host.clone(), self.db.clone());
        Box::pin(async move {
            let message = request.message().clone();
            match request.action.as_str() {
                "add" => {
                    let text = request.str_param("text")?;
                    match host
                        .execute(&db, "INSERT INTO note (text) VALUES (?)", &[json!(text)])
                        .await
                    {
                        Ok(done) => Ok(Some(Envelope::ok("added", "ok").with_param(
                            &json!({"id": done.last_insert_id, "rows": done.rows_affected}),
                        ))),
                        Err(e) if e.kind() == Some(IoErrorKind::Constraint) => {
                            Err(ModuleError::refused(403, "duplicate", "already there"))
                        }
                        Err(e) => Err(e.into()),
                    }
                }
                "addPair" => {
                    let first = message["first"].as_str().unwrap_or_default().to_string();
                    let second = message["second"].as_str().unwrap_or_default().to_string();
                    let sql = "INSERT INTO note (text) VALUES (?)";
                    host.transaction(
                        &db,
                        &[(sql, vec![json!(first)]), (sql, vec![json!(second)])],
                    )
                    .await?;
                    Ok(Some(Envelope::ok("addedPair", "ok")))
                }
                "list" => {
                    let rows = host
                        .query(&db, "SELECT id, text FROM note ORDER BY id", &[])
                        .await?;
                    Ok(Some(Envelope::ok("notes", "ok").with_param(&json!(rows))))
                }
                "broken" => {
                    host.query(&db, "SELEKT nonsense", &[]).await?;
                    Ok(None)
                }
                "info" => {
                    let info = host.database_info(&db)?;
                    Ok(Some(Envelope::ok("info", "ok").with_param(
                        &json!({"dialect": info.dialect, "prefix": info.prefix}),
                    )))
                }
                _ => {
                    let url = request.str_param("url")?;
                    let answer = host.http(&HttpRequest::get(url).timeout_ms(2000)).await?;
                    Ok(Some(Envelope::ok("fetched", "ok").with_param(
                        &json!({"status": answer.status, "body": answer.body}),
                    )))
                }
            }
        })
    }
}

fn phone(host: &TestHost) -> mswoole_module_test::Conn {
    host.connect(json!({"id": 1, "type": "wechatUser", "code": "demo"}))
}

fn reply(host: &TestHost, message: Value) -> Value {
    let frames = phone(host).send(message);
    frames.last().cloned().expect("a reply")
}

#[test]
fn rows_go_in_and_come_out_as_json() {
    let host = TestHost::new();
    host.load::<Notes>(json!({})).expect("loads");
    let added = reply(&host, json!({"method": "notes.book.add", "text": "hello"}));
    assert_eq!(added["param"], json!({"id": 1, "rows": 1}));
    reply(&host, json!({"method": "notes.book.add", "text": "<b>"}));
    let listed = reply(&host, json!({"method": "notes.book.list"}));
    // Strings reach the module HTML-escaped, as in the host.
    assert_eq!(
        listed["param"],
        json!([{"id": 1, "text": "hello"}, {"id": 2, "text": "&lt;b&gt;"}])
    );
    let info = reply(&host, json!({"method": "notes.book.info"}));
    assert_eq!(info["param"], json!({"dialect": "sqlite", "prefix": ""}));
}

#[test]
fn kinds_reach_the_module_and_unhandled_ones_take_the_one_error_path() {
    let host = TestHost::new();
    host.load::<Notes>(json!({})).expect("loads");
    reply(&host, json!({"method": "notes.book.add", "text": "once"}));
    let again = reply(&host, json!({"method": "notes.book.add", "text": "once"}));
    assert_eq!(again["status"], 403, "{again}");
    assert_eq!(again["event"], "duplicate");
    let broken = reply(&host, json!({"method": "notes.book.broken"}));
    assert_eq!(broken["status"], 501, "{broken}");
    assert_eq!(broken["event"], "storageError");
    assert!(
        host.log()
            .iter()
            .any(|line| line.message.contains("BadStatement")),
        "the detail goes to the log: {:?}",
        host.log()
    );
}

#[test]
fn a_transaction_is_all_or_nothing() {
    let host = TestHost::new();
    host.load::<Notes>(json!({})).expect("loads");
    reply(&host, json!({"method": "notes.book.add", "text": "taken"}));
    let failed = reply(
        &host,
        json!({"method": "notes.book.addPair", "first": "new", "second": "taken"}),
    );
    assert_eq!(failed["status"], 501, "{failed}");
    let listed = reply(&host, json!({"method": "notes.book.list"}));
    assert_eq!(listed["param"], json!([{"id": 1, "text": "taken"}]));
    let done = reply(
        &host,
        json!({"method": "notes.book.addPair", "first": "a", "second": "b"}),
    );
    assert_eq!(done["event"], "addedPair");
}

#[test]
fn an_unknown_or_unusable_database_answers_as_in_the_host() {
    let host = TestHost::new();
    host.load::<Notes>(json!({"database": "nope"}))
        .expect_err("on_start cannot create its table");
    // A SQLite "file" that is a directory cannot be opened: Unreachable, 503.
    let dir = std::env::temp_dir().join(format!("mswoole-kit-io-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut options = Options::default();
    options
        .databases
        .insert("gone".into(), format!("sqlite://{}", dir.display()));
    let host = TestHost::with_options(options);
    let refused = host.load::<Notes>(json!({"database": "gone"}));
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("Unreachable")),
        "{refused:?}"
    );
    let _ = std::fs::remove_dir(&dir);
}

/// Serves `body` once to every connection, with a Content-Length.
fn serve(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}/x")
}

#[test]
fn http_goes_through_the_hosts_client_with_its_size_cap() {
    let url = serve("0123456789");
    let host = TestHost::new();
    host.load::<Notes>(json!({})).expect("loads");
    let fetched = reply(&host, json!({"method": "notes.book.fetch", "url": url}));
    assert_eq!(
        fetched["param"],
        json!({"status": 200, "body": "0123456789"})
    );

    let host = TestHost::with_options(Options {
        http_max_response_bytes: 5,
        ..Options::default()
    });
    host.load::<Notes>(json!({})).expect("loads");
    let refused = reply(&host, json!({"method": "notes.book.fetch", "url": url}));
    assert_eq!(
        refused["status"], 501,
        "TooLarge is not 'try later': {refused}"
    );
    assert!(host.log().iter().any(|l| l.message.contains("TooLarge")));
}
