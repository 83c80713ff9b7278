//! The store's errors, in the store's words: callers (the engine, the
//! daemon, the commands) need not know which database is behind it.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The database rolled the whole transaction back by itself (an I/O
    /// error, a full disk) while an event was processed.
    #[error("the database rolled the transaction back after an error ({0}); the batch will be tried again")]
    TransactionLost(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    fn code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => Some(e.code),
            _ => None,
        }
    }

    /// A full disk or an I/O error: worth waiting out.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code(),
            Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
        ) || matches!(self, StoreError::TransactionLost(_))
    }

    /// This user may not write the database.
    pub fn is_read_only(&self) -> bool {
        self.code() == Some(rusqlite::ErrorCode::ReadOnly)
    }
}
