//! The request pipeline around every route (outermost first): request id and access log, CORS,
//! security headers, rate limits, authentication.

pub mod client_ip;
pub mod rate_limit;
pub mod request_id;
pub mod security_headers;
pub mod shared_limit;

pub use client_ip::ClientMeta;
pub use request_id::RequestId;
