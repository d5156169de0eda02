//! The config parser (host/src/config/mod.rs), from TOML text: any text is a config or a
//! one-line error without a panic, and a config it accepts keeps the rules the
//! validation promises.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mswoole::config::Config;

fuzz_target!(|text: &str| {
    let base = Path::new("/srv/mswoole");
    match Config::parse(text, base) {
        Err(error) => {
            let line = error.to_string();
            assert!(!line.is_empty());
            assert!(!line.contains('\n'), "a config error is one line: {line:?}");
        }
        Ok(config) => {
            assert!(config.registry.node_ttl_s >= 3);
            assert!(config.heartbeat.idle_s > 0);
            assert!(config.limits.max_message_bytes > 0);
            assert!(config.limits.outbound_queue > 0);
            assert!(config.limits.outbound_bytes > 0);
            assert!(config.manager.max_message_bytes > 0);
            assert!(!config.auth.key.trim().is_empty());
            assert!(!config.outside.host.trim().is_empty());
            assert!(
                config.runtime.dir.is_absolute(),
                "relative paths resolve against the base"
            );
            if let Some(dir) = &config.plugins.dir {
                assert!(dir.is_absolute());
            }
            if let Some(id) = &config.registry.node_id {
                assert!(!id.is_empty());
                assert!(id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')));
            }
            assert!(config.databases.contains_key("default"));
            for name in config.modules.keys() {
                assert!(config.module_config(name).is_object());
            }
            // The same text gives the same answer.
            assert!(Config::parse(text, base).is_ok());
        }
    }
});
