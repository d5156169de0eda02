//! Watches the plugin directory and rescans it when a library is rebuilt.
//!
//! What cargo does in `target/<profile>/` (HOTSWAP-NOTES): it removes the file and
//! re-creates it as a hard link a few ms later, with no `Modify` and no
//! `Close(Write)`; other tools write in place or rename. So every create, modify,
//! remove, rename and close-after-write of a `lib*.so` counts, `Access` events do
//! not (opening our own copy would trigger a reload loop), and the scan waits for
//! [`QUIET`] without events, then for the file's stamp (size, mtime, inode) to hold still for
//! [`SETTLE`]. The scan itself refuses an incomplete ELF and keeps the old version.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use notify::{
    event::{AccessKind, AccessMode},
    Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher,
};
use tokio::sync::mpsc;

use super::{stamp, Plugins};
use crate::runtime::shutdown::Shutdown;

/// Quiet time after the last event before a scan.
const QUIET: Duration = Duration::from_millis(300);
/// Two stats this far apart must agree before a file is loaded.
const SETTLE: Duration = Duration::from_millis(50);

/// Whether an event may mean a library changed.
fn relevant(event: &Event) -> bool {
    let kind_counts = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Any
        | EventKind::Other => true,
    };
    kind_counts && event.paths.iter().any(|path| is_library_name(path))
}

fn is_library_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("lib") && name.ends_with(".so")
}

/// Waits until every changed file that still exists holds still.
async fn settle(paths: &[PathBuf]) {
    for _ in 0..100 {
        let before: Vec<_> = paths.iter().map(|p| stamp(p)).collect();
        tokio::time::sleep(SETTLE).await;
        let after: Vec<_> = paths.iter().map(|p| stamp(p)).collect();
        if before == after {
            return;
        }
    }
}

/// Starts watching; the returned watcher must be kept alive.
pub fn spawn(plugins: Arc<Plugins>, shutdown: Shutdown) -> Result<RecommendedWatcher, String> {
    let (events, mut incoming) = mpsc::unbounded_channel::<Vec<PathBuf>>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<Event>| match event {
            Ok(event) if relevant(&event) => {
                let _ = events.send(event.paths);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!("plugin watcher: {error}"),
        })
        .map_err(|e| format!("plugins.watch: cannot start the watcher: {e}"))?;
    watcher
        .watch(plugins.dir(), RecursiveMode::NonRecursive)
        .map_err(|e| {
            format!(
                "plugins.watch: cannot watch {}: {e}",
                plugins.dir().display()
            )
        })?;
    tracing::info!(dir = %plugins.dir().display(), "watching the plugin directory");

    tokio::spawn(async move {
        loop {
            let first = tokio::select! {
                _ = shutdown.stopping() => return,
                paths = incoming.recv() => match paths { Some(paths) => paths, None => return },
            };
            let mut changed: Vec<PathBuf> = first;
            // Debounce: keep collecting until QUIET passes without an event.
            while let Ok(Some(more)) = tokio::time::timeout(QUIET, incoming.recv()).await {
                changed.extend(more);
            }
            changed.retain(|path| is_library_name(path));
            changed.sort();
            changed.dedup();
            settle(&changed).await;
            for path in changed.iter().filter(|p| !p.exists()) {
                tracing::info!(file = %path.display(), "plugin file removed; its module keeps serving");
            }
            let loaded = plugins.scan().await;
            tracing::debug!(loaded, "watcher rescan done");
        }
    });
    Ok(watcher)
}
