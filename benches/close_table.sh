#!/usr/bin/env bash
# The close table: what examples/proxy, haproxy, nginx (stream, with and
# without proxy_half_close) and socat pass on when one end of a proxied
# connection sends FIN, resets, or is not there. Writes CLOSING.md and
# target/close-table/results.json. Not part of .ci/run.
#
#   benches/close_table.sh                  # every proxy and scenario, 3 runs each (about 3 minutes)
#   benches/close_table.sh --proxies nginx,haproxy --only upstream_reset --repeat 1
#   benches/close_table.sh --help           # the scenarios and every option
#
# Needs root: each run happens in a network namespace of its own
# (unshare -n). Installs what is missing (haproxy, nginx with its stream
# module, socat, iproute2 for nstat and ss) with apt-get, then builds the
# proxy (cargo build --release --example proxy) and runs
# benches/close_table.py with the arguments given here.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if [ "$(id -u)" != 0 ]; then
    echo "close_table.sh: needs root (every run is in its own network namespace: unshare -n)" >&2
    exit 1
fi
for tool in python3 cargo unshare; do
    need "$tool" || { echo "close_table.sh: $tool is required" >&2; exit 1; }
done

missing=()
need haproxy || missing+=(haproxy)
need nginx || missing+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
need socat || missing+=(socat)
{ need nstat && need ss && need ip; } || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
    echo "close_table.sh: installing ${missing[*]}" >&2
    # Installing must not start the packaged services (they would take ports
    # and run outside the namespaces); policy-rc.d says so for this install.
    policy=/usr/sbin/policy-rc.d
    created_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
    fi
    status=0
    timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
    [ -n "$created_policy" ] && rm -f "$policy"
    if [ "$status" != 0 ]; then
        echo "close_table.sh: apt-get failed (exit $status)" >&2
        exit 1
    fi
fi

echo "close_table.sh: building examples/proxy (release)" >&2
timeout 1200 cargo build --release --quiet --example proxy

# Every run inside has its own bounds; this one bounds the whole.
timeout 3000 python3 benches/close_table.py "$@"
