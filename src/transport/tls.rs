//! TLS over TCP, on rustls (feature `tls`): `close_notify` is TLS's FIN.
//!
//! The socket carries ciphertext; rustls holds what it decrypted and not
//! yet handed over, and what it encrypted and not yet sent. The core sees
//! the same operations as for a plain socket, with three differences it is
//! told about:
//!
//! - the stream may hold output of its own (handshake messages, alerts,
//!   ciphertext the kernel did not take): [`TlsStream::holds_output`];
//! - the end of the peer's stream is either authenticated (`close_notify`)
//!   or not (a TCP FIN without it: a possible truncation), reported as
//!   [`Input::Fin`] or [`Input::Truncated`];
//! - our FIN is `close_notify`, flushed, then `shutdown(SHUT_WR)`, and
//!   `close(2)` alone never sends it.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::{Handshake, Input};
use crate::outq::{Flush, OutQueue};

/// One TLS connection: its socket and its rustls session.
pub(crate) struct TlsStream {
    pub(super) tcp: TcpStream,
    session: Connection,
    /// Our `close_notify` is queued (it may not be out yet).
    notified: bool,
    /// Our lingering close met the peer's `close_notify`, or a session
    /// error: the rest, to the TCP FIN, is dropped as ciphertext.
    raw: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("handshaking", &self.session.is_handshaking())
            .field("notified", &self.notified)
            .finish()
    }
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsStream {
    pub(crate) fn server(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let session = ServerConnection::new(config).map_err(tls_error)?;
        Ok(TlsStream {
            tcp,
            session: session.into(),
            notified: false,
            raw: false,
        })
    }

    pub(crate) fn client(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<TlsStream> {
        let session = ClientConnection::new(config, name).map_err(tls_error)?;
        Ok(TlsStream {
            tcp,
            session: session.into(),
            notified: false,
            raw: false,
        })
    }

    /// Send ciphertext until rustls has none left or the socket blocks;
    /// whether it is all out.
    fn send(&mut self) -> io::Result<bool> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut &self.tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Receive ciphertext once and decrypt it: `Ok(Some(true))` something
    /// came, `Ok(Some(false))` TCP end of file, `Ok(None)` nothing to read.
    fn receive(&mut self) -> io::Result<Option<bool>> {
        loop {
            match self.session.read_tls(&mut &self.tcp) {
                Ok(0) => return Ok(Some(false)),
                Ok(_) => {
                    if let Err(e) = self.session.process_new_packets() {
                        // The alert rustls queued tells the peer why.
                        let _ = self.send();
                        return Err(tls_error(e));
                    }
                    return Ok(Some(true));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Drive the handshake as far as the socket allows.
    pub(crate) fn handshake(&mut self) -> io::Result<Handshake> {
        loop {
            let all_out = self.send()?;
            if !self.session.is_handshaking() {
                return Ok(Handshake::Done);
            }
            match self.receive()? {
                Some(true) => {}
                Some(false) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed during the TLS handshake",
                    ))
                }
                None => {
                    return Ok(Handshake::Pending {
                        write_blocked: !all_out,
                    })
                }
            }
        }
    }

    /// Plaintext, or the end of the peer's stream.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<Input> {
        loop {
            match self.session.reader().read(buf) {
                Ok(0) => return Ok(Input::Fin),
                // A short plaintext read says nothing about the socket.
                Ok(n) => return Ok(Input::Data(n, false)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Input::Truncated),
                Err(e) => return Err(e),
            }
            match self.receive()? {
                // Acknowledgements, key updates, tickets go out at once.
                Some(_) => {
                    self.send()?;
                }
                None => return Ok(Input::WouldBlock),
            }
        }
    }

    /// Input during our lingering close, dropped: decrypted and counted as
    /// plaintext (`Data`), as a plain socket counts what it discards. The
    /// close waits for the peer's TCP FIN, as over TCP: after the peer's
    /// `close_notify`, or once the session cannot go on (a record it
    /// cannot authenticate), whatever still comes is read as ciphertext
    /// and dropped uncounted (`Data(0, ..)`) until that FIN (`Fin`). A FIN
    /// without `close_notify` before it is `Truncated`.
    pub(crate) fn discard(&mut self, buf: &mut [u8]) -> io::Result<Input> {
        if !self.raw {
            match self.read(buf) {
                Ok(Input::Fin) => self.raw = true,
                // A record rustls refused (its alert is sent); a socket
                // error is the socket's, and is reported.
                Err(e) if e.kind() == io::ErrorKind::InvalidData => self.raw = true,
                other => return other,
            }
        }
        match (&self.tcp).read(buf) {
            Ok(0) => Ok(Input::Fin),
            Ok(n) => Ok(Input::Data(0, n < buf.len())),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Input::WouldBlock),
            Err(e) => Err(e),
        }
    }

    /// Plaintext into rustls and ciphertext out, until all of `data` is
    /// taken or the socket would block: as for a plain socket, a short
    /// write means the kernel's buffer is full (rustls's own buffer limit
    /// is emptied into the socket first, never reported as such).
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut taken = 0;
        loop {
            taken += self.session.writer().write(&data[taken..])?;
            let all_out = self.send()?;
            if taken == data.len() {
                return Ok(taken);
            }
            if !all_out {
                return if taken > 0 {
                    Ok(taken)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
        }
    }

    /// Our queue into rustls, and everything out.
    pub(crate) fn flush(&mut self, q: &mut OutQueue) -> (usize, io::Result<Flush>) {
        let (n, outcome) = q.flush_to(Plaintext(self));
        match outcome {
            Ok(Flush::Drained) => (n, self.send_held()),
            other => (n, other),
        }
    }

    /// Send the ciphertext rustls holds; `Blocked` if the socket would not
    /// take all of it.
    pub(crate) fn send_held(&mut self) -> io::Result<Flush> {
        Ok(if self.send()? {
            Flush::Drained
        } else {
            Flush::Blocked
        })
    }

    /// Ciphertext (handshake, alerts, data) not yet handed to the kernel.
    pub(crate) fn holds_output(&self) -> bool {
        self.session.wants_write()
    }

    /// Our FIN: `close_notify`, then, once it is out, `shutdown(SHUT_WR)`.
    /// `Ok(false)`: the alert waits for the socket to take it.
    pub(crate) fn shutdown_write(&mut self) -> io::Result<bool> {
        if !self.notified {
            self.session.send_close_notify();
            self.notified = true;
        }
        if !self.send()? {
            return Ok(false);
        }
        self.tcp.shutdown(std::net::Shutdown::Write)?;
        Ok(true)
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// The protocol ALPN settled on.
    pub(crate) fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.session.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// The name the client asked for (SNI), on the server side.
    pub(crate) fn server_name(&self) -> Option<String> {
        match &self.session {
            Connection::Server(s) => s.server_name().map(str::to_string),
            Connection::Client(_) => None,
        }
    }

    /// The peer's certificate chain, DER-encoded, end entity first.
    pub(crate) fn peer_certificates(&self) -> Option<Vec<Vec<u8>>> {
        self.session
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.as_ref().to_vec()).collect())
    }

    /// `"TLSv1_3"`, `"TLSv1_2"`, once the handshake settled it.
    pub(crate) fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.session.protocol_version()
    }
}

/// Writes plaintext into the session, sending ciphertext when its buffer
/// is full.
struct Plaintext<'a>(&'a mut TlsStream);

impl Write for Plaintext<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    /// Every slice in turn, stopping at the first the socket did not take
    /// whole: the queue reads a short vectored write as a full send buffer,
    /// so the default (the first slice alone) would leave it waiting for a
    /// writable edge that never comes.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut total = 0;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            match self.0.write(buf) {
                Ok(n) => {
                    total += n;
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && total > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.send().map(drop)
    }
}
