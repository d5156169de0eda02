//! Database URLs: which dialect, where, and how to print one without its password.
//!
//! Why here and not in sqlx: the config must refuse a bad URL at start-up naming the key
//! (docs/DATABASES.md, "Config"), SQLite paths are relative to the config file's directory rather than
//! to the working directory, and `sqlite::memory:` is refused because every pooled connection
//! would get a database of its own. Everything else is checked by sqlx's own URL parsers.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;

/// Where a configured database lives.
#[derive(Debug, Clone)]
pub enum Address {
    /// A MySQL or MariaDB server.
    Mysql(MySqlConnectOptions),
    /// A PostgreSQL server.
    Postgres(PgConnectOptions),
    /// A SQLite file, absolute.
    Sqlite(PathBuf),
}

/// Parses `url`; relative SQLite paths resolve against `base`. The error names no key (the caller
/// adds it) and never contains the password.
pub fn parse(url: &str, base: &Path) -> Result<Address, String> {
    let url = url.trim();
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => sqlite_path(url, base).map(Address::Sqlite),
        "mysql" | "mariadb" => {
            require_host(url)?;
            let url = url.replacen(scheme, "mysql", 1);
            MySqlConnectOptions::from_str(&url)
                .map(Address::Mysql)
                .map_err(|e| hide(&e.to_string(), &url))
        }
        "postgres" | "postgresql" => {
            require_host(url)?;
            PgConnectOptions::from_str(url)
                .map(Address::Postgres)
                .map_err(|e| hide(&e.to_string(), url))
        }
        _ => Err(format!(
            "{:?} is not a database URL: use mysql://USER:PASS@HOST:PORT/DB, postgres://…, \
             sqlite://RELATIVE/PATH or sqlite:///ABSOLUTE/PATH",
            redact(url)
        )),
    }
}

/// A server URL must name its host: sqlx would otherwise quietly use a local socket default.
fn require_host(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => Err(format!("{:?} names no host", redact(url))),
        Err(e) => Err(format!("{:?} is not a valid URL: {e}", redact(url))),
    }
}

/// `sqlite://REL` (against `base`) or `sqlite:///ABS`; no options, no in-memory database.
fn sqlite_path(url: &str, base: &Path) -> Result<PathBuf, String> {
    if url.eq_ignore_ascii_case("sqlite::memory:")
        || url.contains(":memory:")
        || url.contains("mode=memory")
    {
        return Err(
            "sqlite::memory: is refused: each pooled connection would get its own empty \
                    database; use a file, e.g. sqlite://runtime/app.sqlite3"
                .into(),
        );
    }
    let prefix = "sqlite://";
    let Some(rest) = url
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .and_then(|_| url.get(prefix.len()..))
    else {
        return Err(format!(
            "{url:?}: write sqlite://RELATIVE/PATH (to the config file's directory) or sqlite:///ABSOLUTE/PATH"
        ));
    };
    if rest.contains('?') {
        return Err(format!(
            "{url:?}: options are not accepted (the host sets WAL and the busy timeout itself)"
        ));
    }
    if rest.is_empty() || rest.ends_with('/') {
        return Err(format!("{url:?} names no file"));
    }
    let path = Path::new(rest);
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    })
}

/// `url` as it may be logged: the password replaced by `***`. Something that does not parse is
/// shown as its scheme only, since where its password would be cannot be known.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
                return format!("{}://***", parsed.scheme());
            }
            parsed.to_string()
        }
        Err(_) => {
            let scheme = url.split_once(':').map_or("", |(s, _)| s);
            if url.contains('@') {
                format!("{scheme}://***")
            } else {
                url.to_string()
            }
        }
    }
}

/// `text` (an error from a URL parser) with the URL's password, if any, replaced by `***`.
fn hide(text: &str, url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    {
        Some(password) if !password.is_empty() => text.replace(&password, "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> PathBuf {
        PathBuf::from("/srv/ms/config")
    }

    #[test]
    fn sqlite_paths_resolve_against_the_config_directory() {
        let Ok(Address::Sqlite(p)) = parse("sqlite://data/app.sqlite3", &base()) else {
            panic!("relative sqlite URL refused");
        };
        assert_eq!(p, base().join("data/app.sqlite3"));
        let Ok(Address::Sqlite(p)) = parse("sqlite:///var/lib/ms.db", &base()) else {
            panic!("absolute sqlite URL refused");
        };
        assert_eq!(p, PathBuf::from("/var/lib/ms.db"));
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        let e = parse("sqlite::memory:", &base()).expect_err("memory");
        assert!(e.contains("each pooled connection"), "{e}");
        assert!(parse("sqlite:app.db", &base()).is_err());
        assert!(parse("sqlite://", &base()).is_err());
        assert!(parse("sqlite://a.db?mode=ro", &base()).is_err());
        let e = parse("redis://u:pw@h/", &base()).expect_err("scheme");
        assert!(e.contains("not a database URL") && !e.contains("pw"), "{e}");
        let e = parse("mysql:///db", &base()).expect_err("no host");
        assert!(e.contains("no host"), "{e}");
        assert!(parse("postgres://u:secret@127.0.0.1:notaport/db", &base())
            .expect_err("port")
            .contains("not a valid URL"));
        assert!(matches!(
            parse("mysql://u:p@127.0.0.1:3307/db", &base()),
            Ok(Address::Mysql(_))
        ));
        assert!(matches!(
            parse("postgresql://u@localhost/db", &base()),
            Ok(Address::Postgres(_))
        ));
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("mysql://app:s3cret@db:3306/live"),
            "mysql://app:***@db:3306/live"
        );
        assert_eq!(redact("postgres://app@db/live"), "postgres://app@db/live");
        assert_eq!(redact("sqlite:///x/y.db"), "sqlite:///x/y.db");
        assert_eq!(redact("mysql://app:s3cret@db:notaport/x"), "mysql://***");
        assert!(!redact("postgres://a:p%40ss@h/d").contains("p%40ss"));
    }
}
