//! Opens a plugin library and checks it before anything in it is used.
//!
//! This is the only file with `unsafe`. The steps follow what was measured on this
//! machine kind (HOTSWAP-NOTES): the library is copied to a unique private name
//! (the dynamic loader caches by path and inode, and a file rewritten under a
//! mapping crashes), the copy must be a complete ELF (dlopen of a half-written file
//! died with SIGBUS), and it is opened with `RawLibrary::load_at` rather than
//! `RootModule::load_from_file`, which caches the first module per type forever.
//!
//! Retired versions are unloaded. Two conditions make that safe: the layout is
//! checked against a fresh `CheckingGlobals` (abi_stable's process-wide checker
//! keeps pointers into every library it checked, and the next check after an
//! unload segfaulted), and a [`Library`] is dropped only after every value the
//! plugin made (its module, futures, strings) — see `Generation`.

#![allow(unsafe_code)]

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
};

use abi_stable::{
    abi_stability::abi_checking::{check_layout_compatibility_with_globals, CheckingGlobals},
    library::{lib_header_from_raw_library, LibraryError, RawLibrary, RootModule},
    sabi_types::VersionNumber,
    StableAbi,
};
use mswoole_plugin_api::{ffi::PluginModRef, PLUGIN_API_VERSION};

/// A mapped plugin library and its private copy; dropping it unloads both.
pub struct Library {
    /// `None` only while dropping.
    raw: Option<RawLibrary>,
    /// The private copy that is mapped.
    copy: PathBuf,
}

impl Library {
    /// The private copy's path.
    pub fn copy(&self) -> &Path {
        &self.copy
    }

    /// Removes the private copy but leaves the library mapped until the process ends.
    pub fn keep_mapped(mut self) {
        std::mem::forget(self.raw.take());
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        drop(self.raw.take());
        let _ = fs::remove_file(&self.copy);
    }
}

/// A library that could not be used, and why.
#[derive(Debug, Clone)]
pub struct LoadError {
    /// One line for the log and `status`.
    pub reason: String,
    /// The whole text (abi_stable's layout reports run to hundreds of lines).
    pub detail: String,
}

impl LoadError {
    fn new(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        LoadError {
            detail: reason.clone(),
            reason,
        }
    }
}

/// Checks that `bytes` start a 64-bit ELF whose section headers lie inside `len` bytes.
///
/// Linkers write the section headers last, so a file still being written fails this.
pub fn check_elf_complete(header: &[u8], len: u64) -> Result<(), String> {
    if header.len() < 64 || &header[..4] != b"\x7fELF" {
        return Err("not an ELF shared library".into());
    }
    if header[4] != 2 || header[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u64_at = |at: usize| {
        header[at..at + 8]
            .iter()
            .rev()
            .fold(0u64, |n, b| n << 8 | u64::from(*b))
    };
    let u16_at = |at: usize| u64::from(header[at]) | u64::from(header[at + 1]) << 8;
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3A), u16_at(0x3C));
    let end = shoff.saturating_add(shentsize.saturating_mul(shnum));
    if end > len {
        return Err(format!(
            "truncated: section headers end at byte {end}, file has {len}"
        ));
    }
    Ok(())
}

/// The last lines of a layout report: they name the mismatch (`Expected: u16 / Found: u64`).
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

fn library_error(error: LibraryError) -> LoadError {
    let detail = error.to_string();
    let reason = match &error {
        LibraryError::AbiInstability(_) => format!("incompatible ABI: {}", tail(&detail, 6)),
        LibraryError::IncompatibleVersionNumber { .. } => {
            format!("incompatible plugin-api version: {}", tail(&detail, 3))
        }
        LibraryError::OpenError { .. } => format!("cannot be opened: {}", tail(&detail, 2)),
        LibraryError::GetSymbolError { .. } => {
            "not an mswoole plugin (no root module exported)".to_string()
        }
        _ => tail(&detail, 4),
    };
    LoadError { reason, detail }
}

/// The plugin-api version a library was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion {
    /// Major: another one is refused.
    pub major: u32,
    /// Minor: a newer one than the host's is refused.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl ApiVersion {
    fn from_number(number: VersionNumber) -> Self {
        ApiVersion {
            major: number.major,
            minor: number.minor,
            patch: number.patch,
        }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The plugin-api this host offers.
pub fn host_api_version() -> ApiVersion {
    VersionNumber::new(PluginModRef::VERSION_STRINGS)
        .map(ApiVersion::from_number)
        .unwrap_or(ApiVersion {
            major: PLUGIN_API_VERSION,
            minor: 0,
            patch: 0,
        })
}

/// Whether a library built for `built` may load in a host offering `host`: the
/// same major, and a minor no newer (a newer plugin may call what this host lacks).
pub fn check_api_version(built: ApiVersion, host: ApiVersion) -> Result<(), String> {
    if built.major != host.major || built.minor > host.minor {
        let hint = match built.major == host.major {
            true => format!(
                "rebuild it against plugin-api {}.{} or run a newer host",
                host.major, host.minor
            ),
            false => "rebuild it against this host's plugin-api".to_string(),
        };
        return Err(format!(
            "built for plugin-api {built}, this host offers plugin-api {host}: {hint}"
        ));
    }
    Ok(())
}

/// Copies `file` to a unique name in `copies`, opens the copy and checks its ABI
/// and the plugin-api version it was built for.
///
/// The root module stays valid while the returned [`Library`] lives.
pub fn load(
    file: &Path,
    copies: &Path,
    serial: u64,
) -> Result<(PluginModRef, Library, ApiVersion), LoadError> {
    let len = fs::metadata(file)
        .map_err(|e| LoadError::new(format!("cannot read: {e}")))?
        .len();
    let mut header = [0u8; 64];
    let read = fs::File::open(file)
        .and_then(|mut f| f.read(&mut header))
        .map_err(|e| LoadError::new(format!("cannot read: {e}")))?;
    check_elf_complete(&header[..read], len).map_err(LoadError::new)?;

    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    let copy = copies.join(format!("{stem}.{}.{serial}.so", std::process::id()));
    fs::create_dir_all(copies)
        .map_err(|e| LoadError::new(format!("cannot create {}: {e}", copies.display())))?;
    fs::copy(file, &copy)
        .map_err(|e| LoadError::new(format!("cannot copy to {}: {e}", copy.display())))?;

    // From here on, dropping `library` (on any error too) unloads the copy and removes it.
    let library = match RawLibrary::load_at(&copy) {
        Ok(raw) => Library {
            raw: Some(raw),
            copy,
        },
        Err(error) => {
            let _ = fs::remove_file(&copy);
            return Err(library_error(error));
        }
    };
    let Some(raw) = library.raw.as_ref() else {
        return Err(LoadError::new("library vanished while loading"));
    };
    // SAFETY: the header borrows from the mapped library; it is used only in this
    // function, while `library` is alive, and nothing derived from it that points
    // into the library outlives `library` except the root module, which the caller
    // keeps next to it.
    let header = unsafe { lib_header_from_raw_library(raw) }.map_err(library_error)?;
    // The version first: a newer plugin is refused with both versions named,
    // before its layout (which may have grown) is even looked at.
    let built = VersionNumber::new(header.version_strings())
        .map(ApiVersion::from_number)
        .map_err(|e| LoadError::new(format!("unreadable plugin-api version: {e}")))?;
    check_api_version(built, host_api_version()).map_err(LoadError::new)?;
    let layout = header
        .layout()
        .ok_or_else(|| LoadError::new("the library exports no layout to check"))?;
    // A fresh checker: the global one would keep pointers into this library after it is unloaded.
    let globals = CheckingGlobals::new();
    // The library's layout is checked as the *interface* and the host's as the
    // implementation: abi_stable lets an implementation's prefix types (the root
    // module, the `HostApi` and `ModuleObj` vtables) have more fields than the
    // interface, never fewer. A host is newer than the plugins built before it, so
    // this is the direction that lets a plugin built on plugin-api 1.0 load in a 1.1
    // host (the other way round refused it: "too many fields"). A plugin newer than
    // the host was already refused by its version above.
    if let Err(errors) = check_layout_compatibility_with_globals(
        layout,
        <PluginModRef as StableAbi>::LAYOUT,
        &globals,
    ) {
        // Formatted now: the errors point into the library, which is unloaded on return.
        let detail = errors.to_string();
        return Err(LoadError {
            reason: format!(
                "incompatible ABI (Expected: the plugin's, Found: this host's): {}",
                tail(&detail, 6)
            ),
            detail,
        });
    }
    drop(globals);
    // SAFETY: the layout was checked just above, against this host's `PluginModRef`.
    let root = unsafe { header.init_root_module_with_unchecked_layout::<PluginModRef>() }
        .map_err(library_error)?;
    let api = root.api_version();
    if api != PLUGIN_API_VERSION {
        return Err(LoadError::new(format!(
            "built for plugin-api {api}, this host offers {PLUGIN_API_VERSION}"
        )));
    }
    Ok((root, library, built))
}

/// Removes private copies left by earlier runs of this host.
pub fn clear_copies(copies: &Path) {
    if let Ok(entries) = fs::read_dir(copies) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|ext| ext == "so") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf_header(shoff: u64, shentsize: u16, shnum: u16) -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 2;
        header[5] = 1;
        header[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        header[0x3A..0x3C].copy_from_slice(&shentsize.to_le_bytes());
        header[0x3C..0x3E].copy_from_slice(&shnum.to_le_bytes());
        header
    }

    #[test]
    fn a_complete_elf_passes_and_a_truncated_one_fails() {
        let header = elf_header(1000, 64, 10);
        assert_eq!(check_elf_complete(&header, 1640), Ok(()));
        assert!(check_elf_complete(&header, 1639).is_err_and(|e| e.contains("truncated")));
    }

    #[test]
    fn text_is_not_a_library() {
        let text = b"hello, I am not a library at all, but I am long enough to have a header.";
        assert!(
            check_elf_complete(text, text.len() as u64).is_err_and(|e| e.contains("not an ELF"))
        );
    }

    #[test]
    fn older_and_equal_minors_load_newer_ones_and_other_majors_do_not() {
        let v = |major, minor| ApiVersion {
            major,
            minor,
            patch: 0,
        };
        assert_eq!(check_api_version(v(1, 0), v(1, 1)), Ok(()));
        assert_eq!(check_api_version(v(1, 1), v(1, 1)), Ok(()));
        let newer = check_api_version(v(1, 2), v(1, 1)).expect_err("newer minor");
        assert!(
            newer.contains("built for plugin-api 1.2.0, this host offers plugin-api 1.1.0"),
            "{newer}"
        );
        assert!(check_api_version(v(2, 0), v(1, 1)).is_err());
        assert!(check_api_version(v(0, 1), v(1, 1)).is_err());
    }

    #[test]
    fn the_host_offers_the_plugin_api_it_was_built_with() {
        assert_eq!(
            host_api_version().to_string(),
            mswoole_plugin_api::PLUGIN_API_RELEASE
        );
    }

    #[test]
    fn layout_reports_are_cut_to_their_last_lines() {
        assert_eq!(tail("a\n\n b \nc\nd", 2), "c | d");
    }
}
