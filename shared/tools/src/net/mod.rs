//! Outbound HTTP for tools, webhooks, `fetch_url` and (later) pipeline/schedule `call_api`
//! actions, behind one SSRF guard.
//!
//! - [`Allowlist`]: `GATHERING_HTTP_ALLOWLIST`, hosts or CIDRs that may be reached even when
//!   private (built in code too, so tests need no process environment).
//! - [`NetGuard`]: the address policy. Names are resolved, every address checked, and the
//!   connection made to exactly the checked addresses (the guard *is* the HTTP client's DNS
//!   resolver), so DNS rebinding between check and connect cannot swap the target.
//! - [`GuardedClient`]: requests with redirects followed by hand, each hop checked, and size and
//!   time limits.

mod allowlist;
mod client;
mod guard;

pub use allowlist::{Allowlist, Cidr};
pub use client::{GuardedClient, HttpLimits, OutboundRequest, OutboundResponse};
pub use guard::{Blocked, NetGuard, blocked_reason};
