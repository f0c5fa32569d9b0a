//! TLS for the gRPC listener: the certificate chain and private key (PEM files) named by
//! `--tls-cert` and `--tls-key`, read and checked when the server starts so that a wrong
//! file stops it at once, naming the flag. With them the listener speaks only TLS (rustls,
//! HTTP/2 negotiated by ALPN, as browsers and gRPC clients do).

use std::{path::Path, time::Duration};

use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::config::Config;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("could not read {flag} {path}: {source}")]
    Read {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The files are not a PEM certificate chain and its key.
    #[error("--tls-cert and --tls-key are not a usable PEM certificate chain and private key: {0}")]
    Invalid(String),
}

/// The server's TLS configuration, or none when the flags are not given.
pub fn load(config: &Config) -> Result<Option<ServerTlsConfig>, TlsError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let identity = Identity::from_pem(read("--tls-cert", cert)?, read("--tls-key", key)?);
    let tls = ServerTlsConfig::new().identity(identity).timeout(HANDSHAKE_TIMEOUT);
    // Building an acceptor parses the PEM: a bad file is found now, not at the first handshake.
    Server::builder().tls_config(tls.clone()).map_err(|err| TlsError::Invalid(causes(&err)))?;
    Ok(Some(tls))
}

/// How long a connection may take to finish its TLS handshake: one that never does (a
/// client that connects and stays silent) must not hold a task and a socket for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An error and its causes ("transport error: …: the key does not match the certificate").
fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { flag, path: path.display().to_string(), source })
}
