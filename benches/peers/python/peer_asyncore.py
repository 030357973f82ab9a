"""The half-close echo server on Python 3.11's asyncore, the framework of
the seeds (deprecated since 3.6, removed in 3.12).

    python3.11 benches/peers/python/peer_asyncore.py --listen 127.0.0.1:0 [--hold-ms H] [--echo]

Prints `listening on IP:PORT` first. Each connection is a
dispatcher_with_send. asyncore reads a peer's FIN as a disconnect:
dispatcher.recv() calls handle_close() when recv returns b''. A half-close
echo must not, so handle_read reads the socket itself and, on b'', keeps
the connection and replies (after the hold), then closes once the output
buffer is flushed. After the FIN the dispatcher is neither readable nor
writable, so asyncore leaves it out of poll() while it is held (a reset in
that time is seen when the reply is written).

Choices a user of asyncore makes and this peer makes the same way:
- asyncore.loop(use_poll=True): select() stops at FD_SETSIZE (1024 fds).
- asyncore has no timers; the hold queue is a FIFO served between
  asyncore.loop(count=1) rounds, whose timeout is the next deadline.
- handle_accept accepts up to 64 connections per readiness event, as
  asyncio does, instead of one per poll() round.
SIGTERM exits.
"""

import collections
import signal
import socket
import sys
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
import asyncore  # noqa: E402  (after the filter: importing it warns)

from common import BACKLOG, parse_args  # noqa: E402

ACCEPT_BATCH = 64
READ_SIZE = 65536
ECHO_HIGH_WATER = 1 << 20

held = collections.deque()  # (deadline, handler); one hold length, so FIFO order


class HalfCloseEcho(asyncore.dispatcher_with_send):
    def __init__(self, sock, hold):
        super().__init__(sock)
        self.hold = hold
        self.chunks = []
        self.eof = False
        self.replied = False

    def readable(self):
        return not self.eof

    def handle_read(self):
        # Not self.recv(): it would take the FIN for a disconnect.
        try:
            data = self.socket.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            self.close()  # a reset
            return
        if data:
            self.chunks.append(data)
            return
        self.eof = True  # the client half-closed: the reply is still to come
        if self.hold > 0:
            held.append((time.monotonic() + self.hold, self))
        else:
            self.reply()

    def reply(self):
        if not self.connected:
            return  # closed while held
        self.replied = True
        self.send(b"".join(self.chunks))
        if not self.out_buffer:
            self.close()

    def handle_write(self):
        self.initiate_send()
        if self.replied and not self.out_buffer:
            self.close()

    def handle_close(self):
        self.close()


class Echo(asyncore.dispatcher_with_send):
    def __init__(self, sock):
        super().__init__(sock)
        self.eof = False

    def readable(self):
        return not self.eof and len(self.out_buffer) < ECHO_HIGH_WATER

    def handle_read(self):
        try:
            data = self.socket.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        if data:
            self.send(data)
            return
        self.eof = True
        if not self.out_buffer:
            self.close()

    def handle_write(self):
        self.initiate_send()
        if self.eof and not self.out_buffer:
            self.close()

    def handle_close(self):
        self.close()


class Server(asyncore.dispatcher):
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.hold = args.hold_ms / 1000.0
        self.create_socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        if args.reuseport:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.bind((args.host, args.port))
        self.listen(BACKLOG)

    def handle_accept(self):
        for _ in range(ACCEPT_BATCH):
            try:
                pair = self.accept()
            except OSError as e:  # EMFILE and the like: try again on the next event
                print(f"peer_asyncore: accept: {e}", file=sys.stderr)
                return
            if pair is None:
                return
            sock, _ = pair
            if self.args.echo:
                Echo(sock)
            else:
                HalfCloseEcho(sock, self.hold)


def main():
    args = parse_args("peer_asyncore.py")
    server = Server(args)
    host, port = server.socket.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else 30.0
        asyncore.loop(timeout=timeout, use_poll=True, count=1)
        if held:
            now = time.monotonic()
            while held and held[0][0] <= now:
                held.popleft()[1].reply()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
