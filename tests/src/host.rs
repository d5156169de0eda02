//! One real host process in a private directory.
//!
//! [`HostBuilder`] lays out the directory (`app.toml`, `plugins/` with copies of the
//! real plugins plus any extra files a test adds, `runtime/`), [`HostDir`] owns it and
//! runs console commands against it, [`TestHost`] is the running `mswoole start`: its
//! addresses from the ready line, its captured stdout and stderr, its manager port.
//! The process is killed when the `TestHost` is dropped; on a failing test its output
//! is printed and the directory is kept for a look.

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{client, paths, Client, Config, Envelope, Refused, RECV_TIMEOUT, VECTOR_WECHAT_USER};

/// How long a host may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a console command may run (`stop` itself waits up to 30 s for the host).
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(40);

/// Captured output of a process, shared with the threads that drain its pipes.
type Captured = Arc<Mutex<String>>;

/// Where a file put into `plugins/` comes from.
#[derive(Debug, Clone)]
enum Source {
    /// These bytes.
    Bytes(Vec<u8>),
    /// A copy of this file.
    Copy(PathBuf),
}

/// Lays out a host directory.
#[derive(Debug, Clone)]
pub struct HostBuilder {
    /// The config to write.
    config: Config,
    /// Files of `plugins/`, by name.
    files: Vec<(String, Source)>,
}

impl Default for HostBuilder {
    fn default() -> Self {
        HostBuilder {
            config: Config::base(),
            files: vec![
                (
                    "libmswoole_index.so".into(),
                    Source::Copy(paths::index_plugin()),
                ),
                (
                    "libmswoole_live.so".into(),
                    Source::Copy(paths::live_plugin()),
                ),
            ],
        }
    }
}

impl HostBuilder {
    /// Merges TOML into the base config (see [`Config::merge`]).
    pub fn config(mut self, toml: &str) -> Self {
        self.config.merge(toml);
        self
    }

    /// Leaves the real plugins out of `plugins/` (add files with the methods below).
    pub fn no_default_plugins(mut self) -> Self {
        self.files.clear();
        self
    }

    /// Puts a file with these contents into `plugins/`.
    pub fn plugin_file(mut self, name: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files
            .push((name.into(), Source::Bytes(contents.into())));
        self
    }

    /// Puts a copy of `from` into `plugins/` as `name`.
    pub fn plugin_copy(mut self, name: &str, from: &Path) -> Self {
        self.files
            .push((name.into(), Source::Copy(from.to_path_buf())));
        self
    }

    /// Creates the directory without starting anything.
    pub fn prepare(self) -> HostDir {
        let dir = HostDir::create();
        std::fs::create_dir_all(dir.plugins_dir()).expect("plugins/ is created");
        std::fs::create_dir_all(dir.runtime_dir()).expect("runtime/ is created");
        std::fs::create_dir_all(dir.cwd()).expect("cwd/ is created");
        for (name, source) in &self.files {
            let to = dir.plugins_dir().join(name);
            match source {
                Source::Bytes(bytes) => {
                    std::fs::write(&to, bytes).expect("a plugins/ file is written")
                }
                Source::Copy(from) => {
                    std::fs::copy(from, &to).unwrap_or_else(|error| {
                        panic!("copying {} failed: {error}", from.display())
                    });
                }
            }
        }
        dir.write_config(&self.config.render());
        dir
    }

    /// Creates the directory and starts the host in it.
    pub async fn start(self) -> TestHost {
        self.prepare().start().await
    }
}

/// A private host directory; removed on drop unless the test failed.
#[derive(Debug)]
pub struct HostDir {
    /// Its path.
    root: PathBuf,
}

/// Gives every directory of this test process a distinct name.
static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

impl HostDir {
    /// A new empty directory under the system's temp dir.
    fn create() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "mswoole-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        );
        let root = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&root).expect("the test directory is created");
        HostDir { root }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `app.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("app.toml")
    }

    /// `plugins/`.
    pub fn plugins_dir(&self) -> PathBuf {
        self.root.join("plugins")
    }

    /// `runtime/`.
    pub fn runtime_dir(&self) -> PathBuf {
        self.root.join("runtime")
    }

    /// `runtime/mswoole.pid`.
    pub fn pid_file(&self) -> PathBuf {
        self.runtime_dir().join("mswoole.pid")
    }

    /// `runtime/mswoole.manager`: the manager address of the running host.
    pub fn manager_file(&self) -> PathBuf {
        self.runtime_dir().join("mswoole.manager")
    }

    /// `runtime/mswoole.log`.
    pub fn log_file(&self) -> PathBuf {
        self.runtime_dir().join("mswoole.log")
    }

    /// The working directory processes run in: not the config's directory, so a path
    /// resolved against the working directory instead of the config shows up.
    fn cwd(&self) -> PathBuf {
        self.root.join("cwd")
    }

    /// Replaces `app.toml`.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("app.toml is written");
    }

    /// `mswoole <subcommand> --config app.toml <args...>`.
    fn command(&self, subcommand: &str, args: &[&str]) -> Command {
        let mut command = Command::new(paths::mswoole_bin());
        command
            .arg(subcommand)
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .current_dir(self.cwd())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    /// Runs a console command (`status`, `reload`, `say`, `stop`...) to its end.
    pub fn console(&self, subcommand: &str, args: &[&str]) -> ConsoleOutput {
        run_to_end(self.command(subcommand, args), CONSOLE_TIMEOUT)
    }

    /// Runs `mswoole start` expecting it to exit by itself (a start-up error).
    pub fn start_expecting_exit(&self) -> ConsoleOutput {
        run_to_end(self.command("start", &[]), READY_TIMEOUT)
    }

    /// Starts the host and waits for its ready line.
    pub async fn start(self) -> TestHost {
        self.start_with_env(&[]).await
    }

    /// Starts the host with extra environment variables (e.g. `NOTIFY_SOCKET`) and
    /// waits for its ready line.
    pub async fn start_with_env(self, env: &[(&str, &str)]) -> TestHost {
        let mut child = self
            .command("start", &[])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mswoole start runs");
        let output = Captured::default();
        drain(child.stdout.take(), &output);
        drain(child.stderr.take(), &output);
        let started = Instant::now();
        let ready = loop {
            if let Some(ready) = ready_line(&text(&output)) {
                break ready;
            }
            if let Ok(Some(status)) = child.try_wait() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "mswoole start exited ({status}) before it was ready; its output:\n{}",
                    text(&output)
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mswoole start printed no ready line within {READY_TIMEOUT:?}; its output:\n{}",
                    text(&output)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        TestHost {
            child: Some(child),
            output,
            outside: ready.outside,
            manager: ready.manager,
            pid: ready.pid,
            dir: Some(self),
        }
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test directory kept: {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// What a console command did.
#[derive(Debug)]
pub struct ConsoleOutput {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl ConsoleOutput {
    /// Asserts it exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "expected exit 0, got {self:#?}");
        self
    }

    /// Asserts it exited non-zero with a one-line reason on stderr; returns the line.
    #[track_caller]
    pub fn assert_failure_one_line(&self) -> &str {
        assert!(
            !self.status.success(),
            "expected a non-zero exit, got {self:#?}"
        );
        let reason = self.stderr.trim();
        assert!(
            !reason.is_empty() && reason.lines().count() == 1,
            "expected a one-line reason on stderr, got {self:#?}"
        );
        reason
    }

    /// Asserts it exited non-zero; returns stdout and stderr together.
    #[track_caller]
    pub fn assert_failure(&self) -> String {
        assert!(
            !self.status.success(),
            "expected a non-zero exit, got {self:#?}"
        );
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// The values of the ready line.
struct Ready {
    /// `outside=`.
    outside: SocketAddr,
    /// `manager=`.
    manager: SocketAddr,
    /// `pid=`.
    pid: u32,
}

/// Finds and parses `mswoole ready outside=IP:PORT manager=IP:PORT pid=PID`.
fn ready_line(output: &str) -> Option<Ready> {
    let line = output
        .lines()
        .find_map(|line| line.find("mswoole ready ").map(|at| &line[at..]))?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .unwrap_or_else(|| panic!("ready line without {name}: {line:?}"))
    };
    let addr = |name: &str| {
        field(name).parse().unwrap_or_else(|error| {
            panic!("ready line's {name} is not IP:PORT ({error}): {line:?}")
        })
    };
    Some(Ready {
        outside: addr("outside="),
        manager: addr("manager="),
        pid: field("pid=")
            .parse()
            .unwrap_or_else(|error| panic!("ready line's pid is not a number ({error}): {line:?}")),
    })
}

/// The captured text so far.
fn text(output: &Captured) -> String {
    output
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Copies a pipe into `output` line by line, without ANSI colour codes, until it closes.
fn drain(pipe: Option<impl Read + Send + 'static>, output: &Captured) {
    let Some(pipe) = pipe else { return };
    let output = Arc::clone(output);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let mut text = strip_ansi(&String::from_utf8_lossy(&line));
            if !text.ends_with('\n') {
                text.push('\n');
            }
            output
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(&text);
            line.clear();
        }
    });
}

/// Removes `ESC [ ... letter` sequences.
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Runs a command to its end with captured output, killing it after `timeout`.
fn run_to_end(mut command: Command, timeout: Duration) -> ConsoleOutput {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mswoole runs");
    let stdout = Captured::default();
    let stderr = Captured::default();
    drain(child.stdout.take(), &stdout);
    drain(child.stderr.take(), &stderr);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} did not exit within {timeout:?}; stdout:\n{}\nstderr:\n{}",
                text(&stdout),
                text(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The pipes close when the process exits; give the draining threads a moment.
    std::thread::sleep(Duration::from_millis(50));
    ConsoleOutput {
        status,
        stdout: text(&stdout),
        stderr: text(&stderr),
    }
}

/// A running `mswoole start`.
pub struct TestHost {
    /// The process; `None` once it exited and was reaped.
    child: Option<Child>,
    /// Its stdout and stderr, interleaved by line.
    output: Captured,
    /// The outside (client) address from the ready line.
    pub outside: SocketAddr,
    /// The manager address from the ready line.
    pub manager: SocketAddr,
    /// The pid from the ready line.
    pub pid: u32,
    /// Its directory (dropped after the process is killed); `None` only inside [`TestHost::into_dir`].
    dir: Option<HostDir>,
}

impl TestHost {
    /// Starts a host with the base config plus `extra_toml` (see [`Config::merge`]).
    pub async fn start(extra_toml: &str) -> TestHost {
        Self::builder().config(extra_toml).start().await
    }

    /// A builder, for tests that put extra files into `plugins/`.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// Its directory.
    pub fn dir(&self) -> &HostDir {
        self.dir
            .as_ref()
            .expect("the directory is kept until the host is dropped")
    }

    /// Kills the process if it still runs and hands back its directory, e.g. to start
    /// the host again on the same runtime files.
    pub fn into_dir(mut self) -> HostDir {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.dir
            .take()
            .expect("the directory is kept until the host is dropped")
    }

    /// Sends a signal (`"TERM"`, `"INT"`, `"HUP"`) to the process with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status()
            .expect("`kill` runs");
        assert!(
            status.success(),
            "kill -{name} {} failed: {status}",
            self.pid
        );
    }

    /// Everything it printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        text(&self.output)
    }

    /// `runtime/mswoole.log` as it is now (empty if missing).
    pub fn log_file(&self) -> String {
        std::fs::read_to_string(self.dir().log_file()).unwrap_or_default()
    }

    /// Waits until a printed line satisfies `matches`; returns the line.
    pub async fn wait_for_line(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        self.wait_for_line_after(0, what, matches).await
    }

    /// Like [`TestHost::wait_for_line`], considering only output after byte `mark` of [`TestHost::output`].
    pub async fn wait_for_line_after(
        &self,
        mark: usize,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        let started = Instant::now();
        loop {
            let output = self.output();
            if let Some(line) = output
                .get(mark..)
                .unwrap_or_default()
                .lines()
                .find(|line| matches(line))
            {
                return line.to_string();
            }
            if started.elapsed() > RECV_TIMEOUT {
                panic!("no output line {what} within {RECV_TIMEOUT:?}; output:\n{output}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a line of `runtime/mswoole.log` satisfies `matches`; returns the line.
    pub async fn wait_for_log_file_line(
        &self,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        let started = Instant::now();
        loop {
            let log = strip_ansi(&self.log_file());
            if let Some(line) = log.lines().find(|line| matches(line)) {
                return line.to_string();
            }
            if started.elapsed() > RECV_TIMEOUT {
                panic!(
                    "no line {what} in {} within {RECV_TIMEOUT:?}; it holds:\n{log}",
                    self.dir().log_file().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Opens a client connection; panics if the handshake is refused.
    pub async fn connect(&self, path_and_query: &str) -> Client {
        match client::connect(self.outside, path_and_query).await {
            Ok(client) => client,
            Err(refused) => panic!("handshake {path_and_query} refused: {refused:?}"),
        }
    }

    /// Opens a client connection; a refusal comes back as its HTTP response.
    pub async fn try_connect(&self, path_and_query: &str) -> Result<Client, Refused> {
        client::connect(self.outside, path_and_query).await
    }

    /// Connects as vector 1 (`wechatUser` 1 in room `demo`) on `/live`.
    pub async fn connect_user(&self) -> Client {
        self.connect(&format!("/live?auth={VECTOR_WECHAT_USER}"))
            .await
    }

    /// Sends one command text to the manager port; returns its one envelope.
    pub async fn manager_text(&self, text: &str) -> Envelope {
        let mut manager = match client::connect(self.manager, "/").await {
            Ok(manager) => manager,
            Err(refused) => panic!("manager handshake refused: {refused:?}"),
        };
        manager.send_text(text).await;
        manager.recv_envelope().await
    }

    /// Sends one JSON command to the manager port; returns its one envelope.
    pub async fn manager(&self, command: &Value) -> Envelope {
        self.manager_text(&command.to_string()).await
    }

    /// Runs a console command against this host.
    pub fn console(&self, subcommand: &str, args: &[&str]) -> ConsoleOutput {
        self.dir().console(subcommand, args)
    }

    /// Waits for the process to exit by itself; returns its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            let child = self.child.as_mut().expect("the host was not reaped yet");
            if let Some(status) = child.try_wait().expect("the host can be waited for") {
                self.child = None;
                return status;
            }
            if started.elapsed() > timeout {
                panic!(
                    "the host did not exit within {timeout:?}; output:\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- host output ----\n{}---- end of host output ----",
                self.output()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ready_line, strip_ansi};

    #[test]
    fn parses_the_ready_line() {
        let ready = ready_line("x\nmswoole ready outside=127.0.0.1:1 manager=127.0.0.1:2 pid=3\n")
            .expect("a ready line");
        assert_eq!(ready.outside.port(), 1);
        assert_eq!(ready.manager.port(), 2);
        assert_eq!(ready.pid, 3);
    }

    #[test]
    fn strips_colour_codes() {
        assert_eq!(strip_ansi("\u{1b}[31mERROR\u{1b}[0m x"), "ERROR x");
    }
}
