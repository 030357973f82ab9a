#!/usr/bin/env python3
"""send_data() of the shut_srv recipe ("use shutdown, not close"), ported
to Python 3.

usage: shut_send_data.py HOST PORT DATA MARKER

Sends DATA followed by MARKER with sendall, half-closes with shutdown(1),
reads the reply 2 bytes at a time until EOF, and writes it to stdout
exactly as received. Progress goes to stderr, as the recipe prints it.
"""

import socket
import sys


def send_data(host, port, data, marker):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect((host, port))
    print('connected', file=sys.stderr)
    sock.sendall(data + marker)
    print('sent', data.decode(errors='replace'), file=sys.stderr)
    sock.shutdown(1)
    print('shutdown', file=sys.stderr)
    result = []
    while True:
        got = sock.recv(2)
        if not got:
            break
        result.append(got)
    sock.close()
    return b''.join(result)


def main():
    if len(sys.argv) != 5:
        print('usage: shut_send_data.py HOST PORT DATA MARKER', file=sys.stderr)
        return 2
    host, port = sys.argv[1], int(sys.argv[2])
    reply = send_data(host, port, sys.argv[3].encode(), sys.argv[4].encode())
    sys.stdout.buffer.write(reply)
    sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main())
