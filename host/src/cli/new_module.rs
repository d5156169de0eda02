//! `mswoole new-module NAME`: writes a module crate a third party can build on.
//!
//! The crate lives outside this workspace (its own `[workspace]`), depends on
//! `plugin-api` and, for its unit tests, on `mswoole-module-test`, both by path
//! into the mswoole source checkout this binary was built from (or `--source`).
//! It builds as `cdylib` (the plugin) and `rlib` (its unit tests run in-process),
//! and what it writes builds and passes its test without edits: the test suite
//! checks that (tests/tests/new_module.rs).

use std::{
    fs,
    path::{Path, PathBuf},
};

use mswoole_core::router::is_name;

/// What `new-module` was asked for.
pub struct Request {
    /// The module name, as routes and `status` show it (`Hello`).
    pub name: String,
    /// Where to write the crate (must not exist, or be empty).
    pub path: PathBuf,
    /// The mswoole source checkout that holds `plugin-api/` and `module-test/`.
    pub source: PathBuf,
    /// The host's plugin directory, for the README's copy command.
    pub plugin_dir: PathBuf,
}

/// The mswoole checkout this binary was built from.
pub fn built_from() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `ChatRoom` → `chat_room`: the crate's library name part.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && !out.ends_with('_') {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A path as TOML text (quoted, escaped).
fn toml_path(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

/// Writes the crate; returns the files written.
pub fn write(request: &Request) -> Result<Vec<PathBuf>, String> {
    let name = &request.name;
    if !is_name(name) || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!(
            "module name {name:?} must start with a letter and hold only letters, digits and _"
        ));
    }
    let source = request
        .source
        .canonicalize()
        .map_err(|e| format!("mswoole source {}: {e}", request.source.display()))?;
    for part in ["plugin-api", "module-test"] {
        if !source.join(part).join("Cargo.toml").is_file() {
            return Err(format!(
                "{} is not an mswoole source checkout (no {part}/Cargo.toml); pass --source DIR",
                source.display()
            ));
        }
    }
    let dir = &request.path;
    if dir.exists()
        && fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .next()
            .is_some()
    {
        return Err(format!("{} exists and is not empty", dir.display()));
    }
    let lib = format!("mswoole_{}", snake(name));
    let files = [
        ("Cargo.toml", cargo_toml(name, &lib, &source)),
        ("src/lib.rs", lib_rs(name)),
        (".gitignore", "/target\n".to_string()),
        ("README.md", readme(name, &lib, &request.plugin_dir)),
    ];
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn cargo_toml(name: &str, lib: &str, source: &Path) -> String {
    let package = lib.replace('_', "-");
    let api = toml_path(&source.join("plugin-api"));
    let kit = toml_path(&source.join("module-test"));
    format!(
        r#"[package]
name = "{package}"
version = "0.1.0"
description = "The {name} module for the mswoole WebSocket host"
edition = "2021"
publish = false

# Its own workspace: the module is built on its own, not inside another project.
[workspace]

[lib]
# cdylib: the plugin the host loads; rlib: so the unit tests run in-process.
crate-type = ["cdylib", "rlib"]

[dependencies]
# Pinned exactly, as the host pins it: the ABI is checked against this version.
abi_stable = "=0.11.3"
mswoole-plugin-api = {{ path = {api} }}

[dev-dependencies]
mswoole-module-test = {{ path = {kit} }}

# Never `panic = "abort"`: the host contains a module's panics only if they unwind.
"#
    )
}

fn lib_rs(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    format!(
        r#"//! The {name} module: `{lower}.index.hello` answers 200 `hello`.
//!
//! The guide to everything a module can do is docs/MODULES.md in the mswoole
//! source; the unit test at the bottom runs this module against the host's own
//! behaviour with `mswoole-module-test`.

use mswoole_plugin_api::{{
    export_module, serde_json::Value, BoxFuture, Envelope, Host, Module, ModuleError, ModuleInfo,
    Outcome, Request,
}};

/// The module: what the host constructs when it loads the plugin.
pub struct {name} {{
    /// The host's services (registry, sending, timers, log); unused so far.
    _host: Host,
}}

impl Module for {name} {{
    fn info() -> ModuleInfo {{
        ModuleInfo::new("{name}", env!("CARGO_PKG_VERSION")).controller("Index", &["hello"])
    }}

    fn new(host: Host, _config: Value) -> Result<Self, String> {{
        Ok({name} {{ _host: host }})
    }}

    fn call(&self, request: Request) -> BoxFuture<Outcome> {{
        Box::pin(async move {{
            match (request.controller.as_str(), request.action.as_str()) {{
                ("Index", "hello") => Ok(Some(Envelope::ok("hello", "hello"))),
                (controller, action) => Err(ModuleError::failed(format!(
                    "no handler for {{controller}}.{{action}}"
                ))),
            }}
        }})
    }}
}}

export_module!({name});

#[cfg(test)]
mod tests {{
    use mswoole_module_test::{{serde_json::json, TestHost}};

    use super::*;

    #[test]
    fn hello_answers_200_hello() {{
        let host = TestHost::new();
        host.load::<{name}>(json!({{}})).expect("the module loads");
        let phone = host.connect(json!({{"id": 1, "type": "wechatUser", "code": "demo"}}));
        let frames = phone.send(json!({{"method": "{lower}.index.hello"}}));
        assert_eq!(frames[0]["event"], "receiveMessage", "the host's ack comes first");
        assert_eq!(frames[1], json!({{"status": 200, "event": "hello", "info": "hello"}}));
    }}
}}
"#
    )
}

fn readme(name: &str, lib: &str, plugin_dir: &Path) -> String {
    let lower = name.to_ascii_lowercase();
    let dir = plugin_dir.display();
    format!(
        r#"# The {name} module for mswoole

Build the plugin, then copy it into the host's plugin directory (a running host
swaps it in by itself):

```sh
cargo build --release
cp target/release/lib{lib}.so {dir}/
```

Then `{{"method":"{lower}.index.hello"}}` from any client is answered
`{{"status":200,"event":"hello","info":"hello"}}`.

`cargo test` runs the unit tests against the host's own behaviour
(`mswoole-module-test`). The guide, `docs/MODULES.md` in the mswoole source,
explains the lifecycle, the whole host API, errors, limits and hot-swap rules.
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_follow_the_module_name() {
        assert_eq!(snake("Hello"), "hello");
        assert_eq!(snake("ChatRoom"), "chat_room");
        assert_eq!(snake("Vote2"), "vote2");
    }

    #[test]
    fn bad_names_and_busy_directories_are_refused() {
        let dir = std::env::temp_dir().join(format!("mswoole-new-module-{}", std::process::id()));
        let request = |name: &str| Request {
            name: name.into(),
            path: dir.join(name),
            source: built_from(),
            plugin_dir: dir.clone(),
        };
        for bad in ["", "1abc", "my-module", "Ölmodul"] {
            assert!(write(&request(bad)).is_err(), "{bad:?}");
        }
        let written = write(&request("Hello")).expect("a new crate is written");
        assert_eq!(written.len(), 4);
        let lib = fs::read_to_string(dir.join("Hello/src/lib.rs")).expect("lib.rs");
        assert!(lib.contains("pub struct Hello"));
        let again = write(&request("Hello")).expect_err("the directory is not empty now");
        assert!(again.contains("not empty"), "{again}");
        let _ = fs::remove_dir_all(&dir);
    }
}
