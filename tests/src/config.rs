//! The test config: a base `app.toml` plus whatever keys a test overrides.
//!
//! A test writes its changes as ordinary TOML (`"[heartbeat]\nidle_s = 1"`); they are
//! merged into the base by section and key, so a section never repeats and a key the
//! base already sets (e.g. `[outside] port`) is replaced, not duplicated. Only one-line
//! `key = value` entries are understood, which is all the host's config needs.

/// An ordered map of section → ordered `(key, value)` lines.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sections in the order they are written.
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Config {
    /// The base every test host starts from: both ports chosen by the OS, plugins from
    /// `plugins/` without the watcher, runtime files in `runtime/`, Index's debug actions on.
    pub fn base() -> Self {
        let mut config = Config {
            sections: Vec::new(),
        };
        config.merge(
            r#"
            [outside]
            port = 0
            [manager]
            port = 0
            [plugins]
            dir = "plugins"
            watch = false
            [runtime]
            dir = "runtime"
            [modules.Index]
            debug_actions = true
            "#,
        );
        config
    }

    /// Sets `key = value` (`value` is TOML: `1`, `"text"`, `true`) in `section`.
    pub fn set(&mut self, section: &str, key: &str, value: &str) -> &mut Self {
        let index = match self.sections.iter().position(|(name, _)| name == section) {
            Some(index) => index,
            None => {
                self.sections.push((section.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let lines = &mut self.sections[index].1;
        match lines.iter_mut().find(|(name, _)| name == key) {
            Some(line) => line.1 = value.to_string(),
            None => lines.push((key.to_string(), value.to_string())),
        }
        self
    }

    /// Merges TOML text of `[section]` headers and `key = value` lines into this config.
    pub fn merge(&mut self, toml: &str) -> &mut Self {
        let mut section: Option<String> = None;
        for line in toml.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
            {
                section = Some(name.trim().to_string());
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("test config line is not `key = value`: {line:?}"));
            let section = section
                .as_deref()
                .unwrap_or_else(|| panic!("test config line {line:?} comes before any [section]"));
            self.set(section, key.trim(), value.trim());
        }
        self
    }

    /// The config as TOML text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (section, lines) in &self.sections {
            text.push_str(&format!("[{section}]\n"));
            for (key, value) in lines {
                text.push_str(&format!("{key} = {value}\n"));
            }
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn overrides_replace_keys_and_sections_never_repeat() {
        let mut config = Config::base();
        config.merge("[outside]\nport = 1234\nhost = \"127.0.0.1\"\n[heartbeat]\nidle_s = 1");
        let text = config.render();
        assert_eq!(text.matches("[outside]").count(), 1, "{text}");
        assert!(
            text.contains("[outside]\nport = 1234\nhost = \"127.0.0.1\"\n"),
            "{text}"
        );
        assert!(text.contains("[heartbeat]\nidle_s = 1\n"), "{text}");
        assert!(
            text.contains("[modules.Index]\ndebug_actions = true\n"),
            "{text}"
        );
    }
}
