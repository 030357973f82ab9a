"""Drive examples/http_server/main.rs with Python's http.client, as a user would.

usage: python3 http_chunked_put.py HOST PORT

1. The chunked PUT of the FIN-versus-RST write-up: putrequest, a
   Transfer-Encoding: chunked header, the chunks sent by hand, getresponse,
   then conn.close() (which calls socket.close() at once).
2. Several requests on one keep-alive connection: the socket must stay the
   same and every response must be right.

Prints "ok" and exits 0 when every check passed; exits 1 with a message
otherwise.
"""

import http.client
import sys


def chunk_data(data, size_per_chunk):
    """The body in chunked transfer coding: hex size, CRLF, data, CRLF; a
    zero-size chunk and a blank line end it."""
    out = []
    for i in range(0, len(data), size_per_chunk):
        chunk = data[i:i + size_per_chunk]
        out.append("%X\r\n%s\r\n" % (len(chunk), chunk))
    out.append("0\r\n\r\n")
    return "".join(out)


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)


def chunked_put(host, port):
    body = "".join(chr(ord("a") + i % 26) for i in range(10000))
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("PUT", "/")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(chunk_data(body, 1000).encode("utf-8"))
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    check(resp.status == 200, "chunked PUT status %d" % resp.status)
    check(text == "received %d bytes\n" % len(body), "chunked PUT body %r" % text)


def keep_alive(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.connect()
    sock = conn.sock
    steps = [
        ("GET", "/", None, 200, "hello from halfclose\n"),
        ("POST", "/form", b"x" * 1234, 200, "received 1234 bytes\n"),
        ("GET", "/missing", None, 404, "not found\n"),
        ("HEAD", "/", None, 200, ""),
        ("PUT", "/file", b"y" * 70000, 200, "received 70000 bytes\n"),
        ("GET", "/", None, 200, "hello from halfclose\n"),
    ]
    for method, url, body, status, expected in steps:
        conn.request(method, url, body=body)
        resp = conn.getresponse()
        text = resp.read().decode()
        check(resp.status == status, "%s %s status %d" % (method, url, resp.status))
        check(text == expected, "%s %s body %r" % (method, url, text))
        check(not resp.will_close, "%s %s: server wants to close" % (method, url))
        check(conn.sock is sock, "%s %s: a new connection was opened" % (method, url))
    conn.close()


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    chunked_put(host, port)
    keep_alive(host, port)
    print("ok")


if __name__ == "__main__":
    main()
