//! The TLS record layer as the proxy sees it: headers read as the bytes
//! pass, nothing decrypted; and where a direction's TLS faults fall in its
//! stream.
//!
//! A record is a 5-byte header (content type, protocol version, 16-bit
//! length) and that many bytes of body. Content types: 20 change cipher
//! spec, 21 alert, 22 handshake, 23 application data. In TLS 1.3 every
//! record after the hellos has the outer type 23, handshake and alerts
//! included (`close_notify` too), so a type-23 record may carry a
//! `Finished` or a `close_notify`: the proxy cannot tell. In TLS 1.2 only
//! application data has type 23.

use std::collections::VecDeque;
use std::time::Duration;

use super::plan::{FinAt, Replay, TlsPlan};
use crate::rng::Rng;

/// The content type of application data (and, in TLS 1.3, of every
/// encrypted record).
pub const APPLICATION_DATA: u8 = 23;

/// The largest record body a header may announce: 2^14 plus the most
/// expansion TLS 1.2 allows for a ciphertext.
const MAX_BODY: usize = (1 << 14) + 2048;

/// One record, as its header says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Record {
    /// Stream offset of its first header byte.
    pub start: u64,
    /// Its content type.
    pub kind: u8,
    /// The length of its body.
    pub len: usize,
    /// Its number among every record of the stream, from 1.
    pub index: u64,
    /// Its number among the records of type 23, from 1; 0 for another
    /// type.
    pub app_index: u64,
    /// Its header.
    pub header: [u8; 5],
}

impl Record {
    /// Stream offset just past its body.
    pub fn end(&self) -> u64 {
        self.start + 5 + self.len as u64
    }

    /// A stream offset inside the record: the middle of its body (inside
    /// its header when the body is shorter than 2 bytes).
    pub fn middle(&self) -> u64 {
        if self.len >= 2 {
            self.start + 5 + (self.len / 2) as u64
        } else {
            self.start + 2
        }
    }
}

/// Reads the record headers of one direction as its bytes pass.
#[derive(Clone, Debug, Default)]
pub struct RecordReader {
    /// Stream offset of the next byte.
    at: u64,
    head: [u8; 5],
    head_len: usize,
    /// Body bytes still to come of the current record.
    body_left: usize,
    records: u64,
    app_records: u64,
    /// The stream stopped looking like TLS records.
    lost: bool,
}

impl RecordReader {
    /// Stream offset of the next byte to read (bytes read so far).
    pub fn offset(&self) -> u64 {
        self.at
    }

    /// Whether the stream stopped parsing as TLS records: a header with an
    /// unknown content type, a version not 3.x, or a length past the
    /// largest record. Nothing is reported after that.
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Read the next bytes of the stream; `seen` gets every record whose
    /// header completes in them, in order.
    pub fn read(&mut self, mut data: &[u8], mut seen: impl FnMut(Record)) {
        while !data.is_empty() && !self.lost {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                self.at += n as u64;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.head_len).min(data.len());
            self.head[self.head_len..self.head_len + n].copy_from_slice(&data[..n]);
            self.head_len += n;
            self.at += n as u64;
            data = &data[n..];
            if self.head_len < 5 {
                break;
            }
            self.head_len = 0;
            let [kind, major, _minor, hi, lo] = self.head;
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if !(20..=24).contains(&kind) || major != 3 || len > MAX_BODY {
                log::info!(
                    "not a TLS record header at byte {}: {:02x?}; no TLS fault from here",
                    self.at - 5,
                    self.head
                );
                self.lost = true;
                break;
            }
            self.records += 1;
            if kind == APPLICATION_DATA {
                self.app_records += 1;
            }
            self.body_left = len;
            seen(Record {
                start: self.at - 5,
                kind,
                len,
                index: self.records,
                app_index: if kind == APPLICATION_DATA {
                    self.app_records
                } else {
                    0
                },
                header: self.head,
            });
        }
    }
}

/// The bytes of one record, collected as they pass.
#[derive(Clone, Debug)]
struct Capture {
    start: u64,
    bytes: Vec<u8>,
    want: usize,
}

impl Capture {
    /// A record whose header was just read: its header (which may have
    /// come in an earlier read), its body to come.
    fn of(r: &Record) -> Capture {
        let mut bytes = Vec::with_capacity(5 + r.len);
        bytes.extend_from_slice(&r.header);
        Capture {
            start: r.start,
            bytes,
            want: 5 + r.len,
        }
    }

    fn complete(&self) -> bool {
        self.bytes.len() == self.want
    }

    /// Take what `data`, read at stream offset `from`, holds of the record.
    fn take(&mut self, from: u64, data: &[u8]) {
        let next = self.start + self.bytes.len() as u64;
        let end = self.start + self.want as u64;
        let to = from + data.len() as u64;
        if next >= to || next < from || next >= end {
            return;
        }
        let lo = (next - from) as usize;
        let hi = (end.min(to) - from) as usize;
        self.bytes.extend_from_slice(&data[lo..hi]);
    }
}

/// Bytes to write to the receiver when the flow reaches stream offset `at`
/// (before the sender's byte `at`, or before its FIN at the end).
#[derive(Clone, Debug)]
struct Inject {
    at: u64,
    what: Capture,
    /// A copy of a record (else junk).
    replay: bool,
}

/// What one injection was, for the log and the counts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Injected {
    /// A copy of an earlier record, of this many bytes.
    Replay(usize),
    /// This many bytes of junk.
    Junk(usize),
}

/// The TLS faults of one direction while it runs: its records, and the
/// stream offsets where its faults fall once their records are seen.
#[derive(Clone, Debug)]
pub struct TlsFlow {
    plan: TlsPlan,
    reader: RecordReader,
    rng: Rng,
    /// Where `tls-fin` sends its FIN, once its record is seen.
    fin_at: Option<u64>,
    /// Where `tls-stall` stalls, once its record is seen.
    stall_at: Option<u64>,
    /// The TLS stall fired.
    pub stall_done: bool,
    injects: VecDeque<Inject>,
    /// For `tls-replay` at the end: the last two records of type 23.
    recent: [Option<Capture>; 2],
    /// The sender's end was handled.
    ended: bool,
}

impl TlsFlow {
    /// The TLS faults `plan` of a direction, its junk drawn from `rng`.
    pub fn new(plan: TlsPlan, rng: Rng) -> TlsFlow {
        TlsFlow {
            plan,
            reader: RecordReader::default(),
            rng,
            fin_at: None,
            // After 0 records: before the first byte.
            stall_at: plan.stall.filter(|&(n, _)| n == 0).map(|_| 0),
            stall_done: false,
            injects: VecDeque::new(),
            recent: [None, None],
            ended: false,
        }
    }

    /// The sender's next bytes.
    pub fn read(&mut self, data: &[u8]) {
        if !self.plan.reads_records() {
            return;
        }
        let from = self.reader.offset();
        let plan = self.plan;
        let (fin_at, stall_at) = (&mut self.fin_at, &mut self.stall_at);
        let (injects, recent) = (&mut self.injects, &mut self.recent);
        self.reader.read(data, |r| {
            log::trace!("record {r:?}");
            let app = r.kind == APPLICATION_DATA;
            match plan.fin {
                Some((n, at)) if app && r.app_index == n => {
                    *fin_at = Some(match at {
                        FinAt::Middle => r.middle(),
                        FinAt::After => r.end(),
                    });
                }
                _ => {}
            }
            match plan.stall {
                Some((n, _)) if r.index == n => *stall_at = Some(r.end()),
                _ => {}
            }
            match plan.replay {
                Some(Replay::After(n)) if app && r.app_index == n => injects.push_back(Inject {
                    at: r.end(),
                    what: Capture::of(&r),
                    replay: true,
                }),
                Some(Replay::AtEnd) if app => {
                    recent.rotate_left(1);
                    recent[1] = Some(Capture::of(&r));
                }
                _ => {}
            }
        });
        for i in self.injects.iter_mut().filter(|i| i.replay) {
            i.what.take(from, data);
        }
        for c in self.recent.iter_mut().flatten() {
            c.take(from, data);
        }
    }

    /// The sender's end (its FIN, or its side closed) after `total` bytes:
    /// queue what goes after its last record. Once only.
    pub fn end(&mut self, total: u64) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if self.plan.replay == Some(Replay::AtEnd) {
            // The record before the last one; the last if it is alone.
            let [before, last] = &self.recent;
            let copy = [before, last]
                .into_iter()
                .flatten()
                .find(|c| c.complete())
                .cloned();
            match copy {
                Some(what) => self.injects.push_back(Inject {
                    at: total,
                    what,
                    replay: true,
                }),
                None => log::info!("tls-replay: no whole record of type 23 to replay"),
            }
        }
        if let Some(n) = self.plan.junk {
            let mut bytes = vec![0u8; n as usize];
            bytes
                .iter_mut()
                .for_each(|b| *b = self.rng.next_u64() as u8);
            self.injects.push_back(Inject {
                at: total,
                what: Capture {
                    start: 0,
                    want: bytes.len(),
                    bytes,
                },
                replay: false,
            });
        }
    }

    /// Where the `tls-fin` FIN goes, once known.
    pub fn fin_at(&self) -> Option<u64> {
        self.fin_at
    }

    /// Where and for how long the TLS stall holds the flow, until it fired.
    pub fn stall(&self) -> Option<(u64, Duration)> {
        match (self.stall_at, self.plan.stall, self.stall_done) {
            (Some(at), Some((_, dur)), false) => Some((at, dur)),
            _ => None,
        }
    }

    /// The stream offset of the next injection.
    pub fn inject_at(&self) -> Option<u64> {
        self.injects.front().map(|i| i.at)
    }

    /// The next injection, due at the offset [`inject_at`](Self::inject_at)
    /// gave: its bytes, and what it is.
    pub fn take_inject(&mut self) -> Option<(Vec<u8>, Injected)> {
        let i = self.injects.pop_front()?;
        let n = i.what.bytes.len();
        let kind = if i.replay {
            Injected::Replay(n)
        } else {
            Injected::Junk(n)
        };
        Some((i.what.bytes, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    /// A hello, a change cipher spec, then three type-23 records.
    fn stream() -> Vec<u8> {
        let mut s = record(22, &[1; 40]);
        s.extend(record(20, &[1]));
        s.extend(record(23, &[2; 30]));
        s.extend(record(23, &[3; 100]));
        s.extend(record(23, &[4; 19]));
        s
    }

    fn records_in_pieces(s: &[u8], piece: usize) -> Vec<Record> {
        let mut r = RecordReader::default();
        let mut seen = Vec::new();
        for chunk in s.chunks(piece) {
            r.read(chunk, |rec| seen.push(rec));
        }
        assert_eq!(r.offset(), s.len() as u64);
        seen
    }

    #[test]
    fn headers_are_read_whatever_the_pieces() {
        let s = stream();
        let whole = records_in_pieces(&s, s.len());
        assert_eq!(
            whole.iter().map(|r| (r.kind, r.len)).collect::<Vec<_>>(),
            [(22, 40), (20, 1), (23, 30), (23, 100), (23, 19)]
        );
        assert_eq!(
            whole.iter().map(|r| r.app_index).collect::<Vec<_>>(),
            [0, 0, 1, 2, 3]
        );
        assert_eq!(whole[1].start, 45);
        assert_eq!(whole[2].start, 51);
        assert_eq!(whole[2].end(), 86);
        assert_eq!(whole[3].middle(), 86 + 5 + 50);
        for piece in [1, 2, 3, 4, 5, 7, 64] {
            assert_eq!(records_in_pieces(&s, piece), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn a_stream_that_is_not_tls_is_lost_at_once() {
        let mut r = RecordReader::default();
        let mut seen = 0;
        r.read(b"GET / HTTP/1.1\r\n\r\n", |_| seen += 1);
        assert!(r.is_lost());
        assert_eq!(seen, 0);
    }

    #[test]
    fn fault_offsets_fall_where_the_plan_says() {
        let s = stream();
        let plan = TlsPlan {
            fin: Some((2, FinAt::Middle)),
            stall: Some((2, Duration::from_millis(5))),
            replay: Some(Replay::After(1)),
            ..TlsPlan::default()
        };
        let mut f = TlsFlow::new(plan, Rng::new(1));
        for chunk in s.chunks(3) {
            f.read(chunk);
        }
        assert_eq!(f.fin_at(), Some(86 + 5 + 50));
        assert_eq!(f.stall(), Some((51, Duration::from_millis(5))));
        assert_eq!(f.inject_at(), Some(86));
        let (copy, kind) = f.take_inject().unwrap();
        assert_eq!(kind, Injected::Replay(35));
        assert_eq!(copy, s[51..86]);
        assert_eq!(f.inject_at(), None);
    }

    #[test]
    fn at_the_end_the_record_before_the_last_is_replayed_then_junk() {
        let s = stream();
        let plan = TlsPlan {
            replay: Some(Replay::AtEnd),
            junk: Some(8),
            ..TlsPlan::default()
        };
        let mut f = TlsFlow::new(plan, Rng::new(1));
        f.read(&s);
        assert_eq!(f.inject_at(), None, "nothing before the end");
        f.end(s.len() as u64);
        f.end(s.len() as u64);
        assert_eq!(f.inject_at(), Some(s.len() as u64));
        let (copy, kind) = f.take_inject().unwrap();
        assert_eq!(kind, Injected::Replay(105));
        assert_eq!(copy, s[86..191]);
        let (junk, kind) = f.take_inject().unwrap();
        assert_eq!(kind, Injected::Junk(8));
        let mut again = TlsFlow::new(plan, Rng::new(1));
        again.read(&s);
        again.end(s.len() as u64);
        again.take_inject();
        assert_eq!(again.take_inject().unwrap().0, junk, "junk from the seed");
        assert!(f.take_inject().is_none(), "once only");
    }

    #[test]
    fn stall_after_zero_records_is_before_the_first_byte() {
        let plan = TlsPlan {
            stall: Some((0, Duration::from_millis(5))),
            ..TlsPlan::default()
        };
        let f = TlsFlow::new(plan, Rng::new(1));
        assert_eq!(f.stall(), Some((0, Duration::from_millis(5))));
    }
}
