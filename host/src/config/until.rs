//! A moment a key stays accepted until (`auth.previous_key_until`, `auth.jwt.previous_until`):
//! an RFC 3339 date with its offset, written as a TOML date (`2026-07-01T00:00:00Z`) or a
//! string (`"2026-07-01T08:00:00+08:00"`). A date without an offset is refused: whose
//! midnight it meant would depend on the host's time zone.

use super::check::non_empty;
use serde::{de::Error as _, Deserialize, Deserializer};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// An RFC 3339 moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Until(OffsetDateTime);

impl Until {
    /// Parses RFC 3339 text; the error says what was expected.
    pub fn parse(text: &str) -> Result<Until, String> {
        OffsetDateTime::parse(text.trim(), &Rfc3339)
            .map(Until)
            .map_err(|error| {
                format!(
                    "`{text}` is not an RFC 3339 date with an offset, such as \
                     2026-07-01T00:00:00Z ({error})"
                )
            })
    }

    /// Whether `now` is still before this moment.
    pub fn is_after(&self, now: OffsetDateTime) -> bool {
        now < self.0
    }

    /// The moment as RFC 3339 text, for logs and answers.
    pub fn text(&self) -> String {
        self.0.format(&Rfc3339).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for Until {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = match toml::Value::deserialize(deserializer)? {
            toml::Value::String(text) => text,
            toml::Value::Datetime(date) => date.to_string(),
            other => {
                return Err(D::Error::custom(format!(
                    "expected an RFC 3339 date such as 2026-07-01T00:00:00Z, found a {}",
                    other.type_str()
                )))
            }
        };
        Until::parse(&text).map_err(D::Error::custom)
    }
}

/// A previous key comes with the date it ends, and a date with its key.
pub fn previous(
    (key_name, key): (&str, Option<&str>),
    (until_name, until): (&str, Option<Until>),
) -> Result<(), String> {
    match (key, until) {
        (Some(key), Some(_)) => non_empty(key_name, key),
        (Some(_), None) => Err(format!(
            "{key_name} needs {until_name}: the RFC 3339 date its tokens stop being accepted, \
             such as 2026-07-01T00:00:00Z"
        )),
        (None, Some(_)) => Err(format!("{until_name} is set without {key_name}")),
        (None, None) => Ok(()),
    }
}
