//! The edge's side of authentication: verifying access tokens locally with the auth service's
//! public keys, the revocation set kept current through `LISTEN`, the middleware that guards
//! every non-public route, and the audit of refused requests.

pub mod audit_writer;
pub mod client;
pub mod csrf;
pub mod extract;
pub mod middleware;
pub mod revocations;
pub mod session_cookie;
pub mod verified;
pub mod verifier;

pub use extract::{AuthUser, BearerUser};
pub use verifier::{Verifier, VerifyError};
