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
#
# Builds everything in release mode (halfclosed twice: plain, and with
# --features tls as target/release/halfclosed-tls for the tls scenario),
# installs strace and openssl if they are missing,
# raises net.core.somaxconn when it may (and says so; the old value is put
# back at the end), then runs benches/compare.py, which runs one server at
# a time pinned to core 0 against a load pinned to core 1, over loopback
# only, and writes compare.json, compare.md (the table) and compare.svg (the
# plot) to benches/results/ (target/compare-quick/ with --quick).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

for tool in taskset ss node python3.11 cargo; do
    need "$tool" || { echo "compare.sh: $tool is required" >&2; exit 1; }
done
for tool in strace openssl; do
    if ! need "$tool"; then
        echo "compare.sh: installing $tool" >&2
        if [ "$(id -u)" = 0 ]; then
            timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq "$tool" >/dev/null
        fi
        need "$tool" || { echo "compare.sh: $tool is required (apt-get install $tool)" >&2; exit 1; }
    fi
done

echo "compare.sh: building (release)" >&2
# The TLS build first, set aside; then the plain one, which the other
# scenarios run (cargo keeps both builds, so switching back is a copy).
timeout 1200 cargo build --release --quiet -p halfclose-tools --features tls --bin halfclosed
cp target/release/halfclosed target/release/halfclosed-tls
timeout 1200 cargo build --release --quiet -p halfclose-tools --bin halfclosed
timeout 1200 cargo build --release --quiet -p halfclose --example echo
timeout 1200 cargo build --release --quiet --manifest-path benches/peers/rust/Cargo.toml

# A burst of connects larger than the accept queue costs 1 s SYN retransmits.
SOMAXCONN=/proc/sys/net/core/somaxconn
old_somaxconn=$(cat "$SOMAXCONN")
if [ "$old_somaxconn" -lt 65535 ] && [ -w "$SOMAXCONN" ] && echo 65535 >"$SOMAXCONN" 2>/dev/null; then
    echo "compare.sh: net.core.somaxconn set to $(cat "$SOMAXCONN") (was $old_somaxconn; put back at the end)" >&2
    trap 'echo "$old_somaxconn" >"$SOMAXCONN"; echo "compare.sh: net.core.somaxconn back to $old_somaxconn" >&2' EXIT
else
    echo "compare.sh: net.core.somaxconn is $old_somaxconn (not changed)" >&2
fi

# Every run inside has its own timeout; this one bounds the whole.
timeout 3300 python3 benches/compare.py "$@"
