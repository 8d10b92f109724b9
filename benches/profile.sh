#!/usr/bin/env bash
# Where the CPU goes per request in `serve`, by stage, from instruction counts (callgrind counts
# the same on a busy machine as on a quiet one; wall time does not).
#
# Runs the release server under `valgrind --tool=callgrind` (all threads), warms it up, zeroes
# the counters, sends REQUESTS reviews over one keep-alive TLS connection (the API server's
# way), dumps the counters, and prints the instructions per request of each stage: the
# inclusive cost of the functions that make the stage (the patterns below), largest first.
# The no-op baseline (examples/baseline_server.rs, the floor) and the kube-core baseline
# (examples/kube_core_baseline.rs, a typical Rust webhook) are profiled the same way.
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

cargo build --release --locked --bin image-config-webhook --example baseline_server \
  --example kube_core_baseline >&2
BIN=$TARGET/release/image-config-webhook
NOOP=$TARGET/release/examples/baseline_server
KUBE=$TARGET/release/examples/kube_core_baseline

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
echo "profiling the kube-core baseline" >&2
KPORT=$(port)
profile kube "$KPORT" "$KUBE" "$work/certs" "127.0.0.1:$KPORT"

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

# Each stage: the functions whose inclusive cost is the stage's (the largest match is taken).
# Indented stages are parts of the stage above them.
HANDLER = r"<F as axum::handler::Handler<.*>>::call::\{\{closure\}\}"
STAGES = [
    ("TLS and HTTP stack (all but the /validate handler)", None),
    ("  of which TLS records in (socket read, decrypt)", [r"tokio_rustls::common::Stream<.*>::read_io"]),
    ("  of which TLS records out (encrypt, socket write)", [r"tokio_rustls::common::Stream<.*>::poll_write_vectored"]),
    ("  of which the HTTP/1 request head (hyper's parser)", [r"hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::parse"]),
    ("/validate handler", [HANDLER]),
    ("  of which the review (review::review_within)", [r"image_config_webhook::review::review_within"]),
    ("    of which one-pass decode (wire::decode)", [r"image_config_webhook::wire::decode"]),
    ("    of which the rules (rules::run_limited)", [r"image_config_webhook::rules::run_limited"]),
    ("    of which the response (review::response_bytes)", [r"image_config_webhook::review::response_bytes"]),
    ("  of which the rest: body collection, lanes, metrics, log budget (kube-core: its decode and answer)", "rest"),
    ("malloc and free, all stages together", [r"\bmalloc\b", r"\bfree\b", r"_int_malloc", r"_int_free", r"realloc"]),
]

def report(name):
    total, costs = inclusive(name)
    def best(patterns):
        found = 0
        for pattern in patterns:
            for cost, fn in costs:
                if re.search(pattern, fn):
                    found = max(found, cost)
                    break
        return found
    handler = best([HANDLER])
    review = best(STAGES[5][1])
    rows = []
    for stage, patterns in STAGES:
        if patterns is None:
            value = total - handler
        elif patterns == "rest":
            value = handler - review
        else:
            value = best(patterns)
        rows.append((stage, value / n))
    return total / n, rows

reports = {name: report(name) for name in ("webhook", "kube", "noop")}
print(f"Instructions per request (callgrind, all threads), {n} requests of `{body}` over one")
print("TLS keep-alive connection, after 50 requests of warm-up; `bash benches/profile.sh` reproduces it.")
print()
print("| stage | webhook | kube-core baseline | no-op baseline |")
print("|---|---|---|---|")
for i, (stage, _) in enumerate(STAGES):
    cells = [reports[k][1][i][1] for k in ("webhook", "kube", "noop")]
    label = stage.replace("  ", "&nbsp;&nbsp;")
    print(f"| {label} | " + " | ".join(f"{c:,.0f}" if c else "-" for c in cells) + " |")
totals = [reports[k][0] for k in ("webhook", "kube", "noop")]
print("| **total per request** | " + " | ".join(f"**{t:,.0f}**" for t in totals) + " |")
print()
print(f"webhook / no-op: {totals[0] / totals[2]:.2f}; webhook / kube-core: {totals[0] / totals[1]:.2f}")
PY
