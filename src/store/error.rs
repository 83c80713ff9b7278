//! The store's errors, in the store's words: callers (the engine, the
//! daemon, the commands) need not know which database is behind it. Each
//! backend sorts its own errors into these kinds.

/// What kind of trouble the store met, as far as a caller acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// A full disk, an I/O error, a lost connection: worth waiting out.
    Transient,
    /// This user may not write the database.
    ReadOnly,
    /// Anything else: a bug, damage, a refused write.
    Other,
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed (the backend's error says all: it
    /// is shown, not chained, so that it is not said twice).
    #[error("{error}")]
    Backend {
        trouble: Trouble,
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database rolled the whole transaction back by itself (an I/O
    /// error, a full disk) while an event was processed.
    #[error("the database rolled the transaction back after an error ({0}); the batch will be tried again")]
    TransactionLost(String),
    /// The store refused an event's rows after the engine had gone on to
    /// the next events (`sqlite::WriteBehind`): the batch must run again
    /// with each write waited for, so that the event fails alone.
    #[error(
        "the store refused an event's writes ({0}); the batch runs again with each write waited for, so that only that event fails (its reason: `inboxd events --outcome failed`)"
    )]
    RefusedBehind(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// A backend's error, sorted.
    pub fn backend(
        trouble: Trouble,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Backend {
            trouble,
            error: source.into(),
        }
    }

    /// A full disk or an I/O error: worth waiting out.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Backend { trouble, .. } => *trouble == Trouble::Transient,
            StoreError::TransactionLost(_) => true,
            StoreError::RefusedBehind(_) => false,
        }
    }

    /// This user may not write the database.
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            StoreError::Backend {
                trouble: Trouble::ReadOnly,
                ..
            }
        )
    }
}
