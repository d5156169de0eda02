//! The console: `mswoole start|reload|stop|status|say|token|new-module`.
//!
//! Every command but `start` and `token` talks to the manager port of the same
//! config and exits non-zero with a one-line reason when it gets no answer.

pub mod new_module;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use clap::{Parser, Subcommand};
use serde_json::{json, Map, Value};

use crate::{
    config::Config,
    edge::auth::{
        jwt::{sign, SigningKey},
        TokenCodec,
    },
    manager::client::ManagerClient,
    runtime::process::{self, MANAGER_FILE, PID_FILE},
};

/// Prints to stdout; a closed pipe (`mswoole status | head`) is not an error worth a panic.
fn emit(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

macro_rules! emitln {
    ($($arg:tt)*) => { emit(&format!("{}\n", format_args!($($arg)*))) };
}

/// The default config path, relative to the working directory.
const DEFAULT_CONFIG: &str = "config/app.toml";
/// How long `stop` waits for the host to remove its pid file, beyond `shutdown.drain_s`.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// MSwoole's WebSocket service as a Rust plugin host.
#[derive(Debug, Parser)]
#[command(name = "mswoole", version, about)]
pub struct Cli {
    /// The config file; without it (and when `config/app.toml` is missing) the embedded defaults apply.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the host in the foreground.
    Start,
    /// Re-reads the config's token keys, rescans the plugin directory and sends onReload to
    /// every module.
    Reload,
    /// Stops the host gracefully and waits until it has exited.
    Stop,
    /// Shows connections, memory, nodes and plugins.
    Status {
        /// Prints the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sends a server broadcast (event serverBroadcast) to every client.
    Say {
        /// The text to send.
        text: String,
    },
    /// Mints a token the server accepts: MSwoole's, or with --jwt a JWT.
    Token {
        /// The user id (a number stays a number); a JWT's `sub`.
        #[arg(long)]
        id: String,
        /// `wechatUser` (phone), `wall` (big screen), or another type.
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
        /// The room code.
        #[arg(long, default_value = "")]
        code: String,
        /// The nickname.
        #[arg(long, default_value = "")]
        nickname: String,
        /// The key; default: auth.key of the config (with --jwt: auth.jwt.hs256_key).
        #[arg(long)]
        key: Option<String>,
        /// Issue time in unix seconds (a JWT's `iat`); default: now.
        #[arg(long)]
        ctime: Option<u64>,
        /// Mints a JWT: HS256 with auth.jwt.hs256_key (or --key), or RS256 with
        /// --private-key-file; `aud` and `iss` as auth.jwt.audience and issuer say.
        #[arg(long)]
        jwt: bool,
        /// With --jwt: sign RS256 with this RSA private key (PEM).
        #[arg(long, value_name = "PEM", requires = "jwt")]
        private_key_file: Option<PathBuf>,
        /// With --jwt: seconds from the issue time to `exp`.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600, requires = "jwt")]
        ttl: u64,
    },
    /// Writes a new module crate (a plugin with one action and its unit test).
    NewModule {
        /// The module name, e.g. `Hello` (letters, digits and _; routes ignore case).
        name: String,
        /// Where to write the crate; default: `./<name in lower case>`.
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
        /// The mswoole source checkout to build against; default: the one this binary was built from.
        #[arg(long, value_name = "DIR")]
        source: Option<PathBuf>,
    },
}

impl Cli {
    /// Whether this invocation runs the server (it wants the multi-threaded runtime).
    pub fn is_start(&self) -> bool {
        matches!(self.command, Command::Start)
    }
}

/// Loads the config named on the command line, or the default one, or the embedded defaults.
pub fn load_config(cli: &Cli) -> Result<Config, String> {
    match &cli.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string()),
        None if Path::new(DEFAULT_CONFIG).exists() => {
            Config::load(Path::new(DEFAULT_CONFIG)).map_err(|e| e.to_string())
        }
        None => {
            let here = std::env::current_dir()
                .map_err(|e| format!("cannot read the working directory: {e}"))?;
            Ok(Config::defaults(&here))
        }
    }
}

/// Runs a console command (everything but `start`); returns the exit code.
pub async fn run(cli: Cli, config: Config) -> Result<(), String> {
    match cli.command {
        Command::Start => Err("start is run by main".into()),
        Command::Token {
            id,
            kind,
            code,
            nickname,
            key,
            ctime,
            jwt,
            private_key_file,
            ttl,
        } => {
            let id = id
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::from(id));
            let ctime = ctime.unwrap_or_else(now);
            if jwt {
                let claims = json!({
                    "sub": id, "type": kind, "code": code, "nickname": nickname,
                    "iat": ctime, "exp": ctime.saturating_add(ttl),
                });
                let token = mint_jwt(claims, &config, key, private_key_file)?;
                emitln!("{token}");
                return Ok(());
            }
            let codec = TokenCodec::new(
                key.as_deref().unwrap_or(&config.auth.key),
                config.auth.cipher,
                config.auth.iv.as_deref(),
            );
            let claims =
                json!({"id": id, "type": kind, "code": code, "nickname": nickname, "ctime": ctime});
            emitln!("{}", codec.encode(&claims));
            Ok(())
        }
        Command::NewModule { name, path, source } => {
            let plugin_dir = match &config.plugins.dir {
                Some(dir) => dir.clone(),
                None => std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(Path::to_path_buf))
                    .unwrap_or_default(),
            };
            let request = crate::cli::new_module::Request {
                path: path.unwrap_or_else(|| PathBuf::from(name.to_ascii_lowercase())),
                source: source.unwrap_or_else(crate::cli::new_module::built_from),
                name,
                plugin_dir,
            };
            let written = crate::cli::new_module::write(&request)?;
            emitln!(
                "wrote module {} in {} ({} files); next: cd {} && cargo build --release && cargo test",
                request.name,
                request.path.display(),
                written.len(),
                request.path.display()
            );
            Ok(())
        }
        Command::Reload => {
            let reply = command(&config, json!({"method": "reload"})).await?;
            let param = reply.get("param").unwrap_or(&Value::Null);
            emitln!("reloaded: {param}");
            // A config file that does not load is the operator's to fix: say so, and fail
            // (systemd's ExecReload then reports the reload failed).
            match param.pointer("/keys/error").and_then(Value::as_str) {
                Some(error) => Err(format!("the token keys were kept: {error}")),
                None => Ok(()),
            }
        }
        Command::Say { text } => {
            let reply = command(&config, json!({"method": "say", "say": text})).await?;
            emitln!("sent: {}", reply.get("param").unwrap_or(&Value::Null));
            Ok(())
        }
        Command::Status { json } => {
            let address = manager_address(&config)?;
            let client = ManagerClient::new(&address, config.manager.token.as_deref());
            let status = client.status().await?;
            match json {
                true => emitln!("{}", serde_json::to_string(&status).unwrap_or_default()),
                false => emit(&status.render()),
            }
            Ok(())
        }
        Command::Stop => {
            let pid_file = config.runtime.dir.join(PID_FILE);
            // Idempotent, so a unit file's ExecStop (config/mswoole.service) can always
            // call it: no pid file naming a live host and no manager answer = nothing to stop.
            if let Err(reason) = command(&config, json!({"method": "stop"})).await {
                return match process::running_pid(&config.runtime.dir) {
                    Some(pid) => Err(format!("{reason} (the pid file names pid {pid})")),
                    None if !reachable(&config).await => {
                        emitln!("not running");
                        Ok(())
                    }
                    None => Err(reason),
                };
            }
            let started = Instant::now();
            // The drain spreads the clients' closes over drain_s (README.md, "Stopping").
            let wait = STOP_WAIT + Duration::from_secs(config.shutdown.drain_s);
            while pid_file.exists() {
                if started.elapsed() > wait {
                    return Err(format!(
                        "the host did not exit within {}s ({} still exists)",
                        wait.as_secs(),
                        pid_file.display()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            emitln!("stopped");
            Ok(())
        }
    }
}

/// `mswoole token --jwt`: `claims` plus the config's `aud` and `iss`, signed RS256 with
/// `private_key_file` or HS256 with `key` or `auth.jwt.hs256_key`.
fn mint_jwt(
    mut claims: Value,
    config: &Config,
    key: Option<String>,
    private_key_file: Option<PathBuf>,
) -> Result<String, String> {
    let jwt = &config.auth.jwt;
    if let Value::Object(claims) = &mut claims {
        for (name, value) in [("aud", &jwt.audience), ("iss", &jwt.issuer)] {
            if let Some(value) = value {
                claims.insert(name.into(), Value::from(value.as_str()));
            }
        }
    }
    match private_key_file {
        Some(file) => {
            let pem = std::fs::read(&file)
                .map_err(|error| format!("--private-key-file {}: {error}", file.display()))?;
            sign(&claims, SigningKey::Rs256(&pem))
                .map_err(|error| format!("--private-key-file {}: {error}", file.display()))
        }
        None => {
            let secret = key.unwrap_or_else(|| jwt.hs256_key.clone());
            if secret.is_empty() {
                return Err(
                    "auth.jwt.hs256_key is empty: give --key, or --private-key-file for RS256"
                        .into(),
                );
            }
            sign(&claims, SigningKey::Hs256(&secret))
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The manager's address: from the config, or from the file the host wrote when the port is 0.
fn manager_address(config: &Config) -> Result<String, String> {
    if config.manager.port != 0 {
        return Ok(format!("{}:{}", config.manager.host, config.manager.port));
    }
    let file = config.runtime.dir.join(MANAGER_FILE);
    std::fs::read_to_string(&file)
        .map(|text| text.trim().to_string())
        .map_err(|_| {
            format!(
                "manager.port is 0 and {} is missing: is the host running?",
                file.display()
            )
        })
}

/// Whether anything accepts TCP connections at the manager's address.
async fn reachable(config: &Config) -> bool {
    let Ok(address) = manager_address(config) else {
        return false;
    };
    let connect = tokio::net::TcpStream::connect(address);
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

/// Sends one command to the manager port and returns the answer if its status is 200.
async fn command(config: &Config, command: Value) -> Result<Map<String, Value>, String> {
    let address = manager_address(config)?;
    ManagerClient::new(&address, config.manager.token.as_deref())
        .send(command)
        .await
}
