#!/usr/bin/env bash
# Where the CPU goes per request in `serve`, by stage, from instruction counts (callgrind counts
# the same on a busy machine as on a quiet one; wall time does not).
#
# Runs the release server under `valgrind --tool=callgrind` (all threads), warms it up, zeroes
# the counters, sends REQUESTS reviews over one keep-alive TLS connection (the API server's
# way), dumps the counters, and prints the instructions per request of each stage: the
# inclusive cost of the functions that make the stage (the patterns below), largest first.
# The no-op baseline (examples/baseline_server.rs) is profiled the same way, for the floor.
#
#   bash benches/profile.sh                       # the typical allowed review
#   BODY=benches/reviews/typical-denied.json bash benches/profile.sh
#   REQUESTS=2000 bash benches/profile.sh
#
# Needs valgrind (Debian package valgrind) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BODY=${BODY:-benches/reviews/typical-allowed.json}
REQUESTS=${REQUESTS:-1000}
TARGET=${CARGO_TARGET_DIR:-target}
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install -y valgrind" >&2; exit 2; }

cargo build --release --locked --bin image-config-webhook --example baseline_server >&2
BIN=$TARGET/release/image-config-webhook
NOOP=$TARGET/release/examples/baseline_server

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"; }
trap cleanup EXIT
"$BIN" certs --out "$work/certs" >/dev/null
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Sends $2 requests with the body over one TLS keep-alive connection to port $1, each request
# in one write, as the API server's client and wrk do (the no-op baseline answers before it
# reads the body, which a request split over several writes would show).
send() {
  python3 - "$1" "$2" "$BODY" <<'PY'
import socket, ssl, sys
port, n, body = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read()
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60))
request = (b"POST /validate?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
buf = b""
for _ in range(n):
    sock.sendall(request)
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head[:40]
    length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length"))
    while len(buf) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        buf += chunk
    buf = buf[length:]
PY
}

# Profiles one server: $1 name, $2 port, then its command line; leaves the counts of the
# requests alone in $work/callgrind.<name>.
profile() {
  local name=$1 p=$2; shift 2
  local out="$work/callgrind.$name"
  valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no "$@" \
    >"$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 600); do
    send "$p" 1 >/dev/null 2>&1 && break
    sleep 0.1
  done
  send "$p" 50 # warm-up: connection set up, caches and pools filled
  callgrind_control -z "$pid" >/dev/null
  send "$p" "$REQUESTS"
  callgrind_control -d "$pid" >/dev/null
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # The dump after the requests is the first numbered file.
  mv "$(ls "$out".* | sort | head -1)" "$out.requests"
}

echo "profiling the webhook ($REQUESTS requests of $BODY)" >&2
WPORT=$(port); PPORT=$(port)
profile webhook "$WPORT" "$BIN" serve --cert-dir "$work/certs" --listen "127.0.0.1:$WPORT" \
  --probe-addr "127.0.0.1:$PPORT" --log-level warn
echo "profiling the no-op baseline" >&2
BPORT=$(port)
profile noop "$BPORT" "$NOOP" "$work/certs" "127.0.0.1:$BPORT"

python3 - "$work" "$REQUESTS" "$BODY" <<'PY'
import re, subprocess, sys
work, n, body = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def inclusive(name):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                          f"{work}/callgrind.{name}.requests"], capture_output=True, text=True).stdout
    total, costs = 0, []
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if not m:
            continue
        cost, fn = int(m.group(1).replace(",", "")), m.group(2)
        if "PROGRAM TOTALS" in fn:
            total = cost
        else:
            costs.append((cost, fn))
    return total, costs

# Each stage: the functions whose inclusive cost is the stage's (the largest match is taken, so
# that a stage is not counted twice through its own callees). Stages do not nest in each other.
STAGES = [
    ("TLS records in (decrypt)", [r"rustls::conn::ConnectionCommon<.*>::process_new_packets", r"rustls::conn::.*::process_new_packets"]),
    ("TLS records out (encrypt)", [r"rustls::common_state::CommonState::send_appdata_encrypt", r"rustls::.*::write_plaintext", r"rustls::common_state::CommonState::send_msg_encrypt"]),
    ("socket reads and writes (syscalls)", [r"\bread\b.*libc", r"__libc_read", r"\bwrite\b.*libc", r"__libc_write", r"writev", r"recvfrom", r"sendto"]),
    ("HTTP/1 parse and encode (hyper)", [r"hyper::proto::h1::role::.*::parse", r"hyper::proto::h1::role::Server.*::encode"]),
    ("body collection", [r"image_config_webhook::server::validate::collect"]),
    ("review: decode, rules, verdict, response (review_within)", [r"image_config_webhook::review::review_within"]),
    ("  of which one-pass decode (wire::decode)", [r"image_config_webhook::wire::decode"]),
    ("  of which rules (rules::run_limited)", [r"image_config_webhook::rules::run_limited"]),
    ("  of which response encoding (review::response_bytes)", [r"image_config_webhook::review::response_bytes"]),
    ("review pool hand-off (channel, thread wake-up)", [r"std::sync::mpmc::.*::recv", r"std::sync::mpmc::.*::send"]),
    ("metrics", [r"image_config_webhook::server::metrics::"]),
    ("tracing (events, filters)", [r"tracing_subscriber::", r"tracing_core::"]),
    ("kernel futex, epoll (scheduling)", [r"epoll_wait", r"syscall\b.*libc", r"futex"]),
    ("malloc and free (all stages)", [r"\bmalloc\b", r"\bfree\b", r"_int_malloc", r"_int_free", r"realloc"]),
]

def report(name):
    total, costs = inclusive(name)
    rows = []
    for stage, patterns in STAGES:
        best = 0
        for pattern in patterns:
            for cost, fn in costs:
                if re.search(pattern, fn):
                    best = max(best, cost)
                    break
        rows.append((stage, best / n))
    return total / n, rows

wt, wrows = report("webhook")
nt, nrows = report("noop")
print(f"Instructions per request (callgrind, all threads), {n} requests of `{body}` over one")
print("TLS keep-alive connection; `bash benches/profile.sh` reproduces it.")
print()
print("| stage | webhook | no-op |")
print("|---|---|---|")
for (stage, w), (_, b) in zip(wrows, nrows):
    print(f"| {stage} | {w:,.0f} | {b:,.0f} |")
print(f"| **total per request** | **{wt:,.0f}** | **{nt:,.0f}** |")
print()
print(f"webhook / no-op: {wt / nt:.2f}")
PY
