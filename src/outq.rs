//! The output queue of one connection: the bytes the kernel did not take.
//!
//! A connection owns no queue until a write could not complete; the queue
//! is freed again once it drains. Small writes are coalesced into the last
//! chunk so that many tiny writes do not become many tiny allocations, and
//! a flush hands up to [`MAX_IOVECS`] chunks to one `writev`.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// Chunks smaller than this take further writes appended to them.
const COALESCE: usize = 16 * 1024;
/// Chunks handed to one `writev`.
const MAX_IOVECS: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    head: usize,
    len: usize,
}

/// What a flush achieved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Everything was written.
    Drained,
    /// The kernel's send buffer is full; wait for writability.
    Blocked,
}

impl OutQueue {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        if let Some(back) = self.chunks.back_mut() {
            if back.len() < COALESCE {
                back.extend_from_slice(data);
                return;
            }
        }
        self.chunks.push_back(data.to_vec());
    }

    /// Write queued bytes until the queue drains or the writer would block.
    /// Returns the bytes written with the outcome, or the error with the
    /// bytes written before it.
    pub(crate) fn flush_to<W: Write>(&mut self, mut w: W) -> (usize, io::Result<Flush>) {
        let mut written = 0;
        while self.len > 0 {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut n_slices = 0;
            let mut offered = 0;
            for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
                let part = if i == 0 {
                    &chunk[self.head..]
                } else {
                    &chunk[..]
                };
                slices[i] = IoSlice::new(part);
                offered += part.len();
                n_slices = i + 1;
            }
            match w.write_vectored(&slices[..n_slices]) {
                Ok(0) => return (written, Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    written += n;
                    self.consume(n);
                    if n < offered {
                        // A short write means the send buffer is full: the
                        // next call would only return EAGAIN.
                        return (written, Ok(Flush::Blocked));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return (written, Ok(Flush::Blocked))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (written, Err(e)),
            }
        }
        (written, Ok(Flush::Drained))
    }

    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let front = self.chunks.front().expect("consumed more than queued");
            let left = front.len() - self.head;
            if n >= left {
                n -= left;
                self.head = 0;
                self.chunks.pop_front();
            } else {
                self.head += n;
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `cap` bytes per call, then blocks after
    /// `calls` calls.
    struct Trickle {
        out: Vec<u8>,
        cap: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.calls == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls -= 1;
            let n = buf.len().min(self.cap);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_order_byte_for_byte() {
        let mut q = OutQueue::default();
        let mut expect = Vec::new();
        for i in 0..200u32 {
            let chunk: Vec<u8> = (0..(i * 37 % 5000)).map(|b| (b ^ i) as u8).collect();
            q.push(&chunk);
            expect.extend_from_slice(&chunk);
        }
        assert_eq!(q.len(), expect.len());
        let mut w = Trickle {
            out: Vec::new(),
            cap: 777,
            calls: 0,
        };
        loop {
            w.calls = 3;
            let (_, r) = q.flush_to(&mut w);
            if r.unwrap() == Flush::Drained {
                break;
            }
        }
        assert_eq!(q.len(), 0);
        assert_eq!(w.out, expect);
    }

    #[test]
    fn small_writes_coalesce() {
        let mut q = OutQueue::default();
        for _ in 0..1000 {
            q.push(b"abc");
        }
        assert_eq!(q.chunks.len(), 1);
        assert_eq!(q.len(), 3000);
    }

    #[test]
    fn error_reports_bytes_written_before_it() {
        struct Fail(usize);
        impl Write for Fail {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                let n = buf.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut q = OutQueue::default();
        q.push(&[1; 100]);
        let (n, r) = q.flush_to(Fail(100));
        assert_eq!((n, r.unwrap()), (100, Flush::Drained));
        q.push(&[2; 100]);
        let (n, r) = q.flush_to(Fail(40));
        assert_eq!(n, 40);
        assert_eq!(r.unwrap(), Flush::Blocked);
        let (n, r) = q.flush_to(Fail(0));
        assert_eq!(n, 0);
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(q.len(), 60);
    }
}
