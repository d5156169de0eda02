//! `?` placeholders: found in a statement and, for PostgreSQL, rewritten to `$1..$n`.
//!
//! Why: modules write one SQL text for every dialect (docs/DATABASES.md), with `?` for each
//! parameter as MySQL and SQLite do; PostgreSQL numbers its parameters. A `?` only counts outside
//! string literals, quoted identifiers and comments, so `WHERE note = 'why?'` has no placeholder.
//! How: one pass over the text that skips what each dialect quotes or comments out.

use std::borrow::Cow;

use super::Dialect;

/// The statement ready for the driver: `?` kept for MySQL and SQLite, `$n` for PostgreSQL.
/// Fails (a `BadStatement`) when the number of placeholders is not `params`.
pub fn bind_text(sql: &str, dialect: Dialect, params: usize) -> Result<Cow<'_, str>, String> {
    let found = positions(sql, dialect);
    if found.len() != params {
        return Err(format!(
            "the statement has {} placeholder(s) and {} parameter(s) were given",
            found.len(),
            params
        ));
    }
    if dialect != Dialect::Postgres || found.is_empty() {
        return Ok(Cow::Borrowed(sql));
    }
    let mut out = String::with_capacity(sql.len() + found.len() * 2);
    let mut from = 0;
    for (n, at) in found.iter().enumerate() {
        out.push_str(&sql[from..*at]);
        out.push('$');
        out.push_str(&(n + 1).to_string());
        from = at + 1;
    }
    out.push_str(&sql[from..]);
    Ok(Cow::Owned(out))
}

/// Byte offsets of every `?` that is a placeholder.
pub fn positions(sql: &str, dialect: Dialect) -> Vec<usize> {
    let bytes = sql.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        i = match bytes[i] {
            b'?' => {
                found.push(i);
                i + 1
            }
            b'\'' => {
                // PostgreSQL's E'…' strings take backslash escapes; MySQL's strings always do.
                let escapes = match dialect {
                    Dialect::Mysql => true,
                    Dialect::Postgres => {
                        i > 0
                            && matches!(bytes[i - 1], b'e' | b'E')
                            && (i < 2 || !is_word(bytes[i - 2]))
                    }
                    Dialect::Sqlite => false,
                };
                skip_quoted(bytes, i, b'\'', escapes)
            }
            b'"' => skip_quoted(bytes, i, b'"', dialect == Dialect::Mysql),
            b'`' => skip_quoted(bytes, i, b'`', false),
            b'[' if dialect == Dialect::Sqlite => skip_until(bytes, i + 1, b"]"),
            b'-' if bytes.get(i + 1) == Some(&b'-') => skip_until(bytes, i + 2, b"\n"),
            b'#' if dialect == Dialect::Mysql => skip_until(bytes, i + 1, b"\n"),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                skip_block_comment(bytes, i + 2, dialect == Dialect::Postgres)
            }
            b'$' if dialect == Dialect::Postgres && (i == 0 || !is_word(bytes[i - 1])) => {
                skip_dollar_quoted(bytes, i)
            }
            _ => i + 1,
        };
    }
    found
}

/// Part of an identifier (a `$` or `E` after one does not start a quote).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Past the quote opened at `start`; a doubled quote is an escaped one, and with `backslash`
/// a backslash escapes the next byte. An unterminated quote runs to the end.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash => i += 2,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Past the first `end` at or after `from` (or to the end).
fn skip_until(bytes: &[u8], from: usize, end: &[u8]) -> usize {
    bytes
        .get(from..)
        .and_then(|rest| rest.windows(end.len()).position(|w| w == end))
        .map_or(bytes.len(), |at| from + at + end.len())
}

/// Past a `/* … */` comment whose body starts at `from`; PostgreSQL's nest.
fn skip_block_comment(bytes: &[u8], from: usize, nested: bool) -> usize {
    let mut depth = 1;
    let mut i = from;
    while i < bytes.len() {
        if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else if nested && bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// Past a PostgreSQL `$tag$ … $tag$` string starting at `start`; a `$` that opens no such
/// string (e.g. `$1`) is skipped alone.
fn skip_dollar_quoted(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    if bytes.get(i).is_some_and(|b| b.is_ascii_digit()) {
        return i;
    }
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80)
    {
        i += 1;
    }
    if bytes.get(i) != Some(&b'$') {
        return start + 1;
    }
    let tag = &bytes[start..=i];
    skip_until(bytes, i + 1, tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(sql: &str, dialect: Dialect) -> usize {
        positions(sql, dialect).len()
    }

    #[test]
    fn placeholders_outside_quotes_and_comments() {
        for d in [Dialect::Mysql, Dialect::Postgres, Dialect::Sqlite] {
            assert_eq!(count("SELECT ?, ?", d), 2, "{d:?}");
            assert_eq!(count("SELECT '?', 'it''s ?', ?", d), 1, "{d:?}");
            assert_eq!(count("SELECT \"a?\" FROM t WHERE x = ?", d), 1, "{d:?}");
            assert_eq!(count("SELECT `a?` FROM t WHERE x = ?", d), 1, "{d:?}");
            assert_eq!(count("SELECT ? -- why?\n, ?", d), 2, "{d:?}");
            assert_eq!(count("SELECT /* ? */ ?", d), 1, "{d:?}");
            assert_eq!(count("SELECT 'unterminated ?", d), 0, "{d:?}");
            assert_eq!(count("SELECT ? /* unterminated ?", d), 1, "{d:?}");
        }
    }

    #[test]
    fn dialect_quirks() {
        // MySQL: backslash escapes in strings, # comments.
        assert_eq!(count(r"SELECT 'a\'?', ?", Dialect::Mysql), 1);
        assert_eq!(count("SELECT ? # what?\n", Dialect::Mysql), 1);
        // PostgreSQL: backslashes are plain except in E'…'; comments nest; dollar quotes.
        assert_eq!(count(r"SELECT 'a\', ?", Dialect::Postgres), 1);
        assert_eq!(count(r"SELECT E'a\'?', ?", Dialect::Postgres), 1);
        assert_eq!(count("SELECT /* a /* ? */ ? */ ?", Dialect::Postgres), 1);
        assert_eq!(count("SELECT $$ ? $$, $x$ ? $x$, ?", Dialect::Postgres), 1);
        assert_eq!(count("SELECT a$b, ?", Dialect::Postgres), 1);
        // SQLite: [identifiers].
        assert_eq!(count("SELECT [a?] FROM t WHERE ? = 1", Dialect::Sqlite), 1);
    }

    #[test]
    fn postgres_gets_numbered_parameters() {
        let sql = "SELECT ?, '?' -- ?\n, ?";
        assert_eq!(
            bind_text(sql, Dialect::Postgres, 2).expect("two"),
            "SELECT $1, '?' -- ?\n, $2"
        );
        assert_eq!(bind_text(sql, Dialect::Mysql, 2).expect("two"), sql);
        let e = bind_text(sql, Dialect::Sqlite, 3).expect_err("mismatch");
        assert!(e.contains("2 placeholder(s) and 3 parameter(s)"), "{e}");
        assert_eq!(
            bind_text("SELECT 'é', ?, ?", Dialect::Postgres, 2).expect("utf8"),
            "SELECT 'é', $1, $2"
        );
    }
}
