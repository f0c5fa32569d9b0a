//! TLS for the gRPC listener: the certificate chain and private key (PEM files) named by
//! `--tls-cert` and `--tls-key`, read and checked when the server starts so that a wrong
//! file (a CA's certificate among them) stops it at once, naming the flag. With them the listener speaks only TLS (rustls,
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
    /// A file is not what its flag needs.
    #[error("{flag} {path}: {why}")]
    Unusable {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        why: &'static str,
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
    let (cert_pem, key_pem) = (read("--tls-cert", cert)?, read("--tls-key", key)?);
    let unusable = |flag, path: &Path, why| TlsError::Unusable { flag, path: path.display().to_string(), why };
    // rustls' own words for these ("peer sent no certificates") would mislead an operator.
    if !contains(&cert_pem, "-----BEGIN CERTIFICATE-----") {
        return Err(unusable("--tls-cert", cert, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    match certificates_are_cas(&cert_pem).as_slice() {
        [Some(true), rest @ ..] if rest.contains(&Some(false)) => {
            return Err(unusable(
                "--tls-cert",
                cert,
                "lists a CA certificate first: put the server's own (leaf) certificate first, then the \
                 CA certificates that signed it",
            ));
        }
        [Some(true), ..] => {
            return Err(unusable(
                "--tls-cert",
                cert,
                "is a CA certificate (basicConstraints CA:TRUE), which clients refuse as a server's own \
                 (rustls: CaUsedAsEndEntity): give the server a leaf certificate signed by this CA",
            ));
        }
        _ => {}
    }
    if contains(&key_pem, "ENCRYPTED PRIVATE KEY") {
        return Err(unusable("--tls-key", key, "is encrypted; give the key unencrypted (openssl pkey -in … -out …)"));
    }
    if !contains(&key_pem, "PRIVATE KEY-----") {
        return Err(unusable("--tls-key", key, "holds no PEM private key"));
    }
    let identity = Identity::from_pem(cert_pem, key_pem);
    let tls = ServerTlsConfig::new().identity(identity).timeout(HANDSHAKE_TIMEOUT);
    // Building an acceptor parses the PEM: a bad file is found now, not at the first handshake.
    Server::builder().tls_config(tls.clone()).map_err(|err| {
        let why = crate::telemetry::error_chain(&err);
        if why.contains("KeyMismatch") {
            unusable("--tls-key", key, "is not the key of --tls-cert's certificate (the first in the file)")
        } else {
            TlsError::Invalid(why)
        }
    })?;
    Ok(Some(tls))
}

/// How long a connection may take to finish its TLS handshake: one that never does (a
/// client that connects and stays silent) must not hold a task and a socket for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether each certificate of the chain, in order, is a CA's (`None`: it does not parse,
/// which the check that builds the acceptor reports). The first must be the server's own:
/// clients that verify as rustls and webpki refuse a CA's there, in words that do not lead
/// an operator to the file.
fn certificates_are_cas(pem: &[u8]) -> Vec<Option<bool>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .filter(|block| block.label == "CERTIFICATE")
        .map(|block| block.parse_x509().ok().map(|certificate| certificate.is_ca()))
        .collect()
}

fn contains(pem: &[u8], marker: &str) -> bool {
    pem.windows(marker.len()).any(|window| window == marker.as_bytes())
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { flag, path: path.display().to_string(), source })
}
