//! Opens a plugin library and checks it before anything in it is used.
//!
//! This is the only file with `unsafe`. The steps follow what was measured on this
//! machine kind (HOTSWAP-NOTES): the library is copied to a unique private name
//! (the dynamic loader caches by path and inode, and a file rewritten under a
//! mapping crashes), the copy must be a complete ELF (dlopen of a half-written file
//! died with SIGBUS), and it is opened with `RawLibrary::load_at` rather than
//! `RootModule::load_from_file`, which caches the first module per type forever.
//! Libraries are never unloaded: abi_stable's layout checker keeps a process-wide
//! cache pointing into every checked library, and values a plugin created carry
//! vtables inside it. The cost is one mapped library per load, stated in the README.

#![allow(unsafe_code)]

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
};

use abi_stable::library::{lib_header_from_raw_library, LibraryError, RawLibrary};
use mswoole_plugin_api::{ffi::PluginModRef, PLUGIN_API_VERSION};

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

/// Copies `file` to a unique name in `copies`, opens the copy and checks its ABI.
///
/// Returns the root module and the copy's path; the library stays mapped for the
/// life of the process.
pub fn load(file: &Path, copies: &Path, serial: u64) -> Result<(PluginModRef, PathBuf), LoadError> {
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

    let library = match RawLibrary::load_at(&copy) {
        Ok(library) => Box::leak(Box::new(library)),
        Err(error) => {
            let _ = fs::remove_file(&copy);
            return Err(library_error(error));
        }
    };
    // SAFETY: `library` is leaked just above, so it is never unmapped and the
    // header's `'static` references stay valid for the life of the process.
    let header = unsafe { lib_header_from_raw_library(library) }.map_err(library_error)?;
    let root = header
        .init_root_module::<PluginModRef>()
        .map_err(library_error)?;
    let api = root.api_version();
    if api != PLUGIN_API_VERSION {
        return Err(LoadError::new(format!(
            "built for plugin-api {api}, this host offers {PLUGIN_API_VERSION}"
        )));
    }
    Ok((root, copy))
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
    fn layout_reports_are_cut_to_their_last_lines() {
        assert_eq!(tail("a\n\n b \nc\nd", 2), "c | d");
    }
}
