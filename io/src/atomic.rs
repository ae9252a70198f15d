//! Atomic file writes: a reader (or a crash) sees either the old file or the
//! whole new one, never a prefix. The bytes go to a temporary file in the
//! same directory (a rename is only atomic within one file system), which is
//! synced before the rename; the directory is synced after it so the rename
//! itself survives a power cut.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Writes `path` through `fill`, atomically. On any failure the temporary
/// file is removed and `path` is left as it was.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let tmp = temp_path(path)?;
    let result = write_temp(&tmp, fill).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::file(path, e.to_string()));
    }
    sync_dir(path).map_err(Error::io(path))
}

/// Writes `bytes` to `path`, atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| w.write_all(bytes))
}

fn write_temp(tmp: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    // create_new: never clobber a file that happens to have the temporary name.
    let file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    fill(&mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// `.<name>.tmp.<pid>.<n>` next to `path`: hidden, and unique among the
/// writers of this process and of others.
fn temp_path(path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| Error::file(path, "not a file path"))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = format!(".{}.tmp.{}.{n}", name.to_string_lossy(), std::process::id());
    Ok(path.with_file_name(tmp))
}

#[cfg(unix)]
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

// Other systems cannot open a directory as a file; their rename is as
// durable as they make it.
#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wapo-io-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch directory");
        dir
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = scratch("replace");
        let path = dir.join("a.json");
        write_bytes(&path, b"old").expect("first write");
        write_bytes(&path, b"new contents").expect("second write");
        assert_eq!(fs::read(&path).expect("read back"), b"new contents");
        let names: Vec<_> = fs::read_dir(&dir).expect("list").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failing_writer_keeps_the_old_file() {
        let dir = scratch("fail");
        let path = dir.join("a.json");
        write_bytes(&path, b"old").expect("first write");
        let err = write_with(&path, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        })
        .expect_err("the writer failed");
        assert_eq!(err.file, path);
        assert!(err.reason.contains("disk full"), "{err}");
        assert_eq!(fs::read(&path).expect("read back"), b"old");
        assert_eq!(fs::read_dir(&dir).expect("list").count(), 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
