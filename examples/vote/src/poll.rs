//! A poll as read from its row, its counts, and the params clients are sent.

use mswoole_plugin_api::{
    serde_json::{json, Value},
    Row,
};

/// One poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    /// Its id, the row's.
    pub id: i64,
    /// The room it belongs to.
    pub code: String,
    /// The question.
    pub title: String,
    /// The answers; a vote is an index into them.
    pub options: Vec<String>,
    /// Unix second at which it closes.
    pub closes_at: i64,
    /// Not closed yet (it may be past `closes_at` and not swept yet).
    pub open: bool,
    /// When the last tally went out, unix milliseconds (0: none yet).
    pub tallied_ms: i64,
    /// The total that tally carried.
    pub tallied_total: i64,
}

/// The votes of a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Votes per option, in the poll's order.
    pub per_option: Vec<i64>,
    /// Every vote.
    pub total: i64,
}

/// An integer column (a boolean reads as 0 or 1).
fn integer(row: &Row, column: &str) -> Result<i64, String> {
    match row.get(column) {
        Some(Value::Bool(flag)) => Ok(i64::from(*flag)),
        Some(value) => value
            .as_i64()
            .ok_or_else(|| format!("column {column} is not an integer: {value}")),
        None => Err(format!("column {column} is missing")),
    }
}

/// A text column.
fn text(row: &Row, column: &str) -> Result<String, String> {
    row.get(column)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("column {column} is not text"))
}

impl Poll {
    /// A poll from a row of `SELECT` [`crate::store::POLL_COLUMNS`].
    pub fn from_row(row: &Row) -> Result<Poll, String> {
        let options = text(row, "options")?;
        let options: Vec<String> = mswoole_plugin_api::serde_json::from_str(&options)
            .map_err(|e| format!("column options is not a JSON list of text: {e}"))?;
        Ok(Poll {
            id: integer(row, "id")?,
            code: text(row, "code")?,
            title: text(row, "title")?,
            options,
            closes_at: integer(row, "closes_at")?,
            open: integer(row, "open")? != 0,
            tallied_ms: integer(row, "tallied_ms")?,
            tallied_total: integer(row, "tallied_total")?,
        })
    }

    /// When it closes, in unix milliseconds.
    pub fn closes_ms(&self) -> i64 {
        self.closes_at.saturating_mul(1000)
    }

    /// Its time is up at `now_ms`: votes are refused, and the next sweep closes it.
    pub fn due(&self, now_ms: i64) -> bool {
        now_ms >= self.closes_ms()
    }

    /// Counts from `(option, votes)` pairs; options the poll does not have are left out.
    pub fn counts(&self, votes: impl IntoIterator<Item = (i64, i64)>) -> Counts {
        let mut per_option = vec![0; self.options.len()];
        for (option, n) in votes {
            if let Some(slot) = usize::try_from(option)
                .ok()
                .and_then(|index| per_option.get_mut(index))
            {
                *slot += n;
            }
        }
        let total = per_option.iter().sum();
        Counts { per_option, total }
    }

    /// `{poll, title, options, closes_at}`: `voteOpened` and `voteOpenSuccess`.
    pub fn opened(&self) -> Value {
        json!({
            "poll": self.id,
            "title": self.title,
            "options": self.options,
            "closes_at": self.closes_at,
        })
    }

    /// `{poll, counts, total}`: `voteTally`.
    pub fn tally(&self, counts: &Counts) -> Value {
        json!({"poll": self.id, "counts": counts.per_option, "total": counts.total})
    }

    /// `{poll, title, options, counts, total}`: `voteClosed`.
    pub fn closed(&self, counts: &Counts) -> Value {
        json!({
            "poll": self.id,
            "title": self.title,
            "options": self.options,
            "counts": counts.per_option,
            "total": counts.total,
        })
    }

    /// `voteClosed`'s param plus `open`: `voteResult`.
    pub fn result(&self, counts: &Counts) -> Value {
        let mut result = self.closed(counts);
        result["open"] = Value::Bool(self.open);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll() -> Poll {
        Poll {
            id: 3,
            code: "demo".into(),
            title: "Tea?".into(),
            options: vec!["yes".into(), "no".into(), "later".into()],
            closes_at: 100,
            open: true,
            tallied_ms: 0,
            tallied_total: 0,
        }
    }

    #[test]
    fn reads_a_row_in_any_dialect() {
        let row = json!({"id": 3, "code": "demo", "title": "Tea?", "options": "[\"yes\",\"no\",\"later\"]",
            "closes_at": 100, "open": 1, "tallied_ms": 0, "tallied_total": 0});
        let Value::Object(row) = row else {
            unreachable!()
        };
        assert_eq!(Poll::from_row(&row), Ok(poll()));
        let mut closed = row.clone();
        closed.insert("open".into(), json!(false));
        assert!(!Poll::from_row(&closed).expect("a boolean open").open);
        closed.insert("options".into(), json!("yes"));
        assert!(Poll::from_row(&closed).is_err());
    }

    #[test]
    fn counts_cover_every_option_and_nothing_else() {
        let counts = poll().counts([(2, 5), (0, 1), (7, 9), (-1, 9)]);
        assert_eq!(
            counts,
            Counts {
                per_option: vec![1, 0, 5],
                total: 6
            }
        );
    }

    #[test]
    fn due_from_the_first_millisecond_of_closes_at() {
        assert!(!poll().due(99_999));
        assert!(poll().due(100_000));
    }

    #[test]
    fn params_carry_what_the_contract_names() {
        let poll = poll();
        let counts = poll.counts([(0, 2)]);
        assert_eq!(
            poll.opened(),
            json!({"poll": 3, "title": "Tea?", "options": ["yes", "no", "later"], "closes_at": 100})
        );
        assert_eq!(
            poll.tally(&counts),
            json!({"poll": 3, "counts": [2, 0, 0], "total": 2})
        );
        assert_eq!(
            poll.result(&counts),
            json!({"poll": 3, "title": "Tea?", "options": ["yes", "no", "later"],
                "counts": [2, 0, 0], "total": 2, "open": true})
        );
    }
}
