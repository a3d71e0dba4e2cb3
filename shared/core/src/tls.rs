//! The TLS crypto provider for outbound HTTPS (reqwest over rustls with ring).

/// Installs ring as rustls' process-wide provider. Idempotent; call before building any
/// `reqwest::Client`.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
