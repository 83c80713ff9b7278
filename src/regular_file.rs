//! The files inboxd reads (the config, pipelines, scripts, rule tests) and
//! the small ones it writes beside its store: regular files only, opened
//! without blocking, so that a FIFO or a device named like a rule can
//! neither hang `validate` or a reload nor be read as one; and never
//! written through a symlink someone put in their place.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest file read as config or rules: far above any real one, and
/// a bound on what a stray huge file costs.
pub const MAX_SIZE: u64 = 16 * 1024 * 1024;

/// The text of `path` if it is a regular file (a symlink to one counts).
pub fn read(path: &Path) -> std::io::Result<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO's open would wait for a writer.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not a regular file (a {})", kind(&meta.file_type())),
        ));
    }
    if meta.len() > MAX_SIZE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} bytes, more than the {MAX_SIZE} allowed", meta.len()),
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1).read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + valid.iter().rev().take_while(|&&b| b != b'\n').count();
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (line {line}, byte {column} of the line)"),
        )
    })
}

/// Opens `path` to write it (created with `mode` if absent, emptied if
/// `truncate`), refusing to follow a symlink in its place.
pub fn create(path: &Path, mode: u32, truncate: bool) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

fn kind(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.rhai");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
        let err = read(&fifo).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let err = read(dir.path()).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
        std::fs::write(dir.path().join("ok.rhai"), "let x = 1;").unwrap();
        assert_eq!(read(&dir.path().join("ok.rhai")).unwrap(), "let x = 1;");
    }

    #[test]
    fn text_that_is_not_utf8_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latin1.rhai");
        std::fs::write(&file, b"let x = 1;\n// caf\xe9\n").unwrap();
        let err = read(&file).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not UTF-8 text (line 2, byte 7 of the line)"
        );
    }
}
