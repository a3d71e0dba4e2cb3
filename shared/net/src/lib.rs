//! Outbound network policy shared by everything that makes requests on behalf of users or
//! admins: the tools (http, webhooks, fetch), pipeline/schedule actions, and the LLM gateway's
//! calls to providers whose address came from the catalogue.
//!
//! - [`Cidr`]: an IP network (trusted proxies, allow-list entries), on the `ipnet` crate.
//! - [`Allowlist`]: `GATHERING_HTTP_ALLOWLIST`, hosts or networks that may be reached even when
//!   private (built in code too, so tests need no process environment).
//! - [`NetGuard`]: the address policy. Names are resolved, every address checked, and the
//!   connection made to exactly the checked addresses (the guard *is* the HTTP client's DNS
//!   resolver), so DNS rebinding between check and connect cannot swap the target.

mod allowlist;
mod cidr;
mod guard;

pub use allowlist::Allowlist;
pub use cidr::{Cidr, normalise};
pub use guard::{Blocked, GuardResolver, NetGuard, ResolveError, blocked_reason};
