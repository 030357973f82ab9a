"""Command line shared by the Python peers of benches/compare.sh.

    --listen ADDR   address to bind (default 127.0.0.1:0)
    --hold-ms H     after the client's FIN, wait H ms before replying (default 0)
    --reuseport     set SO_REUSEPORT, so several processes can share the port
    --echo          echo mode: echo every byte as it arrives, close after the client's FIN
"""

import argparse

BACKLOG = 4096


def parse_args(prog):
    p = argparse.ArgumentParser(prog=prog, description="half-close echo server")
    p.add_argument("--listen", default="127.0.0.1:0", help="IP:PORT to bind")
    p.add_argument("--hold-ms", type=int, default=0, help="hold after the client's FIN, ms")
    p.add_argument("--reuseport", action="store_true", help="set SO_REUSEPORT")
    p.add_argument("--echo", action="store_true", help="echo mode")
    a = p.parse_args()
    host, _, port = a.listen.rpartition(":")
    a.host = host.strip("[]")
    a.port = int(port)
    return a
