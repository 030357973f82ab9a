"""The half-close echo server as asyncio users write it: a Protocol whose
eof_received returns True, so the transport stays open for the reply.

    python3 benches/peers/python/peer_asyncio.py --listen 127.0.0.1:0 [--hold-ms H] [--echo]

Prints `listening on IP:PORT` first. data_received collects the request;
eof_received schedules the reply (loop.call_later for the hold), which
writes the request back and closes the transport (close flushes, then
closes the socket). A held connection that the client resets cancels its
timer in connection_lost. SIGTERM stops the loop.
"""

import asyncio
import signal
import sys

from common import BACKLOG, parse_args


class HalfCloseEcho(asyncio.Protocol):
    def __init__(self, hold):
        self.hold = hold
        self.chunks = []
        self.transport = None
        self.timer = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.chunks.append(data)

    def eof_received(self):
        if self.hold > 0:
            self.timer = asyncio.get_running_loop().call_later(self.hold, self.reply)
        else:
            self.reply()
        return True  # keep our half open: the reply is still to come

    def reply(self):
        self.timer = None
        self.transport.write(b"".join(self.chunks))
        self.transport.close()

    def connection_lost(self, exc):
        if self.timer is not None:
            self.timer.cancel()


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False  # close once the echo is flushed


async def main():
    args = parse_args("peer_asyncio.py")
    loop = asyncio.get_running_loop()
    hold = args.hold_ms / 1000.0
    factory = Echo if args.echo else (lambda: HalfCloseEcho(hold))
    server = await loop.create_server(
        factory, args.host, args.port, backlog=BACKLOG, reuse_port=args.reuseport or None
    )
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    await stop
    server.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
