//! Writing a file so it survives a crash with the mode it must have, and so that nothing planted
//! beside it redirects the write.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `bytes` to `path` with `mode`, and syncs it to disk before returning.
pub(crate) fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    // An existing file keeps its mode under `mode()`: set it explicitly.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes `name` into `folder`, which others may write to too (an EHR's import share, the
/// service-owned model store written by root): the bytes go to a fresh, randomly named file created
/// exclusively (never an existing file, never through a symlink), synced, then renamed over `name`.
/// A reader never sees half a file, and a symlink planted at `name` is replaced, not followed.
pub fn replace_in_folder(
    folder: &Path,
    name: &str,
    mode: u32,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut partial = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(folder)?;
    write(partial.as_file_mut())?;
    partial.as_file().sync_all()?;
    partial.persist(folder.join(name)).map_err(|e| e.error)?;
    File::open(folder)?.sync_all()
}
