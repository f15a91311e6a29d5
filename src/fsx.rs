//! File writes that never leave a user's file half written.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Who may read the file once written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Keep the existing file's permissions; a new file gets `0644`.
    Keep,
    /// Owner-only (`0600`): the file holds a secret. An existing file is narrowed, never widened.
    OwnerOnly,
}

/// Replaces `path` with `contents` atomically: a temporary file in the same directory is
/// written, flushed to disk, given the right permissions, and renamed over the target, then
/// the directory is synced. A reader sees the old file or the new one, never a mix; a failure
/// at any point leaves the old file as it was. A symlink is followed, so the link survives.
pub fn write_atomic(path: &Path, contents: &[u8], access: Access) -> io::Result<()> {
    let target = resolve_symlink(path)?;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let existing_mode = existing_mode(&target)?;
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.",
            target.file_name().and_then(|n| n.to_str()).unwrap_or("file")
        ))
        .suffix(".tmp")
        .tempfile_in(&dir)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    set_mode(temp.path(), existing_mode, access)?;
    temp.persist(&target).map_err(|e| e.error)?;
    sync_dir(&dir);
    Ok(())
}

/// Creates a directory (and its parents) that only the owner can enter, or narrows an existing
/// one to that. A directory already so is left alone: one `stat`, no write to its inode.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o777 == 0o700) {
            return Ok(());
        }
        fs::create_dir_all(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir)?;
    Ok(())
}

fn resolve_symlink(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let link = fs::read_link(path)?;
            Ok(match path.parent() {
                Some(parent) if link.is_relative() => parent.join(link),
                _ => link,
            })
        }
        _ => Ok(path.to_path_buf()),
    }
}

#[cfg(unix)]
fn existing_mode(path: &Path) -> io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    match fs::metadata(path) {
        Ok(meta) => Ok(Some(meta.permissions().mode() & 0o7777)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn existing_mode(_path: &Path) -> io::Result<Option<u32>> {
    Ok(None)
}

#[cfg(unix)]
fn set_mode(path: &Path, existing: Option<u32>, access: Access) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match (access, existing) {
        (Access::Keep, Some(mode)) => mode,
        (Access::Keep, None) => 0o644,
        (Access::OwnerOnly, Some(mode)) => (mode & 0o700) | 0o600,
        (Access::OwnerOnly, None) => 0o600,
    };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _existing: Option<u32>, _access: Access) -> io::Result<()> {
    Ok(())
}

/// Makes the rename durable. Best effort: not every platform can open a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn permissions_follow_the_access_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        // (mode before, or none for a new file; access; mode after)
        let cases = [
            (None, Access::Keep, 0o644),
            (None, Access::OwnerOnly, 0o600),
            (Some(0o640), Access::Keep, 0o640),
            (Some(0o664), Access::OwnerOnly, 0o600),
            (Some(0o700), Access::OwnerOnly, 0o700),
            (Some(0o600), Access::Keep, 0o600),
        ];
        for (n, (before, access, after)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("f{n}"));
            if let Some(before) = before {
                fs::write(&path, "old").unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(before)).unwrap();
            }
            write_atomic(&path, b"new", access).unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), "new");
            assert_eq!(mode(&path), after, "{before:?} {access:?}");
        }
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
    }

    #[test]
    fn a_failed_write_leaves_the_old_content_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // The rename cannot replace a directory: the write fails at its last step.
        let blocked = dir.path().join("settings.json");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), "kept").unwrap();
        assert!(write_atomic(&blocked, b"{}", Access::Keep).is_err());
        assert_eq!(fs::read_to_string(blocked.join("inside")).unwrap(), "kept");
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["settings.json"], "the temporary file is cleaned up");
    }

    #[cfg(unix)]
    #[test]
    fn private_directories_are_made_or_narrowed_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // (mode before, or none for a directory not there yet)
        let cases = [
            (None, "new/nested"),
            (Some(0o755), "wide"),
            (Some(0o700), "private"),
            (Some(0o500), "read-only"),
        ];
        for (before, name) in cases {
            let path = dir.path().join(name);
            if let Some(mode) = before {
                fs::create_dir(&path).unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            }
            create_private_dir(&path).unwrap();
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{name}");
        }
        let file = dir.path().join("a-file");
        fs::write(&file, "").unwrap();
        assert!(create_private_dir(&file).is_err(), "a file is no directory");
    }

    #[test]
    fn a_symlink_is_followed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        let link = dir.path().join("link.json");
        fs::write(&real, "{}").unwrap();
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        write_atomic(&link, b"{\"a\": 1}", Access::Keep).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "{\"a\": 1}");
    }
}
