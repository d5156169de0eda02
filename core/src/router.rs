//! Turns a `method` into a route, as MSwoole named things.
//!
//! `module.controller.action`, case-insensitive, dots trimmed at both ends; two
//! parts mean module `Index`, one part means `Index.Index`, none means
//! `index.index.index`. Module and controller are `Ucfirst` of the lower-cased
//! name, the action is lower-cased: plugins' declared names are normalised the
//! same way when they load, so both sides meet. Names are made of ASCII letters,
//! digits and `_`; anything else is 404 `controllerNotFound`, and the name is never
//! echoed back (a fallback would otherwise hand `<img src=x>` to a client).

use crate::error::CallError;

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Module name, `Ucfirst`.
    pub module: String,
    /// Controller name, `Ucfirst`.
    pub controller: String,
    /// Action name, lower-cased.
    pub action: String,
}

/// Lifecycle hooks: never routable as actions.
pub const LIFECYCLE_HOOKS: [&str; 4] = ["onclose", "onreload", "onshutdown", "onmessage"];

/// `Ucfirst` of the lower-cased name, as MSwoole normalised module and controller names.
pub fn module_name(name: &str) -> String {
    let lower = name.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The normalised action name.
pub fn action_name(name: &str) -> String {
    name.to_lowercase()
}

/// Whether `name` is a valid module, controller or action name: `[A-Za-z0-9_]+`.
pub fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses a `method`; 404 `controllerNotFound` for four or more parts, an empty
/// part, or a part that is not a name.
pub fn route(method: &str) -> Result<Route, CallError> {
    let trimmed = method.trim_matches('.');
    let parts: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('.').collect()
    };
    if !parts.iter().all(|part| is_name(part)) {
        return Err(CallError::ControllerNotFound);
    }
    let (module, controller, action) = match parts.as_slice() {
        [] => ("index", "index", "index"),
        [action] => ("index", "index", *action),
        [controller, action] => ("index", *controller, *action),
        [module, controller, action] => (*module, *controller, *action),
        _ => return Err(CallError::ControllerNotFound),
    };
    Ok(Route {
        module: module_name(module),
        controller: module_name(controller),
        action: action_name(action),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str) -> Result<(String, String, String), CallError> {
        route(method).map(|r| (r.module, r.controller, r.action))
    }

    fn ok(
        module: &str,
        controller: &str,
        action: &str,
    ) -> Result<(String, String, String), CallError> {
        Ok((module.into(), controller.into(), action.into()))
    }

    #[test]
    fn three_two_one_and_no_parts() {
        assert_eq!(parts("live.user.join"), ok("Live", "User", "join"));
        assert_eq!(parts("index.echo"), ok("Index", "Index", "echo"));
        assert_eq!(parts("echo"), ok("Index", "Index", "echo"));
        assert_eq!(parts(""), ok("Index", "Index", "index"));
        assert_eq!(parts("..."), ok("Index", "Index", "index"));
    }

    #[test]
    fn case_and_outer_dots_do_not_matter() {
        assert_eq!(parts(".LIVE.uSeR.JoIn."), ok("Live", "User", "join"));
    }

    #[test]
    fn four_parts_or_an_empty_part_are_not_found() {
        assert_eq!(parts("a.b.c.d"), Err(CallError::ControllerNotFound));
        assert_eq!(parts("index..index"), Err(CallError::ControllerNotFound));
    }

    #[test]
    fn only_letters_digits_and_underscores_are_names() {
        assert_eq!(
            parts("index.fallback.get_2"),
            ok("Index", "Fallback", "get_2")
        );
        for bad in [
            "index.fallback.<img src=x>",
            "index.fall back.x",
            "a.b-c",
            "é",
            "a.b.c\u{0}",
        ] {
            assert_eq!(parts(bad), Err(CallError::ControllerNotFound), "{bad:?}");
        }
    }

    #[test]
    fn ucfirst_handles_non_ascii() {
        assert_eq!(module_name("éCOLE"), "École");
        assert_eq!(module_name(""), "");
    }
}
