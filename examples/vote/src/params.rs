//! What the client sent: `title`, `options`, `seconds`, `option` and `poll`.
//!
//! Numbers are JSON integers (not their text, not `1.0`); anything missing or out of
//! its bounds is 401 `badParameter` naming the parameter. Bounds that need the poll
//! (an `option` beyond its options) are checked later, with the poll.

use mswoole_plugin_api::{serde_json::Value, ModuleError};

/// Fewest options a poll has.
pub const MIN_OPTIONS: usize = 2;
/// Most options a poll has.
pub const MAX_OPTIONS: usize = 10;
/// Shortest poll, in seconds.
pub const MIN_SECONDS: i64 = 5;
/// Longest poll, in seconds.
pub const MAX_SECONDS: i64 = 3600;

/// What `vote.wall.open` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// The question.
    pub title: String,
    /// The answers, in the order they are shown and indexed.
    pub options: Vec<String>,
    /// How long the poll stays open.
    pub seconds: i64,
}

/// A JSON integer, or `None` for anything else.
fn integer(message: &Value, name: &str) -> Option<i64> {
    message.get(name).and_then(Value::as_i64)
}

/// A string with something in it besides white space.
fn text(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text.clone()),
        _ => None,
    }
}

/// `{title, options, seconds}` of `vote.wall.open`: a non-blank title, 2 to 10
/// non-blank options, 5 to 3600 seconds.
pub fn opening(message: &Value) -> Result<Opening, ModuleError> {
    let title = text(message.get("title")).ok_or_else(|| ModuleError::bad_parameter("title"))?;
    let options = match message.get("options") {
        Some(Value::Array(options)) if (MIN_OPTIONS..=MAX_OPTIONS).contains(&options.len()) => {
            options
                .iter()
                .map(|option| text(Some(option)))
                .collect::<Option<Vec<String>>>()
        }
        _ => None,
    }
    .ok_or_else(|| ModuleError::bad_parameter("options"))?;
    let seconds = integer(message, "seconds")
        .filter(|seconds| (MIN_SECONDS..=MAX_SECONDS).contains(seconds))
        .ok_or_else(|| ModuleError::bad_parameter("seconds"))?;
    Ok(Opening {
        title,
        options,
        seconds,
    })
}

/// `option` of `vote.user.cast`: an integer (whether the poll has it is checked with the poll).
pub fn option(message: &Value) -> Result<i64, ModuleError> {
    integer(message, "option").ok_or_else(|| ModuleError::bad_parameter("option"))
}

/// `poll` of `vote.wall.result`: a poll id, a positive integer.
pub fn poll(message: &Value) -> Result<i64, ModuleError> {
    integer(message, "poll")
        .filter(|poll| *poll > 0)
        .ok_or_else(|| ModuleError::bad_parameter("poll"))
}

#[cfg(test)]
mod tests {
    use mswoole_plugin_api::serde_json::json;

    use super::*;

    fn open(title: Value, options: Value, seconds: Value) -> Result<Opening, ModuleError> {
        opening(&json!({"title": title, "options": options, "seconds": seconds}))
    }

    #[test]
    fn an_opening_has_a_title_2_to_10_options_and_5_to_3600_seconds() {
        assert_eq!(
            open(json!("Tea?"), json!(["yes", "no"]), json!(5)),
            Ok(Opening {
                title: "Tea?".into(),
                options: vec!["yes".into(), "no".into()],
                seconds: 5
            })
        );
        let ten: Vec<String> = (0..10).map(|n| n.to_string()).collect();
        assert!(open(json!("t"), json!(ten), json!(3600)).is_ok());
    }

    #[test]
    fn a_bad_opening_names_the_first_bad_parameter() {
        let bad = |name| Err(ModuleError::bad_parameter(name));
        let two = json!(["a", "b"]);
        assert_eq!(open(json!(""), two.clone(), json!(60)), bad("title"));
        assert_eq!(open(json!(" "), two.clone(), json!(60)), bad("title"));
        assert_eq!(open(json!(1), two.clone(), json!(60)), bad("title"));
        assert_eq!(
            opening(&json!({"options": two, "seconds": 60})),
            bad("title")
        );
        let eleven: Vec<String> = (0..11).map(|n| n.to_string()).collect();
        for options in [
            json!(["only"]),
            json!(eleven),
            json!(["a", ""]),
            json!(["a", 2]),
            json!("a,b"),
            json!(null),
        ] {
            assert_eq!(
                open(json!("t"), options.clone(), json!(60)),
                bad("options"),
                "{options}"
            );
        }
        for seconds in [
            json!(4),
            json!(3601),
            json!("60"),
            json!(60.0),
            json!(-60),
            json!(null),
        ] {
            assert_eq!(
                open(json!("t"), two.clone(), seconds.clone()),
                bad("seconds"),
                "{seconds}"
            );
        }
    }

    #[test]
    fn option_and_poll_are_json_integers() {
        assert_eq!(option(&json!({"option": 0})), Ok(0));
        assert_eq!(
            option(&json!({"option": -1})),
            Ok(-1),
            "range is the poll's to check"
        );
        assert_eq!(poll(&json!({"poll": 7})), Ok(7));
        for bad in [
            json!("1"),
            json!(1.0),
            json!(null),
            json!([1]),
            json!(u64::MAX),
        ] {
            assert_eq!(
                option(&json!({ "option": bad })),
                Err(ModuleError::bad_parameter("option")),
                "{bad}"
            );
            assert_eq!(
                poll(&json!({ "poll": bad })),
                Err(ModuleError::bad_parameter("poll")),
                "{bad}"
            );
        }
        assert_eq!(
            poll(&json!({"poll": 0})),
            Err(ModuleError::bad_parameter("poll"))
        );
    }
}
