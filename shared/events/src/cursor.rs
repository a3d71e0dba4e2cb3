//! A reader's position in the log.

/// Position after which a reader continues: `(xid, id)` of the last row it saw. The
/// transaction id orders rows by when their transaction started, which, below the oldest
/// running transaction, never changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub xid: i64,
    pub id: i64,
}

impl Cursor {
    /// Before every row.
    pub const START: Cursor = Cursor { xid: 0, id: 0 };
}
