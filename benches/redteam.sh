#!/usr/bin/env bash
# Red-team run of the webhook server: the attacks of the reliability issue, at full size and on
# demand, each against a fresh `serve` (defaults + --probe-addr), with a well-behaved client
# running alongside; prints the Markdown table for RELIABILITY.md (benches/redteam.py does the
# work, Python 3 standard library only, and says in its header what each column means).
#
# Loopback only, bounded: the server listens on 127.0.0.1; the good client connects from
# 127.0.0.1, the attackers from 127.0.0.2-127.0.0.20 (the server allows 128 connections per
# address, 1,024 in all). Each attack lasts DURATION seconds (default 10), plus up to 60 s of
# recovery measurement; the shutdown attack with a stalled upload waits up to 60 s for the exit.
# 20 attacks: about 4 minutes at DURATION=10 (2.5 at DURATION=5). Every process started is ended by its pid.
#
#   bash benches/redteam.sh                                 # Markdown table on stdout
#   DURATION=3 bash benches/redteam.sh                      # quick check
#   ONLY=idle-hoard,stall-small-1h bash benches/redteam.sh  # a subset
#   ONLY=list bash benches/redteam.sh                       # the attack names
#   BIN=/path/to/image-config-webhook bash benches/redteam.sh   # no build
#   KEEP_LOGS=/tmp/redteam-logs bash benches/redteam.sh     # keep each server's stderr log
#
# What one attack measures (see benches/redteam.py for the details):
# - good client: one keep-alive HTTPS connection from 127.0.0.1 posting a typical ~4.5 KB
#   allowed Image UPDATE to /validate?timeout=10s every 20 ms (success %, p50/p99 latency), a
#   new connection with one review every 0.5 s ("fresh conns"), and GET /healthz on the probe
#   port every 100 ms on a new connection each time, 1 s timeout (failures);
# - the server: peak RSS (VmHWM, reset with clear_refs before the attack; needs root), CPU
#   seconds (utime+stime) during the attack, the deltas of its rejection metrics, the bytes it
#   logged; recovery: time until the open webhook connections, requests in flight and reviews
#   running are 0 and VmRSS stops moving, then whether a fresh client is served.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 2; }

if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --bin image-config-webhook >&2
  BIN=target/release/image-config-webhook
fi
[ -x "$BIN" ] || { echo "no executable at BIN=$BIN" >&2; exit 2; }

work=$(mktemp -d)
py=""
cleanup() {
  if [ -n "$py" ]; then kill "$py" 2>/dev/null || true; wait "$py" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
"$BIN" certs --out "$work/certs" >/dev/null

BIN="$BIN" CERT_DIR="$work/certs" python3 benches/redteam.py &
py=$!
status=0
wait "$py" || status=$?
py=""
exit "$status"
