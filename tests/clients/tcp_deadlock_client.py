#!/usr/bin/env python3
"""The client side of tcp_deadlock.py (Foundations of Python Network
Programming), ported to Python 3.

usage: tcp_deadlock_client.py HOST PORT BYTES [TIMEOUT]
       tcp_deadlock_client.py PATH - BYTES [TIMEOUT]

HOST PORT is a TCP server; PATH (a path beginning with /, or @name in the
abstract namespace) with - for the port is a Unix stream socket server,
which speaks the same protocol with the same close semantics.

Sends BYTES (rounded up to a multiple of 16) of 'capitalize this!' with
sendall, half-closes with shutdown(SHUT_WR), reads the reply to EOF, and
prints 'received N bytes'. Exit 0 iff the reply is the uppercased text, in
full; 1 otherwise.

Like the original it sends everything before it reads anything: with more
data than the socket buffers between it and a server that honours
backpressure hold, both sides stop reading and the exchange deadlocks.
With TIMEOUT (seconds) a blocked send or receive gives up after that long
without progress, prints why on stderr and exits 3.
"""

import socket
import sys

MESSAGE = b'capitalize this!'  # 16-byte message to repeat over and over
CHUNK = MESSAGE * 1024  # sendall 16 KiB at a time (the original: 16 bytes)


def main():
    if len(sys.argv) not in (4, 5) or not sys.argv[3].isdigit():
        print('usage: tcp_deadlock_client.py HOST PORT|- BYTES [TIMEOUT]', file=sys.stderr)
        return 2
    host, port = sys.argv[1], sys.argv[2]
    nbytes = (int(sys.argv[3]) + 15) // 16 * 16  # round up to // 16
    timeout = float(sys.argv[4]) if len(sys.argv) == 5 else None

    if host.startswith(('/', '@')) and port == '-':
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address = '\0' + host[1:] if host.startswith('@') else host
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = (host, int(port))
    s.settimeout(timeout)
    print('sending', nbytes, 'bytes:', repr(MESSAGE), 'repeated', file=sys.stderr)
    s.connect(address)

    sent = 0
    try:
        while sent < nbytes:
            chunk = CHUNK[:nbytes - sent]
            s.sendall(chunk)
            sent += len(chunk)
    except socket.timeout:
        print('deadlock: sendall made no progress for %ss after %d of %d bytes: the server '
              'stopped reading because we do not read its replies' % (timeout, sent, nbytes),
              file=sys.stderr)
        return 3

    s.shutdown(socket.SHUT_WR)
    print('receiving all the data the server sends back', file=sys.stderr)

    upper = MESSAGE.upper()
    received = 0
    correct = True
    try:
        while True:
            data = s.recv(65536)
            if not received and data:
                print('the first data received says', repr(data[:42]), file=sys.stderr)
            if not data:
                break
            offset = received % 16
            expected = (upper * ((offset + len(data)) // 16 + 1))[offset:offset + len(data)]
            if data != expected:
                correct = False
            received += len(data)
    except socket.timeout:
        print('timed out after %ss waiting for the reply (%d of %d bytes)' % (timeout, received, nbytes),
              file=sys.stderr)
        return 3
    s.close()

    print('received %d bytes' % received)
    if not correct:
        print('the reply is not the uppercased text', file=sys.stderr)
        return 1
    return 0 if received == nbytes else 1


if __name__ == '__main__':
    sys.exit(main())
