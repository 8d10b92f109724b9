#!/usr/bin/env bash
# Does a review wait on the API server? Two webhooks from the same binary, measured in the same
# run, interleaved:
#   off      `serve` without a cluster context (the plain overlay);
#   stalled  `serve --cluster-context`, its KUBECONFIG naming a fake API server that accepts TCP
#            connections and never answers (not even the TLS handshake): every list and watch of
#            the four kinds hangs until the client's own timeouts, and is retried.
# The ratio of their p99 latencies (and throughput) says whether the context's watchers delay
# reviews: they must not (issue "Judge the Image object in its cluster", done-when).
#
# Loopback only, bounded: for each concurrency (CONCURRENCY, default "1 16") and each body
# (benches/reviews/typical-allowed.json, typical-denied.json), ROUNDS rounds (default 3) of the two
# servers one after the other, each run DURATION long (default 5s): 2 x 2 x 3 x 2 x 5 s, 2 minutes.
# Each cell is the median of its rounds. Servers pinned to core 0, wrk to core 1, as benches/load.sh.
#
#   bash benches/context_stall.sh       # Markdown report on stdout, progress on stderr
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-1 16}
COMMAND="DURATION=$DURATION ROUNDS=$ROUNDS CONCURRENCY=\"$CONCURRENCY\" bash benches/context_stall.sh"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 2; }
command -v taskset >/dev/null || { echo "taskset is needed (util-linux)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "two cores are needed (servers on core 0, wrk on core 1)" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
REVIEWS=benches/reviews

cargo build --release --locked --bin image-config-webhook >&2
BIN=${CARGO_TARGET_DIR:-target}/release/image-config-webhook

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
"$BIN" certs --out "$work/certs" >/dev/null
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The stalled API server: accepts, counts and holds every connection, never reads or writes.
APORT=$(port)
python3 - "$APORT" "$work/accepted" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128)
held = []
while True:
    c, _ = s.accept(); held.append(c)
    open(sys.argv[2], "w").write(str(len(held)))
PY
pids+=("$!")
cat > "$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: stalled
  cluster: {server: "https://127.0.0.1:$APORT", insecure-skip-tls-verify: true}
contexts:
- name: stalled
  context: {cluster: stalled, user: stalled}
current-context: stalled
users:
- name: stalled
  user: {token: not-a-secret}
EOF

declare -A PORT PROBE PID
for s in off stalled; do
  PORT[$s]=$(port); PROBE[$s]=$(port)
  extra=(); [ "$s" = stalled ] && extra=(--cluster-context)
  KUBECONFIG="$work/kubeconfig" taskset -c 0 "$BIN" serve --cert-dir "$work/certs" \
    --listen "127.0.0.1:${PORT[$s]}" --probe-addr "127.0.0.1:${PROBE[$s]}" --log-level warn \
    "${extra[@]}" 2> "$work/$s.log" &
  PID[$s]=$!; pids+=("$!")
  for _ in $(seq 1000); do
    curl -sf "http://127.0.0.1:${PROBE[$s]}/readyz" >/dev/null 2>&1 && break
    kill -0 "${PID[$s]}" 2>/dev/null || { echo "the $s webhook exited: $(cat "$work/$s.log")" >&2; exit 1; }
    sleep 0.01
  done
done
sleep 1
[ -s "$work/accepted" ] || { echo "abort: the stalled webhook never called the fake API server" >&2; exit 1; }

. benches/wrk-run.sh  # measure
results="$work/results"; : > "$results"
read -r -a CS <<< "$CONCURRENCY"
SERVERS=(off stalled)
for c in "${CS[@]}"; do
  for body in allowed denied; do
    for round in $(seq "$ROUNDS"); do
      for i in 0 1; do
        s=${SERVERS[$(( (i + round - 1) % 2 ))]}
        # A command substitution, so that measure's abort ends this script.
        run=$(measure "$s" "${PID[$s]}" "${PORT[$s]}" "$c" "$REVIEWS/typical-$body.json") || exit 1
        read -r rps p50 p99 p999 errors cpu <<< "$run"
        echo "$body $c $s $rps $p50 $p99 $p999 $errors $cpu" >> "$results"
        printf '%s c=%s round %s %-8s %7s req/s  p99 %6s µs  errors %s\n' "$body" "$c" "$round" "$s" "$rps" "$p99" "$errors" >&2
      done
    done
  done
done
ACCEPTED=$(cat "$work/accepted")
SYNCED=$(curl -sf "http://127.0.0.1:${PROBE[stalled]}/metrics" | grep '^image_config_webhook_context_synced' | tr '\n' ' ' || true)

python3 - "$results" "$ROUNDS" <<'PY'
import statistics, sys
cells = {}
for l in open(sys.argv[1]):
    body, c, s, rps, p50, p99, p999, err, cpu = l.split()
    cells.setdefault((body, int(c), s), []).append((float(rps), float(p50), float(p99), float(p999), int(err), float(cpu)))
med = lambda k, i: statistics.median(v[i] for v in cells[k])
print(f"Medians of {sys.argv[2]} round(s) per cell; errors summed over the rounds.\n")
print("| body | concurrency | context | requests/s | p50 µs | p99 µs | p99.9 µs | errors | server CPU µs/request |")
print("|---|---|---|---|---|---|---|---|---|")
keys = sorted({(b, c) for b, c, _ in cells}, key=lambda k: (k[0] != "allowed", k[1]))
for b, c in keys:
    for s in ("off", "stalled"):
        k = (b, c, s)
        print(f"| {b} | {c} | {s} | {med(k,0):.0f} | {med(k,1):.0f} | {med(k,2):.0f} | {med(k,3):.0f} | {sum(v[4] for v in cells[k])} | {med(k,5):.1f} |")
print("\n| body | concurrency | stalled / off p99 | stalled / off throughput |")
print("|---|---|---|---|")
for b, c in keys:
    on, off = (b, c, "stalled"), (b, c, "off")
    print(f"| {b} | {c} | {med(on,2) / med(off,2):.2f} | {med(on,0) / med(off,0):.2f} |")
PY
echo
echo "- the fake API server accepted $ACCEPTED connection(s) from the stalled webhook and answered none; its metrics at the end: $SYNCED"
echo "- machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; servers on core 0, wrk -t1 on core 1"
echo "- command: \`$COMMAND\`"
