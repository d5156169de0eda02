//! What the client sent: `say`, `id`, `status`, `type`, `page` and `count`.
//!
//! Numbers are accepted as JSON numbers or as decimal strings (MSwoole's PHP clients
//! send both). A missing or bad `say` or `id` is 401 `badParameter`; a bad history
//! `type` is 401 `typeError`; a bad `page` or `count` falls back to its default.

use mswoole_plugin_api::{serde_json::Value, ModuleError};

/// Most messages one history page holds.
pub const MAX_COUNT: u64 = 20;

/// Messages one history page holds when the client does not say.
pub const DEFAULT_COUNT: u64 = 10;

/// An integer sent as a JSON number or a decimal string.
fn integer(value: Option<&Value>) -> Option<i128> {
    match value? {
        Value::Number(number) => number
            .as_i64()
            .map(i128::from)
            .or_else(|| number.as_u64().map(i128::from)),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// `say`: a string with something in it.
pub fn say(message: &Value) -> Result<String, ModuleError> {
    match message.get("say") {
        Some(Value::String(say)) if !say.trim().is_empty() => Ok(say.clone()),
        _ => Err(ModuleError::bad_parameter("say")),
    }
}

/// `id`: a message id, a positive integer.
pub fn id(message: &Value) -> Result<i64, ModuleError> {
    integer(message.get("id"))
        .and_then(|id| i64::try_from(id).ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| ModuleError::bad_parameter("id"))
}

/// `status` of `live.wall.check`: 1 approves, anything else (or nothing) drops the message.
pub fn approved(message: &Value) -> bool {
    integer(message.get("status")) == Some(1)
}

/// `type` of `live.wall.history`: which messages the screen asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryKind {
    /// `wall`: the stored wall messages that were not recalled.
    Wall,
    /// `user`: the moderation queue.
    User,
}

/// `type` of `live.wall.history`, or 401 `typeError`.
pub fn history_kind(message: &Value) -> Result<HistoryKind, ModuleError> {
    match message.get("type").and_then(Value::as_str) {
        Some("wall") => Ok(HistoryKind::Wall),
        Some("user") => Ok(HistoryKind::User),
        _ => Err(ModuleError::refused(
            401,
            "typeError",
            "类型错误, type 应为 wall 或 user",
        )),
    }
}

/// One page of a history: `page` starts at 1, `count` is clamped to 1..=[`MAX_COUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The page number, from 1.
    pub number: u64,
    /// Messages per page.
    pub count: u64,
}

impl Page {
    /// `page` (default and fallback 1) and `count` (default [`DEFAULT_COUNT`]) of a message.
    pub fn of(message: &Value) -> Page {
        let number = integer(message.get("page"))
            .filter(|page| *page >= 1)
            .map_or(1, |page| u64::try_from(page).unwrap_or(u64::MAX));
        let count = integer(message.get("count")).map_or(DEFAULT_COUNT, |count| {
            // Clamped in i128 first, so the cast to u64 cannot fail.
            u64::try_from(count.clamp(1, i128::from(MAX_COUNT))).unwrap_or(MAX_COUNT)
        });
        Page { number, count }
    }

    /// This page of `items`, which are already in the order they are shown.
    pub fn of_items<T>(self, items: impl IntoIterator<Item = T>) -> Vec<T> {
        let skip = self.number.saturating_sub(1).saturating_mul(self.count);
        items
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(self.count).unwrap_or(usize::MAX))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use mswoole_plugin_api::serde_json::json;

    use super::*;

    fn page(message: Value) -> (u64, u64) {
        let page = Page::of(&message);
        (page.number, page.count)
    }

    #[test]
    fn say_must_be_a_non_blank_string() {
        assert_eq!(say(&json!({"say": "hi"})), Ok("hi".into()));
        for bad in [
            json!({}),
            json!({"say": 5}),
            json!({"say": ""}),
            json!({"say": "  "}),
        ] {
            assert_eq!(say(&bad), Err(ModuleError::bad_parameter("say")), "{bad}");
        }
    }

    #[test]
    fn ids_are_positive_integers_or_their_decimal_text() {
        assert_eq!(id(&json!({"id": 7})), Ok(7));
        assert_eq!(id(&json!({"id": "7"})), Ok(7));
        for bad in [
            json!({}),
            json!({"id": 0}),
            json!({"id": -1}),
            json!({"id": 1.5}),
            json!({"id": "x"}),
            json!({"id": [1]}),
            json!({"id": u64::MAX}),
        ] {
            assert_eq!(id(&bad), Err(ModuleError::bad_parameter("id")), "{bad}");
        }
    }

    #[test]
    fn only_status_one_approves() {
        assert!(approved(&json!({"status": 1})));
        assert!(approved(&json!({"status": "1"})));
        for dropped in [
            json!({}),
            json!({"status": 0}),
            json!({"status": 2}),
            json!({"status": "yes"}),
        ] {
            assert!(!approved(&dropped), "{dropped}");
        }
    }

    #[test]
    fn history_type_is_wall_or_user() {
        assert_eq!(
            history_kind(&json!({"type": "wall"})),
            Ok(HistoryKind::Wall)
        );
        assert_eq!(
            history_kind(&json!({"type": "user"})),
            Ok(HistoryKind::User)
        );
        for bad in [json!({}), json!({"type": "Wall"}), json!({"type": 1})] {
            assert!(
                matches!(history_kind(&bad), Err(ModuleError::Refused { status: 401, ref event, .. }) if event.as_str() == "typeError"),
                "{bad}"
            );
        }
    }

    #[test]
    fn page_defaults_to_1_and_count_to_10() {
        assert_eq!(page(json!({})), (1, 10));
        assert_eq!(page(json!({"page": 3, "count": 5})), (3, 5));
        assert_eq!(page(json!({"page": "3", "count": "5"})), (3, 5));
    }

    #[test]
    fn bad_pages_are_page_1() {
        for bad in [
            json!(0),
            json!(-2),
            json!("x"),
            json!(1.5),
            json!(null),
            json!([2]),
        ] {
            assert_eq!(page(json!({ "page": bad })).0, 1, "page {bad}");
        }
    }

    #[test]
    fn count_is_clamped_to_1_through_20() {
        assert_eq!(page(json!({"count": 0})).1, 1);
        assert_eq!(page(json!({"count": -5})).1, 1);
        assert_eq!(page(json!({"count": 21})).1, 20);
        assert_eq!(page(json!({"count": u64::MAX})).1, 20);
        assert_eq!(page(json!({"count": "abc"})).1, 10);
    }

    #[test]
    fn a_page_is_a_window_of_the_items() {
        let items = || 1..=25;
        let window = |number, count| Page { number, count }.of_items(items());
        assert_eq!(window(1, 10), (1..=10).collect::<Vec<_>>());
        assert_eq!(window(3, 10), (21..=25).collect::<Vec<_>>());
        assert_eq!(window(4, 10), Vec::<i32>::new());
        assert_eq!(window(u64::MAX, 20), Vec::<i32>::new());
    }
}
