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

    mod properties {
        //! The routing invariants the `message` fuzz target checks (docs/FUZZING.md).
        use proptest::prelude::*;

        use super::super::*;

        fn name() -> impl Strategy<Value = String> {
            "[A-Za-z0-9_]{1,10}"
        }

        proptest! {
            #[test]
            fn routes_are_names_and_anything_else_is_a_fixed_404(method in prop_oneof![
                any::<String>(),
                "[a-z.<> _\\-]{0,20}",
            ]) {
                match route(&method) {
                    Ok(route) => {
                        for part in [&route.module, &route.controller, &route.action] {
                            prop_assert!(is_name(part), "{:?} routed to {:?}", method, part);
                        }
                    }
                    Err(error) => {
                        prop_assert_eq!(&error, &CallError::ControllerNotFound);
                        prop_assert_eq!(
                            error.envelope().to_json(),
                            r#"{"status":404,"event":"controllerNotFound","info":"控制器不存在"}"#
                        );
                    }
                }
            }

            #[test]
            fn one_to_three_names_route_whatever_their_case_and_outer_dots(
                parts in prop::collection::vec(name(), 1..=3), before in "[.]{0,2}", after in "[.]{0,2}",
            ) {
                let method = format!("{before}{}{after}", parts.join("."));
                let route = route(&method);
                let (module, controller, action) = match parts.as_slice() {
                    [a] => ("index", "index", a.as_str()),
                    [c, a] => ("index", c.as_str(), a.as_str()),
                    [m, c, a] => (m.as_str(), c.as_str(), a.as_str()),
                    _ => unreachable!("1 to 3 parts"),
                };
                prop_assert_eq!(route, Ok(Route {
                    module: module_name(module),
                    controller: module_name(controller),
                    action: action.to_lowercase(),
                }));
            }

            #[test]
            fn a_part_with_anything_but_a_name_never_routes(
                good in name(), bad in "[^A-Za-z0-9_.]{1,3}", at in 0usize..3,
            ) {
                let mut parts = [good.clone(), good.clone(), good];
                parts[at].push_str(&bad);
                prop_assert_eq!(route(&parts.join(".")), Err(CallError::ControllerNotFound));
            }
        }
    }
}
