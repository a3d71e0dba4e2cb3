//! The event log (`events.log`): every domain event is a row written in the transaction that
//! made the change it describes, followed by a coalesced `NOTIFY events` carrying the newest id.
//!
//! # Reading without gaps
//!
//! Ids are taken when rows are inserted but transactions commit in any order, so "rows after my
//! last id" can skip a row whose transaction committed late. Readers therefore walk the log in
//! `(xid, id)` order and only below the oldest transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`): every row there is final and no new row can
//! appear before the reader's cursor. A notification is only a wake-up; a lost one delays
//! delivery until the next poll, never loses an event.
//!
//! # High-frequency events
//!
//! Progress, typing and metrics events go through [`Publisher::publish_coalesced`]: identical
//! events within a window are dropped and the rest are written as one batch per window.

pub mod announce;
pub mod cursor;
pub mod error;
pub mod event;
pub mod hub;
pub mod publish;
pub mod read;
pub mod retention;

pub use announce::Announcer;
pub use cursor::Cursor;
pub use error::EventError;
pub use event::{Event, NewEvent};
pub use hub::{Hub, HubBatch};
pub use publish::{
    DEFAULT_NOTIFY_WINDOW, Publisher, PublisherOptions, publish_in, publish_quiet_in,
};
pub use read::{Filter, cursor_of, read_after, tail};

/// The `NOTIFY` channel.
pub const CHANNEL: &str = "events";
