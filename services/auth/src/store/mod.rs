//! The `auth` schema's SQL, by table.

pub mod refresh;
pub mod revocations;
pub mod users;
