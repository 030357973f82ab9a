//! The half-close echo server as tokio users write it: a `current_thread`
//! runtime and a task per connection.
//!
//! cargo run --release --manifest-path benches/peers/rust/Cargo.toml --bin peer_tokio -- --listen 127.0.0.1:0
//!
//! Each task reads the request with `read_to_end`, sleeps for the hold,
//! answers with `write_all` and drops the stream (close: every request byte
//! was read, so the reply is followed by a FIN, not a reset). In echo mode
//! the task is `tokio::io::copy` from the read half to the write half.
//! SIGTERM stops the accept loop and the runtime.
//!
//! With `--tls-cert PEM --tls-key PEM` the half-close echo runs over TLS,
//! as tokio-rustls users write it: `TlsAcceptor::accept`, then
//! `read_to_end` (which ends at the client's `close_notify`; a FIN without
//! one is an `UnexpectedEof` error and the task ends without replying),
//! `write_all`, and `shutdown`, which sends our `close_notify` and shuts
//! the TCP write half; dropping the stream closes it. The rustls server
//! configuration is the one `halfclosed` makes from the same files
//! (`halfclose_tools::tls`: rustls on ring, its defaults otherwise).

use std::io;

use halfclose_peers::{Args, BACKLOG};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio_rustls::TlsAcceptor;

async fn half_close_echo(mut stream: TcpStream, hold: std::time::Duration) -> io::Result<()> {
    let mut request = Vec::new();
    stream.read_to_end(&mut request).await?;
    if !hold.is_zero() {
        tokio::time::sleep(hold).await;
    }
    stream.write_all(&request).await
}

async fn half_close_echo_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    hold: std::time::Duration,
) -> io::Result<()> {
    let mut stream = acceptor.accept(stream).await?;
    let mut request = Vec::new();
    stream.read_to_end(&mut request).await?;
    if !hold.is_zero() {
        tokio::time::sleep(hold).await;
    }
    stream.write_all(&request).await?;
    stream.shutdown().await
}

async fn echo(mut stream: TcpStream) -> io::Result<()> {
    let (mut rd, mut wr) = stream.split();
    tokio::io::copy(&mut rd, &mut wr).await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let args = Args::from_env("peer_tokio");
    let listen = args.tcp("peer_tokio");
    let acceptor = match args.tls() {
        Some((cert, key)) => {
            let id = halfclose_tools::tls::Identity::from_pem_files(cert, key)
                .map_err(|e| io::Error::new(e.kind(), format!("--tls-cert/--tls-key: {e}")))?;
            Some(TlsAcceptor::from(id.server_config(&[])?))
        }
        None => None,
    };
    let socket = if listen.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if args.reuseport {
        socket.set_reuseport(true)?;
    }
    socket.bind(listen)?;
    let listener = socket.listen(BACKLOG as u32)?;
    println!("listening on {}", listener.local_addr()?);

    let mut term = signal(SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let hold = args.hold;
                    let echo_mode = args.echo;
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let _ = match acceptor {
                            Some(acceptor) => half_close_echo_tls(acceptor, stream, hold).await,
                            None if echo_mode => echo(stream).await,
                            None => half_close_echo(stream, hold).await,
                        };
                    });
                }
                // EMFILE and the like: log, back off a little, go on (as hyper does).
                Err(e) => {
                    eprintln!("peer_tokio: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = term.recv() => return Ok(()),
        }
    }
}
