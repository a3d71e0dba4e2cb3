//! The claims of a GatheRing access token (a JWT signed with Ed25519 by the auth service and
//! verified by every edge).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id (`auth.users.external_id`, or `admin` for the bootstrap admin).
    pub sub: String,
    pub email: String,
    /// `admin` or `user`.
    pub role: String,
    pub iat: i64,
    /// Issue time in milliseconds: "revoke every token issued before T" needs finer than
    /// `iat`'s seconds, or a token issued just after a password change would be refused.
    #[serde(default)]
    pub iat_ms: i64,
    pub exp: i64,
    /// Unique token id: what a revocation names.
    pub jti: String,
}

impl AccessClaims {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

/// The `NOTIFY` channel edges listen on for revocations. Payloads:
/// `jti:<expires unix seconds>:<jti>` or `user:<revoked-before unix milliseconds>:<user id>`.
pub const REVOCATION_CHANNEL: &str = "auth_revocations";
