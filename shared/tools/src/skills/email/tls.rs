//! TLS client settings shared by SMTP and IMAP: rustls (ring) with the platform's roots plus
//! the operator's CA file, never certificate checks turned off.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::ToolError;

/// The operator's extra CAs, parsed.
pub fn extra_roots(ca_pem: Option<&[u8]>) -> Result<Vec<CertificateDer<'static>>, ToolError> {
    let Some(pem) = ca_pem else {
        return Ok(Vec::new());
    };
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            ToolError::Failed(format!(
                "GATHERING_EMAIL_CA_FILE holds a bad certificate: {e}"
            ))
        })
}

/// A rustls client configuration for IMAP (lettre builds its own from the same inputs).
pub fn client_config(ca_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, ToolError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        extra_roots(ca_pem)?,
        provider.clone(),
    )
    .map_err(|e| ToolError::Failed(format!("cannot set up TLS certificate checks: {e}")))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ToolError::Failed(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}
