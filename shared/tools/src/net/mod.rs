//! Outbound HTTP for tools, webhooks, `fetch_url` and (later) pipeline/schedule `call_api`
//! actions, behind one SSRF guard.
//!
//! - [`Allowlist`] and [`NetGuard`] (from `gathering-net`): `GATHERING_HTTP_ALLOWLIST` and the
//!   address policy, enforced by the HTTP client's resolver.
//! - [`GuardedClient`]: requests with redirects followed by hand, each hop checked, and size and
//!   time limits.

mod client;

pub use client::{GuardedClient, HttpLimits, OutboundRequest, OutboundResponse};
pub use gathering_net::{Allowlist, Blocked, Cidr, NetGuard, blocked_reason};
