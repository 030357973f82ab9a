//! TLS for the examples and tests (feature `tls`): a self-signed
//! certificate made on the spot, or one read from PEM files, turned into
//! the rustls configurations `halfclose` takes.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A certificate and its private key.
#[derive(Debug)]
pub struct Identity {
    /// The certificate chain, end entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
    /// The certificate chain in PEM form, for a client to trust (`curl
    /// --cacert`, Python's `ssl`, `openssl s_client -CAfile`).
    pub cert_pem: String,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The crypto provider every configuration here uses: ring.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Identity {
    /// A self-signed certificate for `names` (e.g. `localhost`,
    /// `127.0.0.1`).
    pub fn self_signed(names: &[&str]) -> io::Result<Identity> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::generate_simple_self_signed(names).map_err(other)?;
        Ok(Identity {
            chain: vec![cert.cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
            cert_pem: cert.cert.pem(),
        })
    }

    /// Read a certificate chain and a private key from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> io::Result<Identity> {
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(other)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(other)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(other)?;
        let cert_pem = std::fs::read_to_string(cert)?;
        Ok(Identity {
            chain,
            key,
            cert_pem,
        })
    }

    /// A server configuration presenting this identity, offering `alpn`.
    pub fn server_config(&self, alpn: &[&[u8]]) -> io::Result<Arc<ServerConfig>> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(other)?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(other)?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// A client configuration that trusts this identity's certificate only.
    pub fn client_config(&self, alpn: &[&[u8]]) -> io::Result<Arc<ClientConfig>> {
        let mut roots = RootCertStore::empty();
        for der in &self.chain {
            roots.add(der.clone()).map_err(other)?;
        }
        let mut config = client_config(roots)?;
        Arc::get_mut(&mut config)
            .expect("not shared yet")
            .alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

/// A client configuration trusting `roots`.
pub fn client_config(roots: RootCertStore) -> io::Result<Arc<ClientConfig>> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A server name for a client configuration.
pub fn server_name(name: &str) -> io::Result<ServerName<'static>> {
    ServerName::try_from(name.to_string()).map_err(other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_identity_makes_both_configurations() {
        let id = Identity::self_signed(&["localhost"]).unwrap();
        id.server_config(&[b"http/1.1"]).unwrap();
        id.client_config(&[]).unwrap();
        let pem = &id.cert_pem;
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        let back: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, id.chain);
    }
}
