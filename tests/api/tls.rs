//! TLS by flag: `missive serve --tls-cert --tls-key` speaks only TLS, to a client that
//! verifies the server against a test CA; plaintext clients and clients that do not trust
//! the CA get nowhere, and unusable files (a CA's certificate as the server's among them)
//! stop the server at start, naming the flag.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::helpers::{Session, connected, free_port, missive_process, spawn_app};

/// A test CA and a server certificate it signed for `localhost`, as PEM.
struct TestPki {
    ca: String,
    server_cert: String,
    server_key: String,
}

fn test_pki() -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert =
        CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&server_key, &issuer).unwrap();
    TestPki { ca: ca.pem(), server_cert: server_cert.pem(), server_key: server_key.serialize_pem() }
}

/// A CA's self-signed certificate for `localhost` and its key, as PEM: what an operator might
/// give the server by mistake.
fn self_signed_ca() -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

/// A client of `port` that trusts `ca` and expects the name `localhost`.
fn tls_client(port: u16, ca: &str) -> tonic::transport::Endpoint {
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).domain_name("localhost");
    Channel::from_shared(format!("https://localhost:{port}")).unwrap().tls_config(tls).unwrap()
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn a_client_verifying_the_test_ca_is_served_and_others_are_not() {
    let app = spawn_app().await;
    let pki = test_pki();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (write(dir.path(), "cert.pem", &pki.server_cert), write(dir.path(), "key.pem", &pki.server_key));
    let port = free_port();
    let _server = missive_process(&app.database_url, port, &["--tls-cert", &cert, "--tls-key", &key]);

    let channel = connected(tls_client(port, &pki.ca)).await;
    let caller = Session::over(channel, &app.admin.key).get_caller().await.expect("a call over TLS");
    assert_eq!(caller.id, app.admin.id);

    let plaintext = Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect_lazy();
    assert!(Session::over(plaintext, &app.admin.key).get_caller().await.is_err(), "plaintext must be refused");
    // The command line, pointed at the TLS port over http://, says what to change.
    let cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["conversations", "list", "--server", &format!("http://127.0.0.1:{port}"), "--key", &app.admin.key])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(!cli.status.success() && stderr.contains("a TLS server takes https://"), "{stderr}");
    let untrusting = tls_client(port, &test_pki().ca).connect().await;
    assert!(untrusting.is_err(), "a client that does not trust the CA must not connect");
}

#[tokio::test]
async fn unusable_tls_files_stop_the_server_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite:{}", dir.path().join("tls.db").display());
    let garbage = write(dir.path(), "garbage.pem", "not a certificate");
    let missing = dir.path().join("missing.pem").display().to_string();
    let (pki, other) = (test_pki(), test_pki());
    let cert = write(dir.path(), "cert.pem", &pki.server_cert);
    let other_key = write(dir.path(), "other.pem", &other.server_key);
    let (ca_cert, ca_key) = self_signed_ca();
    let (ca_cert, ca_key) = (write(dir.path(), "ca.pem", &ca_cert), write(dir.path(), "ca-key.pem", &ca_key));
    let server_key = write(dir.path(), "key.pem", &pki.server_key);
    let ca_first = write(dir.path(), "ca-first.pem", &format!("{}{}", pki.ca, pki.server_cert));
    let cases: [(&[&str], &str); 7] = [
        (&["--tls-cert", &missing, "--tls-key", &garbage], "could not read --tls-cert"),
        (&["--tls-cert", &garbage, "--tls-key", &garbage], "holds no PEM certificate"),
        (&["--tls-cert", &cert, "--tls-key", &garbage], "holds no PEM private key"),
        (&["--tls-cert", &cert, "--tls-key", &other_key], "is not the key of --tls-cert's certificate"),
        (&["--tls-cert", &ca_first, "--tls-key", &server_key], "lists a CA certificate first"),
        (&["--tls-cert", &garbage], "--tls-key"),
        (&["--tls-cert", &ca_cert, "--tls-key", &ca_key], "is a CA certificate (basicConstraints CA:TRUE)"),
    ];
    for (flags, named) in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_missive"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &database_url])
            .args(flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flags:?} must not start");
        assert!(stderr.contains(named), "{flags:?}: {stderr}");
    }
}
