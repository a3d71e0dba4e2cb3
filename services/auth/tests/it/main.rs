//! Auth service tests against a real PostgreSQL (HTTP-level tests live with the edge).

mod keys;
mod perimeter;
