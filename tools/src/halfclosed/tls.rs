//! TLS for the benchmark (feature `tls`): the server's configuration and
//! the client's, made from the options.
//!
//! The client makes a full handshake on every connection: its
//! configuration keeps no sessions (rustls's `Resumption::disabled`), so the
//! load is many clients each meeting the server for the first time, and
//! every server under test does the same work (a server that hands out
//! tickets still sends them; no client presents one). Built without the
//! feature, the types here have no values and the options that ask for
//! TLS are refused by [`super::Opts::new`].
//!
//! [`Resumption::disabled`]: https://docs.rs/rustls/0.23/rustls/client/struct.Resumption.html

use std::io;

use halfclose::{Bind, Connect};

use super::Opts;

/// The server's TLS configuration.
#[derive(Clone, Debug)]
pub(super) struct ServerTls {
    #[cfg(feature = "tls")]
    config: std::sync::Arc<rustls::ServerConfig>,
    #[cfg(not(feature = "tls"))]
    never: Never,
}

/// The client's TLS configuration and the name it asks for.
#[derive(Clone, Debug)]
pub(super) struct ClientTls {
    #[cfg(feature = "tls")]
    config: std::sync::Arc<rustls::ClientConfig>,
    #[cfg(feature = "tls")]
    name: rustls::pki_types::ServerName<'static>,
    #[cfg(not(feature = "tls"))]
    never: Never,
}

/// No value: without the feature nothing makes a [`ServerTls`] or a
/// [`ClientTls`].
#[cfg(not(feature = "tls"))]
#[derive(Clone, Copy, Debug)]
enum Never {}

impl ServerTls {
    /// `bind` serving TLS.
    pub(super) fn bind(&self, bind: Bind) -> Bind {
        #[cfg(feature = "tls")]
        return bind.tls(std::sync::Arc::clone(&self.config));
        #[cfg(not(feature = "tls"))]
        {
            let _ = bind;
            match self.never {}
        }
    }
}

impl ClientTls {
    /// `to` speaking TLS.
    pub(super) fn connect(&self, to: Connect) -> Connect {
        #[cfg(feature = "tls")]
        return to.tls(std::sync::Arc::clone(&self.config), self.name.clone());
        #[cfg(not(feature = "tls"))]
        {
            let _ = to;
            match self.never {}
        }
    }
}

/// What the options ask for: the server's TLS, the client's, and the line
/// a `--server-only` server prints after `listening on` (where its
/// self-signed certificate is).
#[derive(Debug, Default)]
pub(super) struct Setup {
    pub(super) server: Option<ServerTls>,
    pub(super) client: Option<ClientTls>,
    pub(super) note: Option<String>,
}

/// Whether this build speaks TLS.
pub(super) const BUILT_IN: bool = cfg!(feature = "tls");

/// The configurations `o` asks for (none without TLS options).
pub(super) fn setup(o: &Opts) -> io::Result<Setup> {
    if !o.tls() {
        return Ok(Setup::default());
    }
    #[cfg(feature = "tls")]
    {
        with_tls::setup(o)
    }
    #[cfg(not(feature = "tls"))]
    {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "built without TLS: build with --features tls",
        ))
    }
}

#[cfg(feature = "tls")]
mod with_tls {
    use std::io;
    use std::sync::Arc;

    use rustls::client::Resumption;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    use rustls::{ClientConfig, RootCertStore};

    use super::super::{Mode, Opts};
    use super::{ClientTls, ServerTls, Setup};
    use crate::tls::{self, Identity};

    fn other(e: impl std::fmt::Display) -> io::Error {
        io::Error::other(e.to_string())
    }

    /// A client configuration with no session cache: a full handshake
    /// every time.
    fn client(mut config: Arc<ClientConfig>, name: &str) -> io::Result<ClientTls> {
        Arc::get_mut(&mut config)
            .expect("not shared yet")
            .resumption = Resumption::disabled();
        Ok(ClientTls {
            config,
            name: tls::server_name(name)?,
        })
    }

    pub(super) fn setup(o: &Opts) -> io::Result<Setup> {
        match o.mode {
            Mode::Both => {
                let id = Identity::self_signed(&["localhost", "127.0.0.1"])?;
                Ok(Setup {
                    server: Some(ServerTls {
                        config: id.server_config(&[])?,
                    }),
                    client: Some(client(id.client_config(&[])?, "localhost")?),
                    note: None,
                })
            }
            Mode::Server => {
                let s = &o.serve_tls;
                let (id, note) = match (&s.cert, &s.key) {
                    (Some(cert), Some(key)) => (Identity::from_pem_files(cert, key)?, None),
                    _ => {
                        let id = Identity::self_signed(&["localhost", "127.0.0.1"])?;
                        let path = std::env::temp_dir()
                            .join(format!("halfclosed-{}.pem", std::process::id()));
                        std::fs::write(&path, &id.cert_pem)?;
                        (id, Some(format!("certificate {}", path.display())))
                    }
                };
                Ok(Setup {
                    server: Some(ServerTls {
                        config: id.server_config(&[])?,
                    }),
                    client: None,
                    note,
                })
            }
            Mode::Client => {
                let c = &o.connect_tls;
                let ca = c.ca.as_deref().expect("TLS asked for");
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(ca).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("--tls-ca {}: {e}", ca.display()),
                    )
                })? {
                    roots.add(cert.map_err(other)?).map_err(other)?;
                }
                if roots.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("--tls-ca {}: no certificate in it", ca.display()),
                    ));
                }
                Ok(Setup {
                    server: None,
                    client: Some(client(tls::client_config(roots)?, &c.name)?),
                    note: None,
                })
            }
        }
    }
}
