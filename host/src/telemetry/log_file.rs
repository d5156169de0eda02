//! The host's log: stdout and a file in the runtime directory that rotates or reopens.
//!
//! Why: an operator running a live event reads the log file while clients come and go,
//! and the disk must not fill up over a week of events. `[log] rotate = "daily"` (the
//! default) starts `mswoole.YYYY-MM-DD.log` every UTC day, keeps the newest `log.keep`
//! files and points the link `mswoole.log` at today's, so `tail -F mswoole.log` keeps
//! following. `rotate = "never"` writes `mswoole.log` only and leaves rotation to
//! logrotate: after it renames the file, `SIGUSR1` makes the host reopen the path, so
//! nothing is lost and no `copytruncate` is needed (README.md, "Deploying").
//!
//! How: `tracing-appender` does the dated files, the pruning and the link; this file
//! only holds its appender behind a lock, so a reopen swaps in a fresh one.

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
};

use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::{
    fmt::{writer::MakeWriterExt, MakeWriter},
    EnvFilter,
};

use crate::config::{Log, Rotate};

/// Name of the log file (`rotate = "never"`) or of the link to today's file (`daily`).
pub const LOG_FILE: &str = "mswoole.log";
/// Daily files are `<PREFIX>.YYYY-MM-DD.<SUFFIX>`; only files named so are pruned.
const PREFIX: &str = "mswoole";
/// See [`PREFIX`].
const SUFFIX: &str = "log";

/// The log file the host writes; [`LogFile::reopen`] starts over at the same path.
pub struct LogFile {
    /// Where the files go.
    dir: PathBuf,
    /// `[log]` as configured.
    settings: Log,
    /// The open file. Writers take the read side for one line; a reopen takes the write side.
    appender: RwLock<RollingFileAppender>,
}

impl LogFile {
    /// Opens (creating) the log file in `dir`.
    pub fn open(dir: &Path, settings: &Log) -> Result<LogFile, String> {
        let appender = appender(dir, settings)?;
        Ok(LogFile {
            dir: dir.to_path_buf(),
            settings: settings.clone(),
            appender: RwLock::new(appender),
        })
    }

    /// Closes the file and opens its path again (after logrotate renamed it).
    pub fn reopen(&self) -> Result<(), String> {
        let fresh = appender(&self.dir, &self.settings)?;
        *self
            .appender
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The path operators read: the file itself or the link to today's.
    pub fn path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }
}

/// A fresh appender for `[log]`.
fn appender(dir: &Path, settings: &Log) -> Result<RollingFileAppender, String> {
    let builder = RollingFileAppender::builder()
        .filename_prefix(PREFIX)
        .filename_suffix(SUFFIX);
    let builder = match settings.rotate {
        Rotate::Never => builder.rotation(Rotation::NEVER),
        Rotate::Daily => {
            keep_unrotated_file(dir)?;
            builder
                .rotation(Rotation::DAILY)
                .max_log_files(settings.keep)
                .latest_symlink(LOG_FILE)
        }
    };
    builder
        .build(dir)
        .map_err(|e| format!("cannot open the log file in {}: {e}", dir.display()))
}

/// Moves a plain `mswoole.log` (left by `rotate = "never"`) out of the link's way.
///
/// The appender replaces whatever is at the link's path; a file written before the
/// switch to daily rotation would be deleted. It becomes one more dated-looking file,
/// pruned with the others.
fn keep_unrotated_file(dir: &Path) -> Result<(), String> {
    let path = dir.join(LOG_FILE);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let kept = dir.join(format!("{PREFIX}.unrotated-{stamp}.{SUFFIX}"));
            fs::rename(&path, &kept)
                .map_err(|e| format!("cannot move {} aside: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

/// One log line's way into the file (`Arc<LogFile>` is then a tracing writer).
impl io::Write for &LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let appender = self.appender.read().unwrap_or_else(PoisonError::into_inner);
        let mut writer = appender.make_writer();
        writer.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // The formatter hands over a whole line: write it under one lock, so a reopen
        // never splits it between two files.
        let appender = self.appender.read().unwrap_or_else(PoisonError::into_inner);
        let mut writer = appender.make_writer();
        writer.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Logs to stdout and to the log file in `runtime`, filtered by `[log] level`.
pub fn init(runtime: &Path, settings: &Log) -> Result<Arc<LogFile>, String> {
    let filter = EnvFilter::try_new(&settings.level)
        .map_err(|e| format!("log.level {:?} is not a valid filter: {e}", settings.level))?;
    let file = Arc::new(LogFile::open(runtime, settings)?);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(io::stdout.and(file.clone()))
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))?;
    Ok(file)
}
