//! Auth tokens: the public vectors of docs/PROTOCOL.md "Tokens" and tokens minted by `mswoole token`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::paths;

/// Vector 1: `{"id":1,"type":"wechatUser","code":"demo","nickname":"alice","ctime":1764115200}`.
pub const VECTOR_WECHAT_USER: &str = "qXZAxvfsHzK7DkCw*XDV6YnE:1CBtLXTqAK7L04jN*2Ti1:Ky*Vsr3jypILgUCNpnIP*XfdV*gvZFfIbGnYHMjudVcJzIucjZuQEemUaKEw5G3PEgt*twA__";

/// Vector 2: `{"id":"w-7","type":"wall","code":"demo","nickname":"big screen","ctime":1764115200}`.
pub const VECTOR_WALL: &str = "24VXbnqHVU4JoGH6qd7WpHL:3fv11hHbZxbo7PVZ*H6L1S3vf3ZVcvp:7VY1q8Ty7XOJQV2e6Wpc7kU9:SrAppI:YleXIIpKmlZa0aIloQ7lpMaj77kFXA__";

/// Vector 3: decrypts to `not json at all`, so it is refused.
pub const VECTOR_NOT_JSON: &str = "LSZSzyg0xSyJ83tp:BPF9g__";

/// Vector 1's plaintext as `auth.cipher = "des-cbc"` with the default key and IV
/// (`openssl enc -des-cbc -K <hex "kfw001-w"> -iv <hex "kfw001-w"> -nosalt -base64 -A`, then `tr '+/=' '*:_'`).
pub const VECTOR_DES_CBC: &str = "SrQ96IyAKXn4CzHCK57wzeDzb0Cn3f1ARupTE9TcxW8r7zSGUSqsJZ:mCJpSRSrmNdjpJEllIWwxs:WxdWWfBPlJt3lsXE0rpx:KssW1rNy9uz6HIzDnyQ__";

/// Vector 1's plaintext as `des-cbc` with the default key and `auth.iv = "12345678"`.
pub const VECTOR_DES_CBC_IV: &str = "5kqlbyUdvD2GI0lYW:ad9KgBfpokNdH2HIFy16QIL*7n18Ydqj9V8tdbtiXzMHGwaDSbohq4FeBwbRn*DXdsbdO2KOXfz7X47Vy*UgYUOhCPO22gIzeOZg__";

/// Vector 1's plaintext as 3DES with the key `this-key-is-longer-than-24-bytes`, cut to 24 bytes.
pub const VECTOR_LONG_KEY: &str = "PkxuYWYar9qPD5HO5d*IPP0GxNkl3:Yh9MHd7c7dPjFo*Vgt*NxQoZ0U09:ciNmh:dN2apcdGf:IUvNy*3REjGBjk2P4EufU3YaJ2yK0ffCwK21jrNM:Rg__";

/// The `ctime` of the public vectors.
pub const VECTOR_CTIME: u64 = 1_764_115_200;

/// A token to mint with `mswoole token`.
#[derive(Debug, Clone)]
pub struct Token {
    /// `--id`.
    id: String,
    /// `--type`.
    kind: String,
    /// `--code`.
    code: String,
    /// `--nickname`.
    nickname: String,
    /// `--key`, when not the default key.
    key: Option<String>,
    /// `--ctime`, when not "now".
    ctime: Option<i64>,
    /// `--config`: mint with that config's `auth` settings (key, cipher, iv).
    config: Option<PathBuf>,
    /// `--jwt`: a JWT instead of an MSwoole token.
    jwt: bool,
    /// `--private-key-file` (with `--jwt`): RS256 with this key.
    private_key_file: Option<PathBuf>,
}

impl Token {
    /// A token for `id` of `kind` (`wechatUser`, `wall`, ...) in room `code`.
    pub fn new(id: &str, kind: &str, code: &str, nickname: &str) -> Self {
        Token {
            id: id.into(),
            kind: kind.into(),
            code: code.into(),
            nickname: nickname.into(),
            key: None,
            ctime: None,
            config: None,
            jwt: false,
            private_key_file: None,
        }
    }

    /// A phone user in room `demo`.
    pub fn wechat_user(id: &str) -> Self {
        Token::new(id, "wechatUser", "demo", "user")
    }

    /// Encrypted with another key.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Issued at `ctime` (unix seconds).
    pub fn ctime(mut self, ctime: i64) -> Self {
        self.ctime = Some(ctime);
        self
    }

    /// Minted with the `auth` settings of this config file.
    pub fn config(mut self, path: &Path) -> Self {
        self.config = Some(path.to_path_buf());
        self
    }

    /// A JWT (`--jwt`): HS256 with `auth.jwt.hs256_key` of the config, or the key given.
    pub fn jwt(mut self) -> Self {
        self.jwt = true;
        self
    }

    /// A JWT signed RS256 with this private key (`--jwt --private-key-file`).
    pub fn rs256(mut self, private_key: &Path) -> Self {
        self.jwt = true;
        self.private_key_file = Some(private_key.to_path_buf());
        self
    }

    /// Runs `mswoole token ...` and returns the token it printed.
    pub fn mint(&self) -> String {
        let mut command = Command::new(paths::mswoole_bin());
        // Not the workspace: a `config/app.toml` there must not change the key.
        command.current_dir(std::env::temp_dir());
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command.args([
            "token", "--id", &self.id, "--type", &self.kind, "--code", &self.code,
        ]);
        command.args(["--nickname", &self.nickname]);
        if let Some(key) = &self.key {
            command.args(["--key", key]);
        }
        if let Some(ctime) = self.ctime {
            command.args(["--ctime", &ctime.to_string()]);
        }
        if self.jwt {
            command.arg("--jwt");
        }
        if let Some(file) = &self.private_key_file {
            command.arg("--private-key-file").arg(file);
        }
        let output = command.output().expect("mswoole token runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "`mswoole token` for {self:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let token = stdout.trim();
        assert!(
            !token.is_empty() && !token.contains(char::is_whitespace),
            "`mswoole token` should print the token alone, printed {stdout:?}"
        );
        token.to_string()
    }
}

/// The current unix time in seconds.
pub fn now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit in i64")
}

/// Unix seconds as RFC 3339 in UTC (`2026-07-01T00:00:00Z`), as a config's dates are written.
pub fn rfc3339(unix: i64) -> String {
    let output = Command::new("date")
        .args(["-u", "-d", &format!("@{unix}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("`date` runs");
    assert!(output.status.success(), "date failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}
