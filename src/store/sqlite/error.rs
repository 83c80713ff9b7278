//! SQLite's errors sorted into the store's kinds of trouble.

use crate::store::{StoreError, Trouble};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        let trouble = match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure) => {
                Trouble::Transient
            }
            Some(rusqlite::ErrorCode::ReadOnly) => Trouble::ReadOnly,
            _ => Trouble::Other,
        };
        StoreError::backend(trouble, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: std::ffi::c_int) -> StoreError {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None).into()
    }

    #[test]
    fn full_disks_and_io_errors_are_transient_damage_is_not() {
        assert!(sqlite(rusqlite::ffi::SQLITE_FULL).is_transient());
        assert!(sqlite(rusqlite::ffi::SQLITE_IOERR).is_transient());
        assert!(!sqlite(rusqlite::ffi::SQLITE_CORRUPT).is_transient());
        assert!(sqlite(rusqlite::ffi::SQLITE_READONLY).is_read_only());
    }
}
