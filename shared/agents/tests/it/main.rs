//! Agent runtime tests against a real PostgreSQL (and the real gateway where embeddings are
//! needed).

mod goals;
mod lease;
mod memory;
