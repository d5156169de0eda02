//! The config contract, section by section: defaults, the shipped file, errors that name
//! their key.

use super::{registry::node_id_char, *};
use serde_json::json;

fn base() -> PathBuf {
    PathBuf::from("/srv/ms/config")
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, &base())
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_text_gives_defaults() {
    let c = parse("").expect("empty config");
    assert_eq!(format!("{c:?}"), format!("{:?}", Config::defaults(&base())));
    assert_eq!(c.outside.host, "127.0.0.1");
    assert_eq!(c.outside.port, 20000);
    assert_eq!(c.manager.port, 20001);
    assert_eq!(c.heartbeat.idle_s, 60);
    assert!(c.auth.required);
    assert_eq!(c.auth.key, "kfw001-websocket");
    assert_eq!(c.auth.cipher, Cipher::TripleDesEcb);
    assert_eq!(c.auth.previous_key, None);
    assert!(!c.auth.jwt.is_on(), "JWT is off until a key is set");
    assert_eq!(c.auth.jwt.leeway_s, 5);
    assert_eq!(
        (c.auth.jwt.audience.clone(), c.auth.jwt.issuer.clone()),
        (None, None)
    );
    assert!(c.protocol.ack && c.protocol.escape_html);
    assert_eq!(c.limits.max_message_bytes, 65536);
    assert_eq!(c.limits.call_timeout_ms, 5000);
    assert_eq!(c.limits.http_max_response_bytes, 1_048_576);
    assert_eq!(
        (c.limits.messages_per_s, c.limits.messages_burst),
        (100, 200)
    );
    assert_eq!(c.limits.rate_close_after_s, 10);
    assert_eq!(c.limits.connections_per_ip, 0);
    assert!(!c.log.plugin_backtraces);
    assert_eq!(c.registry.backend, Backend::Memory);
    assert_eq!(c.registry.prefix, "mswoole:");
    assert_eq!(c.plugins.dir, None);
    assert!(c.plugins.watch);
    assert_eq!(c.runtime.dir, base().join("runtime"));
    assert_eq!(c.log.level, "info");
    assert_eq!((c.log.rotate, c.log.keep), (Rotate::Daily, 7));
    assert!(c.modules.is_empty());
    assert_eq!(c.shutdown.drain_s, 10);
    assert!(c.recovery.enabled);
    assert_eq!((c.recovery.window_s, c.recovery.replay_s), (120, 60));
    assert_eq!((c.recovery.max_frames, c.recovery.max_bytes), (256, 262144));
}

#[test]
fn missing_keys_and_sections_keep_defaults() {
    let c = parse("[outside]\nport = 8080\n[auth]\ncipher = \"des-cbc\"\niv = \"abc\"\n")
        .expect("partial config");
    assert_eq!(c.outside.port, 8080);
    assert_eq!(c.outside.host, "127.0.0.1");
    assert_eq!(c.auth.cipher, Cipher::DesCbc);
    assert_eq!(c.auth.iv.as_deref(), Some("abc"));
    assert_eq!(c.auth.key, "kfw001-websocket");
    assert_eq!(c.limits.outbound_queue, 1024);
    assert_eq!(c.limits.outbound_bytes, 1 << 20);
    let c = parse(
        "[registry]\nbackend = \"redis\"\n[outside]\ntrusted_proxies = [\"10.0.0.1\", \"::1\"]\n",
    )
    .expect("redis");
    assert_eq!(c.registry.backend, Backend::Redis);
    assert_eq!(c.outside.trusted_proxies.len(), 2);
}

#[test]
fn unknown_keys_and_sections_are_named() {
    let e = err("[outside]\nhots = \"0.0.0.0\"\n");
    assert!(e.starts_with("outside.hots: unknown key"), "{e}");
    assert!(e.contains("line 2"), "{e}");
    let e = err("[outsid]\nhost = \"x\"\n");
    assert!(e.starts_with("outsid: unknown section"), "{e}");
}

#[test]
fn bad_values_are_named() {
    let e = err("[outside]\nport = \"x\"\n");
    assert!(e.starts_with("outside.port: invalid type"), "{e}");
    assert!(e.contains("(line 2, column 8)"), "{e}");
    assert!(err("[auth]\ncipher = \"rot13\"\n").starts_with("auth.cipher: unknown variant"));
    assert!(err("[registry]\nbackend = \"mongo\"\n").starts_with("registry.backend:"));
    assert!(err("[outside]\ntrusted_proxies = [\"1.2.3.4\", \"zz\"]\n")
        .starts_with("outside.trusted_proxies[1]:"));
    assert!(err("[manager]\nport = 70000\n").starts_with("manager.port:"));
    assert!(err("[outside\n").contains("line 1"));
    assert_eq!(
        err("[limits]\nmax_message_bytes = 0\n"),
        "limits.max_message_bytes must be greater than 0"
    );
    assert!(err("[heartbeat]\nidle_s = 0\n").starts_with("heartbeat.idle_s"));
    assert!(err("[limits]\ncall_timeout_ms = 0\n").starts_with("limits.call_timeout_ms"));
    assert!(err("[limits]\nhttp_max_response_bytes = 0\n")
        .starts_with("limits.http_max_response_bytes"));
    assert!(parse("[limits]\nmax_connections = 0\n").is_ok());
    assert!(err("[auth]\nkey = \"\"\n").starts_with("auth.key"));
    assert!(err("[outside]\nhost = \"\"\n").starts_with("outside.host"));
    assert!(err("[log]\nlevel = \" \"\n").starts_with("log.level"));
    assert!(err("[log]\nrotate = \"weekly\"\n").starts_with("log.rotate"));
    assert!(err("[log]\nkeep = 0\n").starts_with("log.keep"));
    assert!(err("[limits]\nmessages_burst = 0\n").starts_with("limits.messages_burst"));
}

#[test]
fn log_level_takes_level_words_and_directives_only() {
    for level in [
        "info",
        "WARN",
        "off",
        "mswoole=debug,info",
        "mswoole::plugins=trace",
    ] {
        assert!(
            parse(&format!("[log]\nlevel = \"{level}\"\n")).is_ok(),
            "{level}"
        );
    }
    for level in ["inof", "info,verbose", "mswoole=loud", "mswoole"] {
        let e = err(&format!("[log]\nlevel = \"{level}\"\n"));
        assert!(e.starts_with("log.level"), "{level}: {e}");
    }
    let c = parse("[log]\nrotate = \"never\"\nkeep = 3\n").expect("log section");
    assert_eq!((c.log.rotate, c.log.keep), (Rotate::Never, 3));
}

#[test]
fn relative_paths_resolve_against_base() {
    let c = parse("[plugins]\ndir = \"../target/debug\"\n[runtime]\ndir = \"/var/run/ms\"\n")
        .expect("paths");
    assert_eq!(c.plugins.dir, Some(base().join("../target/debug")));
    assert_eq!(c.runtime.dir, PathBuf::from("/var/run/ms"));
}

#[test]
fn node_id_default_and_validation() {
    let c = parse("").expect("defaults");
    let id = c.node_id(20000);
    assert!(id.ends_with(":20000"), "{id}");
    assert!(id.chars().all(node_id_char), "{id}");
    let c = parse("[registry]\nnode_id = \"edge-1.eu:a_b\"\n").expect("node id");
    assert_eq!(c.node_id(20000), "edge-1.eu:a_b");
    assert!(err("[registry]\nnode_id = \"a b\"\n").starts_with("registry.node_id"));
    assert!(err("[registry]\nnode_id = \"\"\n").starts_with("registry.node_id"));
}

#[test]
fn manager_host_needs_token_off_loopback() {
    for host in ["127.0.0.1", "::1", "[::1]", "localhost", "127.1.2.3"] {
        assert!(
            parse(&format!("[manager]\nhost = \"{host}\"\n")).is_ok(),
            "{host}"
        );
    }
    for host in ["0.0.0.0", "10.1.2.3", "::", "example.org"] {
        let e = err(&format!("[manager]\nhost = \"{host}\"\n"));
        assert!(e.starts_with("manager.host"), "{e}");
    }
    assert!(parse("[manager]\nhost = \"0.0.0.0\"\ntoken = \"s3cret\"\n").is_ok());
    assert!(err("[manager]\ntoken = \"\"\n").starts_with("manager.token"));
}

#[test]
fn module_config_is_case_insensitive_json() {
    let c = parse(
        "[modules.Live]\nrooms = 3\nratio = 0.5\ntags = [\"a\", 1]\nwhen = 1979-05-27T07:32:00Z\n\
         [modules.Live.redis]\non = true\n",
    )
    .expect("modules");
    let want = json!({
        "rooms": 3, "ratio": 0.5, "tags": ["a", 1], "when": "1979-05-27T07:32:00Z",
        "redis": {"on": true}
    });
    assert_eq!(c.module_config("live"), want);
    assert_eq!(c.module_config("LIVE"), want);
    assert_eq!(c.module_config("Index"), json!({}));
    assert!(err("[modules.index]\n[modules.Index]\n").contains("defined twice"));
    assert!(err("[modules]\nIndex = 1\n").starts_with("modules.Index:"));
}

#[test]
fn shipped_file_is_the_defaults() {
    let text = include_str!("../../../config/app.toml");
    let mut c = parse(text).expect("config/app.toml must parse");
    assert_eq!(c.module_config("index"), json!({"debug_actions": false}));
    assert!(
        !c.demo.enabled,
        "the demo mints tokens: never on in the shipped file"
    );
    c.modules.clear();
    assert_eq!(format!("{c:?}"), format!("{:?}", Config::defaults(&base())));
}

/// A 2048-bit RSA public key made for these tests (`openssl genpkey`, then `openssl pkey -pubout`).
const PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqyK8jUpgVpt9kvOwXgjc
6vBZsKPqj10tB4FZi4msKOY9iwXkbz/aZwDI5tOfKlzQ0EnrpyO6XZFeSGGRQhfW
Md1/aFbuJOVtQu0759VufwUThFj5B6lBm//GY2On5ZXRMOgUaWjESj/dAnfCX3XB
4frHHngMWwGuMwDxE87PtplSXW2P/mSPypb+TNg6MafncBW5mjAy6xGZd4Mx7Djx
NSirLR88v+R3yAulOKPU1X4aKPvZNmYAg3IQQQkLhzUm3Ap7k/WoN1IbKM+TDMjI
rO5GivgY78dV2GoJWY0qcOqX5Tx+g9KlATfbh9+6vlsdPulZxvEGWMsWG+Jp8FAm
IQIDAQAB
-----END PUBLIC KEY-----
";

#[test]
fn previous_keys_come_with_an_rfc_3339_date() {
    let c = parse(
        "[auth]\nprevious_key = \"old\"\nprevious_key_until = 2026-07-01T08:00:00+08:00\n\
         [auth.jwt]\nprevious_hs256_key = \"old\"\nprevious_until = \"2026-07-01T00:00:00Z\"",
    )
    .expect("both date forms");
    assert_eq!(
        c.auth.previous_key_until, c.auth.jwt.previous_until,
        "the same moment"
    );
    assert_eq!(
        c.auth.jwt.previous_until.map(|until| until.text()),
        Some("2026-07-01T00:00:00Z".into())
    );
    assert!(
        c.auth.jwt.is_on(),
        "a previous HS256 key alone still takes its tokens"
    );
    for (text, key) in [
        (
            "[auth]\nprevious_key = \"old\"",
            "auth.previous_key needs auth.previous_key_until",
        ),
        (
            "[auth]\nprevious_key_until = 2026-07-01T00:00:00Z",
            "auth.previous_key_until is set without auth.previous_key",
        ),
        (
            "[auth]\nprevious_key = \" \"\nprevious_key_until = 2026-07-01T00:00:00Z",
            "auth.previous_key must not be empty",
        ),
        (
            "[auth.jwt]\nprevious_hs256_key = \"old\"",
            "auth.jwt.previous_hs256_key needs auth.jwt.previous_until",
        ),
        (
            "[auth.jwt]\nprevious_until = 2026-07-01T00:00:00Z",
            "auth.jwt.previous_until is set without auth.jwt.previous_hs256_key",
        ),
        (
            "[auth.jwt]\naudience = \"\"",
            "auth.jwt.audience must not be empty",
        ),
        (
            "[auth.jwt]\nleeway_s = 3601",
            "auth.jwt.leeway_s must be at most 3600",
        ),
    ] {
        let e = err(text);
        assert!(e.starts_with(key), "{text}: {e}");
    }
    // Dates: no offset, not a date, not text.
    for (value, says) in [
        ("2026-07-01T00:00:00", "not an RFC 3339 date"),
        ("\"next tuesday\"", "`next tuesday` is not an RFC 3339 date"),
        ("\"2026-07-01\"", "not an RFC 3339 date"),
        ("20260701", "expected an RFC 3339 date"),
    ] {
        for key in ["auth.previous_key_until", "auth.jwt.previous_until"] {
            let (section, name) = key.rsplit_once('.').expect("a dotted key");
            let e = err(&format!("[{section}]\n{name} = {value}"));
            assert!(
                e.starts_with(&format!("{key}: ")) && e.contains(says),
                "{value}: {e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }
}

#[test]
fn the_rs256_public_key_file_is_read_relative_to_the_config() {
    let dir = std::env::temp_dir().join(format!("mswoole-jwt-config-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("keys")).expect("temp dir");
    let file = dir.join("app.toml");
    let load = |text: &str| {
        std::fs::write(&file, text).expect("write");
        Config::load(&file)
    };
    std::fs::write(dir.join("keys/public.pem"), PUBLIC_PEM).expect("write");
    let c = load("[auth.jwt]\nrs256_public_key_file = \"keys/public.pem\"").expect("a public key");
    assert_eq!(
        c.auth.jwt.rs256_public_key_file,
        Some(dir.join("keys/public.pem"))
    );
    assert!(c.auth.jwt.rs256_public_key.is_some() && c.auth.jwt.is_on());
    assert_eq!(c.file.as_deref(), Some(file.as_path()));

    let refused = |pem: Option<&str>, says: &str| {
        let at = dir.join("keys/other.pem");
        let _ = std::fs::remove_file(&at);
        if let Some(pem) = pem {
            std::fs::write(&at, pem).expect("write");
        }
        let e = load("[auth.jwt]\nrs256_public_key_file = \"keys/other.pem\"")
            .expect_err("refused")
            .to_string();
        let named = format!(
            "{}: auth.jwt.rs256_public_key_file: {}: ",
            file.display(),
            at.display()
        );
        assert!(e.starts_with(&named) && e.contains(says), "{e}");
        assert!(!e.contains('\n'), "{e}");
    };
    refused(None, "cannot read");
    refused(Some("not a key"), "not a PEM public key");
    let private = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    refused(Some(private), "holds a private key");
    let broken = PUBLIC_PEM.replace("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A", "AAAA");
    refused(Some(&broken), "not an RSA public key");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, String> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::build_with_env(text, &base(), &env)
}

#[test]
fn databases_default_and_named() {
    let default_url = format!(
        "sqlite://{}",
        base().join("runtime/mswoole.sqlite3").display()
    );
    let c = parse_env("", &[]).expect("defaults");
    assert_eq!(c.databases.len(), 1);
    let db = &c.databases["default"];
    assert_eq!(db.url, default_url);
    assert_eq!(
        (db.max_connections, db.timeout_ms, db.prefix.as_str()),
        (10, 3000, "")
    );
    assert_eq!(c.dir, base());
    // Naming other databases keeps `default`; unset keys keep their defaults.
    let c = parse_env(
        "[runtime]\ndir = \"/var/ms\"\n[databases.main]\nurl = \"mysql://app:pw@db:3306/live\"\ntimeout_ms = 500\nprefix = \"kfw_\"\n",
        &[],
    )
    .expect("named");
    assert_eq!(
        c.databases["default"].url,
        "sqlite:///var/ms/mswoole.sqlite3"
    );
    let main = &c.databases["main"];
    assert_eq!(
        (main.timeout_ms, main.max_connections, main.prefix.as_str()),
        (500, 10, "kfw_")
    );
    // A `default` the file defines is kept as written.
    let c =
        parse_env("[databases.default]\nurl = \"postgres://u@h/d\"\n", &[]).expect("own default");
    assert_eq!(c.databases["default"].url, "postgres://u@h/d");
    // `{:?}` never shows a password.
    let shown = format!(
        "{:?}",
        parse_env("[databases.x]\nurl = \"mysql://a:hunter2@h/d\"\n", &[]).expect("x")
    );
    assert!(
        !shown.contains("hunter2") && shown.contains("mysql://a:***@h/d"),
        "{shown}"
    );
}

#[test]
fn database_urls_come_from_the_environment() {
    let c = parse_env(
        "[databases.main]\nurl = \"mysql://a:b@h/d\"\n",
        &[
            ("MSWOOLE_DATABASES_MAIN_URL", "postgres://env@h/main"),
            ("MSWOOLE_DATABASES_EXTRA_URL", "sqlite://extra.db"),
            ("MSWOOLE_DATABASES_DEFAULT_URL", "sqlite:///tmp/d.db"),
            ("MSWOOLE_DATABASES__URL", "sqlite://ignored.db"),
            ("OTHER", "x"),
        ],
    )
    .expect("env");
    assert_eq!(c.databases["main"].url, "postgres://env@h/main");
    assert_eq!(c.databases["extra"].url, "sqlite://extra.db");
    assert_eq!(c.databases["default"].url, "sqlite:///tmp/d.db");
    assert_eq!(c.databases.len(), 3);
    // A bad URL from the environment is named like one from the file.
    let e =
        parse_env("", &[("MSWOOLE_DATABASES_DEFAULT_URL", "sqlite::memory:")]).expect_err("memory");
    assert!(
        e.starts_with("databases.default.url: sqlite::memory: is refused"),
        "{e}"
    );
}

#[test]
fn database_errors_name_the_key() {
    let e = parse_env("[databases.main]\nurl = \"mongodb://u:pw@h/d\"\n", &[]).expect_err("scheme");
    assert!(
        e.starts_with("databases.main.url: ") && !e.contains("pw@"),
        "{e}"
    );
    let e = parse_env("[databases.main]\nurl = \"sqlite::memory:\"\n", &[]).expect_err("memory");
    assert!(
        e.starts_with("databases.main.url: sqlite::memory: is refused"),
        "{e}"
    );
    let e = parse_env("[databases.main]\nprefix = \"x\"\n", &[]).expect_err("no url");
    assert!(
        e.starts_with("databases.main.url is required (or set MSWOOLE_DATABASES_MAIN_URL)"),
        "{e}"
    );
    let e = parse_env(
        "[databases.main]\nurl = \"sqlite://a.db\"\nmax_conections = 3\n",
        &[],
    )
    .expect_err("key");
    assert!(
        e.starts_with("databases.main.max_conections: unknown key"),
        "{e}"
    );
    let e = parse_env(
        "[databases.main]\nurl = \"sqlite://a.db\"\ntimeout_ms = \"fast\"\n",
        &[],
    )
    .expect_err("type");
    assert!(
        e.starts_with("databases.main.timeout_ms: invalid type"),
        "{e}"
    );
    let e = parse_env(
        "[databases.main]\nurl = \"sqlite://a.db\"\nmax_connections = 0\n",
        &[],
    )
    .expect_err("zero");
    assert_eq!(e, "databases.main.max_connections must be greater than 0");
    let e = parse_env(
        "[databases.main]\nurl = \"sqlite://a.db\"\ntimeout_ms = 0\n",
        &[],
    )
    .expect_err("zero");
    assert_eq!(e, "databases.main.timeout_ms must be greater than 0");
    let e = parse_env("[databases.my-db]\nurl = \"sqlite://a.db\"\n", &[]).expect_err("name");
    assert!(
        e.starts_with("databases.my-db: a database name uses only"),
        "{e}"
    );
    let e = parse_env(
        "[databases.Main]\nurl = \"sqlite://a.db\"\n[databases.main]\nurl = \"sqlite://b.db\"\n",
        &[],
    )
    .expect_err("twice");
    assert!(e.contains("defined twice"), "{e}");
}

#[test]
fn load_prefixes_the_path_and_resolves_against_the_file() {
    let dir = std::env::temp_dir().join(format!("mswoole-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("app.toml");
    std::fs::write(&file, include_str!("../../../config/app.toml")).expect("write");
    let c = Config::load(&file).expect("load");
    assert_eq!(c.runtime.dir, dir.join("runtime"));
    std::fs::write(&file, "[limits]\nouthound_queue = 1\n").expect("write");
    let e = Config::load(&file).expect_err("bad key").to_string();
    assert!(
        e.starts_with(&format!(
            "{}: limits.outhound_queue: unknown key",
            file.display()
        )),
        "{e}"
    );
    let e = Config::load(&dir.join("missing.toml"))
        .expect_err("missing")
        .to_string();
    assert!(e.contains("missing.toml: cannot read"), "{e}");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

mod properties {
    //! The invariants the `config` fuzz target checks (docs/FUZZING.md).
    use proptest::prelude::*;

    use super::super::check::is_loopback;
    use super::*;

    /// Sections and keys the host knows, with values of any TOML type.
    fn toml_text() -> impl Strategy<Value = String> {
        let section = prop_oneof![
            Just("outside"),
            Just("manager"),
            Just("heartbeat"),
            Just("auth"),
            Just("auth.jwt"),
            Just("protocol"),
            Just("limits"),
            Just("registry"),
            Just("plugins"),
            Just("runtime"),
            Just("log"),
            Just("demo"),
            Just("databases.main"),
            Just("modules.Index"),
            Just("nope"),
        ];
        let key = prop_oneof![
            Just("host"),
            Just("port"),
            Just("token"),
            Just("idle_s"),
            Just("key"),
            Just("cipher"),
            Just("iv"),
            Just("previous_key"),
            Just("previous_key_until"),
            Just("hs256_key"),
            Just("previous_hs256_key"),
            Just("previous_until"),
            Just("rs256_public_key_file"),
            Just("audience"),
            Just("leeway_s"),
            Just("max_message_bytes"),
            Just("outbound_queue"),
            Just("outbound_bytes"),
            Just("messages_per_s"),
            Just("messages_burst"),
            Just("backend"),
            Just("url"),
            Just("node_id"),
            Just("node_ttl_s"),
            Just("dir"),
            Just("level"),
            Just("keep"),
            Just("escape_html"),
            Just("max_connections"),
            Just("timeout_ms"),
            Just("x"),
        ];
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (0u32..100).prop_map(|n| n.to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
            Just("nan".to_string()),
            Just("1979-05-27T07:32:00Z".to_string()),
            Just("[1, \"a\"]".to_string()),
            Just("{ a = 1 }".to_string()),
        ];
        prop::collection::vec((section, prop::collection::vec((key, value), 0..5)), 0..6).prop_map(
            |sections| {
                let mut text = String::new();
                for (section, members) in sections {
                    text.push_str(&format!("[{section}]\n"));
                    for (key, value) in members {
                        text.push_str(&format!("{key} = {value}\n"));
                    }
                }
                text
            },
        )
    }

    fn check(text: &str) -> Result<(), TestCaseError> {
        match Config::parse(text, Path::new("/srv/mswoole")) {
            Err(error) => prop_assert!(!error.to_string().contains('\n'), "{}", error),
            Ok(config) => {
                prop_assert!(config.registry.node_ttl_s >= 3);
                prop_assert!(config.limits.max_message_bytes > 0);
                prop_assert!(config.limits.outbound_bytes > 0);
                prop_assert!(config.heartbeat.idle_s > 0);
                prop_assert!(config.runtime.dir.is_absolute());
                prop_assert!(config.plugins.dir.as_deref().is_none_or(Path::is_absolute));
                prop_assert!(config.manager.token.is_some() || is_loopback(&config.manager.host));
                prop_assert!(config.databases.contains_key(DEFAULT_DATABASE));
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_text_is_a_config_or_a_one_line_error(text in any::<String>()) {
            check(&text)?;
        }

        #[test]
        fn any_toml_of_the_hosts_keys_is_a_valid_config_or_a_one_line_error(text in toml_text()) {
            check(&text)?;
        }
    }
}
