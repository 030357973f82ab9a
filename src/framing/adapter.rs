//! [`FrameHandler`] and [`Framed`]: whole frames in, replies out, on a
//! connection of the reactor.

use std::io;

use super::{Error, Framer, Terminator};
use crate::conn::{Conn, Ctx};
use crate::{Closed, Eof, Handler, ProtocolError, TimerId, Truncated};

/// The callbacks of a framed protocol, turned into a [`Handler`] by
/// [`Framed`].
///
/// Only [`found_frame`](FrameHandler::found_frame) is required. The others
/// mirror [`Handler`]'s and default to doing nothing, except
/// [`handle_eof`](FrameHandler::handle_eof), which returns [`Eof::Close`].
pub trait FrameHandler {
    /// The connection is established; see [`Handler::handle_connect`].
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// A whole frame arrived, without its terminator or length prefix.
    /// `terminator` holds the terminator that ended it; assign to it to
    /// change the one for the next frame (asynchat's `set_terminator`).
    ///
    /// After the handler closes the connection here
    /// ([`Conn::close`], [`Conn::close_with`]), the frames left in the same
    /// read are discarded with the rest of the input. Frames already read
    /// are delivered even if it paused reading: the pause applies to the
    /// next read (at most one read buffer's worth of frames).
    #[doc(alias = "found_terminator")]
    #[doc(alias = "collect_incoming_data")]
    fn found_frame(&mut self, conn: &mut Conn<'_>, frame: &[u8], terminator: &mut Terminator);

    /// A frame grew past `max_frame` (`limit`). Queue an error reply here if
    /// the protocol has one: right after this the connection is closed with
    /// [`ProtocolError::FrameTooLarge`], lossless, so the reply is delivered
    /// before the FIN. The rest of the input is discarded.
    fn frame_too_large(&mut self, conn: &mut Conn<'_>, limit: usize) {
        let _ = (conn, limit);
    }

    /// The peer's FIN arrived inside a frame; `partial` holds its bytes.
    /// Queue an error reply here, or treat `partial` as a last frame if the
    /// protocol allows it: right after this the connection is closed with
    /// [`ProtocolError::IncompleteFrame`], lossless.
    /// [`handle_eof`](FrameHandler::handle_eof) is not called.
    fn incomplete_frame(&mut self, conn: &mut Conn<'_>, partial: &[u8]) {
        let _ = (conn, partial);
    }

    /// The peer's FIN arrived between frames (with [`Terminator::Eof`],
    /// after its frame was delivered). Returns what the FIN means, as
    /// [`Handler::handle_readable_eof`] does; the default is
    /// [`Eof::Close`].
    fn handle_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        let _ = conn;
        Eof::Close
    }

    /// TLS only: the stream ended between frames with a TCP FIN but no
    /// `close_notify` (a frame in progress, or one that runs to the end of
    /// the stream, is reported through
    /// [`incomplete_frame`](FrameHandler::incomplete_frame) instead). As
    /// [`Handler::handle_truncated_eof`]; the default fails the connection.
    fn handle_truncated_eof(&mut self, conn: &mut Conn<'_>) -> Truncated {
        let _ = conn;
        Truncated::Fail
    }

    /// See [`Handler::handle_write`].
    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// See [`Handler::handle_error`].
    fn handle_error(&mut self, conn: &mut Conn<'_>, err: &io::Error) {
        let _ = (conn, err);
    }

    /// See [`Handler::handle_timer`].
    fn handle_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        let _ = (conn, timer);
    }

    /// See [`Handler::handle_drain`].
    fn handle_drain(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// See [`Handler::handle_close`].
    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        let _ = (ctx, closed);
    }
}

/// A [`Handler`] that frames its input with a [`Framer`] and passes whole
/// frames to a [`FrameHandler`].
///
/// A frame longer than `max_frame` calls
/// [`FrameHandler::frame_too_large`], then closes the connection with
/// [`Conn::close_with`]`(`[`ProtocolError::FrameTooLarge`]`)`; a FIN inside
/// a frame calls [`FrameHandler::incomplete_frame`], then closes with
/// [`ProtocolError::IncompleteFrame`]. Both closes are lossless: an error
/// reply queued by the hook reaches the peer before our FIN, and
/// [`Closed::reason`] is [`Reason::Protocol`](crate::Reason::Protocol) with
/// that error.
///
/// To close "when done" (asynchat's `close_when_done`), write the last
/// reply and call [`Conn::close`]: everything queued is flushed before the
/// FIN.
///
/// # Examples
///
/// ```no_run
/// use halfclose::framing::{FrameHandler, Framed, Terminator};
/// use halfclose::{Conn, Reactor};
///
/// /// Answers each line with its length; `quit` ends the session.
/// struct Count;
///
/// impl FrameHandler for Count {
///     fn found_frame(&mut self, conn: &mut Conn<'_>, line: &[u8], _: &mut Terminator) {
///         if line == b"quit" {
///             conn.write(b"bye\r\n");
///             conn.close();
///         } else {
///             conn.write(format!("{}\r\n", line.len()).as_bytes());
///         }
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// reactor.listen("127.0.0.1:0", || Framed::new(Count, Terminator::CRLF, 4096))?;
/// reactor.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "async_chat")]
#[derive(Debug)]
pub struct Framed<H> {
    handler: H,
    framer: Framer,
}

impl<H: FrameHandler> Framed<H> {
    /// Frame input with `terminator`, refusing frames longer than
    /// `max_frame` bytes, and pass the frames to `handler`.
    pub fn new(handler: H, terminator: Terminator, max_frame: usize) -> Self {
        Framed {
            handler,
            framer: Framer::new(terminator, max_frame),
        }
    }

    /// The frame handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The frame handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The framer: current terminator, bytes buffered.
    pub fn framer(&self) -> &Framer {
        &self.framer
    }

    /// The frame handler, by value.
    pub fn into_inner(self) -> H {
        self.handler
    }
}

impl<H: FrameHandler> Handler for Framed<H> {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        self.handler.handle_connect(conn);
    }

    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        let handler = &mut self.handler;
        let fed = self.framer.feed(data, |frame, terminator| {
            // Once the handler closed, the rest is input to discard.
            if conn.may_recv() {
                handler.found_frame(conn, frame, terminator);
            }
        });
        if let Err(e) = fed {
            if conn.may_recv() {
                fail(handler, conn, e);
            }
        }
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        let handler = &mut self.handler;
        match self
            .framer
            .finish(|frame, terminator| handler.found_frame(conn, frame, terminator))
        {
            Ok(()) => handler.handle_eof(conn),
            Err(e) => {
                fail(handler, conn, e);
                Eof::Close
            }
        }
    }

    fn handle_truncated_eof(&mut self, conn: &mut Conn<'_>) -> Truncated {
        let handler = &mut self.handler;
        match self
            .framer
            .finish_truncated(|frame, terminator| handler.found_frame(conn, frame, terminator))
        {
            // Between two frames: whether that ends the protocol cleanly is
            // the frame handler's call.
            Ok(()) => handler.handle_truncated_eof(conn),
            Err(e) => {
                fail(handler, conn, e);
                Truncated::Accept(Eof::Close)
            }
        }
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        self.handler.handle_write(conn);
    }

    fn handle_error(&mut self, conn: &mut Conn<'_>, err: &io::Error) {
        self.handler.handle_error(conn, err);
    }

    fn handle_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        self.handler.handle_timer(conn, timer);
    }

    fn handle_drain(&mut self, conn: &mut Conn<'_>) {
        self.handler.handle_drain(conn);
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        self.handler.handle_close(ctx, closed);
    }
}

/// The framer failed: the handler's hook for that error (its chance to
/// queue an error reply), then a lossless close with the matching
/// [`ProtocolError`].
fn fail<H: FrameHandler>(handler: &mut H, conn: &mut Conn<'_>, e: Error) {
    match e {
        Error::FrameTooLarge { limit } => {
            handler.frame_too_large(conn, limit);
            conn.close_with(ProtocolError::FrameTooLarge);
        }
        Error::Incomplete { partial } => {
            handler.incomplete_frame(conn, &partial);
            conn.close_with(ProtocolError::IncompleteFrame);
        }
    }
}
