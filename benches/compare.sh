#!/usr/bin/env bash
# Side-by-side benchmark of the half-close echo servers: halfclose, a raw
# mio loop, tokio current_thread, Node.js, Python asyncio and asyncore;
# over TLS: halfclose, tokio-rustls and Node.js tls.
#
#   benches/compare.sh            # full run (about 25 minutes on 2 cores)
#   benches/compare.sh --quick    # small sizes, a few minutes
#   benches/compare.sh --only churn,syscalls --servers halfclose,mio
#   benches/compare.sh --quick --baseline DIR   # DIR/halfclosed, DIR/echo (and DIR/peer_mio): an earlier build, side by side
#   benches/compare.sh --quick --only unix --servers halfclose,mio   # over a Unix stream socket
#   benches/compare.sh --quick --only tls    # churn over TLS: halfclose, tokio-rustls, Node.js
#   benches/compare.sh --only http --out benches/results/http   # HTTP/1.1: examples/http_server and nginx, loaded by wrk
#
# Builds everything in release mode (halfclosed twice: plain, and with
# --features tls as target/release/halfclosed-tls for the tls scenario),
# and examples/http_server for the http scenario; installs strace and
# openssl if they are missing, and nginx and wrk (the http scenario's peer
# and load; without them that scenario is marked as skipped); raises
# net.core.somaxconn and net.ipv4.tcp_max_tw_buckets when it may (and says
# so; the old values are put back at the end), then runs benches/compare.py, which runs one server at
# a time pinned to core 0 against a load pinned to core 1, over loopback
# only, and writes compare.json, compare.md (the table) and compare.svg (the
# plot) to benches/results/ (target/compare-quick/ with --quick).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

for tool in taskset ss node python3.11 cargo; do
    need "$tool" || { echo "compare.sh: $tool is required" >&2; exit 1; }
done
apt_updated=
install() {
    echo "compare.sh: installing $1" >&2
    if [ "$(id -u)" = 0 ]; then
        if [ -z "$apt_updated" ]; then
            timeout 300 apt-get update -qq || true
            apt_updated=1
        fi
        timeout 300 apt-get install -y -qq "$1" >/dev/null || true
    fi
}
for tool in strace openssl; do
    if ! need "$tool"; then
        install "$tool"
        need "$tool" || { echo "compare.sh: $tool is required (apt-get install $tool)" >&2; exit 1; }
    fi
done
# The http scenario's server to compare with and its load; nginx is in
# /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin"
for tool in nginx wrk; do
    if ! need "$tool"; then
        install "$tool"
        need "$tool" || echo "compare.sh: $tool is missing (apt-get install $tool): the http scenario will be skipped" >&2
    fi
done

echo "compare.sh: building (release)" >&2
# The TLS build first, set aside; then the plain one, which the other
# scenarios run (cargo keeps both builds, so switching back is a copy).
timeout 1200 cargo build --release --quiet -p halfclose-tools --features tls --bin halfclosed
cp target/release/halfclosed target/release/halfclosed-tls
timeout 1200 cargo build --release --quiet -p halfclose-tools --bin halfclosed
timeout 1200 cargo build --release --quiet -p halfclose --example echo
timeout 1200 cargo build --release --quiet -p halfclose --example http_server
timeout 1200 cargo build --release --quiet --manifest-path benches/peers/rust/Cargo.toml

# raise NAME FILE VALUE: set a sysctl to at least VALUE when it may, and
# put the old value back at the end.
restore=()
raise() {
    local name=$1 file=$2 want=$3 old
    old=$(cat "$file")
    if [ "$old" -lt "$want" ] && [ -w "$file" ] && echo "$want" >"$file" 2>/dev/null; then
        echo "compare.sh: $name set to $(cat "$file") (was $old; put back at the end)" >&2
        restore+=("$name $file $old")
    else
        echo "compare.sh: $name is $old (not changed)" >&2
    fi
}
put_back() {
    local r name file old
    for r in "${restore[@]}"; do
        read -r name file old <<<"$r"
        echo "$old" >"$file"
        echo "compare.sh: $name back to $old" >&2
    done
}
trap put_back EXIT
# A burst of connects larger than the accept queue costs 1 s SYN retransmits.
raise net.core.somaxconn /proc/sys/net/core/somaxconn 65535
# The http scenario's `Connection: close` runs leave TIME_WAIT sockets on
# the server's side (the server closes first) for 60 s, up to ~14,000 a
# run (wrk's ports towards one address come round again), on top of what
# the other scenarios and programs leave; past this limit the kernel skips
# TIME_WAIT (TcpExt.TCPTimeWaitOverflow), which would make a run cheaper
# than the one before it.
raise net.ipv4.tcp_max_tw_buckets /proc/sys/net/ipv4/tcp_max_tw_buckets 1048576

# Every run inside has its own timeout; this one bounds the whole.
timeout 3300 python3 benches/compare.py "$@"
