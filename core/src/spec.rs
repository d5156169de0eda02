//! What a module declared, normalised, and which call a route becomes.
//!
//! Routing is case-insensitive, as in MSwoole: declared names are normalised the
//! same way a `method` is (module and controller `Ucfirst`, action lower-cased) and
//! the two meet there. The module itself is handed the names as it declared them
//! (`ChatRoom`, `getHistory`), so its `match` arms on those names work; modules
//! built on plugin-api 1.0 keep receiving the normalised names they were written
//! for. An `onMessage` fallback receives the action lower-cased: it was not declared.

use std::collections::{BTreeMap, HashMap};

use mswoole_plugin_api::ModuleInfo;

use crate::{
    error::CallError,
    router::{action_name, is_name, module_name, Route, LIFECYCLE_HOOKS},
};

/// A controller as the host routes to it.
#[derive(Debug, Clone, Default)]
pub struct ControllerSpec {
    /// The name as the module declared it.
    pub declared: String,
    /// Routable actions: lower-cased name → name as declared.
    pub actions: HashMap<String, String>,
    /// Unknown actions go to the module instead of 405.
    pub on_message: bool,
}

/// What a module declared, in host memory and normalised.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    /// Module name, `Ucfirst`: what routes and the registry's controller names use.
    pub name: String,
    /// The module's version.
    pub version: String,
    /// Controllers by `Ucfirst` name.
    pub controllers: HashMap<String, ControllerSpec>,
    /// Whether the module receives names as declared (plugin-api ≥ 1.1) or normalised.
    pub names_as_declared: bool,
}

/// The controller and action a routed message is handed to the module with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The controller name the module receives.
    pub controller: String,
    /// The action name the module receives.
    pub action: String,
    /// The action was not declared: the controller's `onMessage` fallback handles it.
    pub fallback: bool,
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    if is_name(name) {
        Ok(())
    } else {
        Err(format!(
            "{what} name {name:?} is not made of letters, digits and _"
        ))
    }
}

impl ModuleSpec {
    /// Checks and normalises a module's declaration.
    pub fn from_info(info: &ModuleInfo, names_as_declared: bool) -> Result<Self, String> {
        check_name("module", &info.name)?;
        let mut controllers = HashMap::new();
        for controller in info.controllers.iter() {
            check_name("controller", &controller.name)?;
            let mut actions = HashMap::new();
            for action in controller.actions.iter() {
                check_name("action", action)?;
                let routed = action_name(action);
                if LIFECYCLE_HOOKS.contains(&routed.as_str()) {
                    return Err(format!(
                        "controller {} declares lifecycle hook {action} as an action",
                        controller.name
                    ));
                }
                if actions.insert(routed, action.to_string()).is_some() {
                    return Err(format!(
                        "controller {} declares action {action} twice (names are case-insensitive)",
                        controller.name
                    ));
                }
            }
            let spec = ControllerSpec {
                declared: controller.name.to_string(),
                actions,
                on_message: controller.on_message,
            };
            if controllers
                .insert(module_name(&controller.name), spec)
                .is_some()
            {
                return Err(format!(
                    "controller {} is declared twice (names are case-insensitive)",
                    controller.name
                ));
            }
        }
        Ok(ModuleSpec {
            name: module_name(&info.name),
            version: info.version.to_string(),
            controllers,
            names_as_declared,
        })
    }

    /// The names a routed message reaches the module with, or why it cannot.
    pub fn target(&self, route: &Route) -> Result<Target, CallError> {
        let controller = self
            .controllers
            .get(&route.controller)
            .ok_or(CallError::ControllerNotFound)?;
        if LIFECYCLE_HOOKS.contains(&route.action.as_str()) {
            return Err(CallError::MethodNotFound);
        }
        let controller_name = |declared: &str| match self.names_as_declared {
            true => declared.to_string(),
            false => route.controller.clone(),
        };
        match (controller.actions.get(&route.action), controller.on_message) {
            (Some(declared), _) => Ok(Target {
                controller: controller_name(&controller.declared),
                action: match self.names_as_declared {
                    true => declared.clone(),
                    false => route.action.clone(),
                },
                fallback: false,
            }),
            (None, true) => Ok(Target {
                controller: controller_name(&controller.declared),
                action: route.action.clone(),
                fallback: true,
            }),
            (None, false) => Err(CallError::MethodNotFound),
        }
    }

    /// The name `onClose` hands the module for a controller registered with
    /// `add_close_controller` (the part after `Module.`, any case): as declared when
    /// the controller is declared, as registered when it is not.
    pub fn close_controller(&self, registered: &str) -> String {
        match (
            self.names_as_declared,
            self.controllers.get(&module_name(registered)),
        ) {
            (false, _) => module_name(registered),
            (true, Some(controller)) => controller.declared.clone(),
            (true, None) => registered.to_string(),
        }
    }

    /// Declared actions per controller, as declared, sorted (for `status`).
    pub fn actions(&self) -> BTreeMap<&str, Vec<&str>> {
        self.controllers
            .values()
            .map(|c| {
                let mut actions: Vec<&str> = c.actions.values().map(String::as_str).collect();
                actions.sort_unstable();
                (c.declared.as_str(), actions)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::route;

    fn spec(names_as_declared: bool) -> ModuleSpec {
        let info = ModuleInfo::new("Chat", "1.0.0")
            .controller("ChatRoom", &["getHistory", "say"])
            .controller_with_fallback("Free", &[]);
        ModuleSpec::from_info(&info, names_as_declared).expect("valid declaration")
    }

    fn target(spec: &ModuleSpec, method: &str) -> Result<Target, CallError> {
        spec.target(&route(method).expect("routable"))
    }

    #[test]
    fn routing_ignores_case_and_the_module_gets_its_declared_names() {
        let spec = spec(true);
        assert_eq!(spec.name, "Chat");
        for method in [
            "chat.chatroom.gethistory",
            "CHAT.CHATROOM.GETHISTORY",
            "Chat.ChatRoom.getHistory",
        ] {
            let got = target(&spec, method).expect("declared");
            assert_eq!(
                (got.controller.as_str(), got.action.as_str()),
                ("ChatRoom", "getHistory")
            );
            assert!(!got.fallback);
        }
    }

    #[test]
    fn modules_built_on_the_first_plugin_api_keep_normalised_names() {
        let got = target(&spec(false), "chat.chatroom.getHistory").expect("declared");
        assert_eq!(
            (got.controller.as_str(), got.action.as_str()),
            ("Chatroom", "gethistory")
        );
    }

    #[test]
    fn a_fallback_gets_the_action_lower_cased_and_unknown_names_fail() {
        let spec = spec(true);
        let got = target(&spec, "chat.free.AnyThing").expect("fallback");
        assert_eq!((got.action.as_str(), got.fallback), ("anything", true));
        assert_eq!(
            target(&spec, "chat.chatroom.nope"),
            Err(CallError::MethodNotFound)
        );
        assert_eq!(
            target(&spec, "chat.nope.say"),
            Err(CallError::ControllerNotFound)
        );
        assert_eq!(
            target(&spec, "chat.free.onclose"),
            Err(CallError::MethodNotFound)
        );
    }

    #[test]
    fn bad_declarations_are_refused() {
        for info in [
            ModuleInfo::new("Chat", "1").controller("Room", &["onClose"]),
            ModuleInfo::new("Chat", "1").controller("Room", &["get-history"]),
            ModuleInfo::new("Chat room", "1"),
            ModuleInfo::new("Chat", "1").controller("Room", &["a", "A"]),
            ModuleInfo::new("Chat", "1")
                .controller("Room", &[])
                .controller("ROOM", &[]),
        ] {
            assert!(ModuleSpec::from_info(&info, true).is_err(), "{info:?}");
        }
    }

    #[test]
    fn close_registrations_reach_the_declared_controller() {
        assert_eq!(spec(true).close_controller("chatroom"), "ChatRoom");
        assert_eq!(spec(false).close_controller("ChatRoom"), "Chatroom");
        assert_eq!(spec(true).close_controller("onlyClose"), "onlyClose");
    }
}
