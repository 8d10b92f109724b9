#!/usr/bin/env bash
# Load benchmark of the webhook server against two baselines on the same TLS and HTTP stack,
# measured in the same run, interleaved:
#   no-op      examples/baseline_server.rs: a constant answer, the floor of the stack;
#   kube-core  examples/kube_core_baseline.rs: decodes kube-core's AdmissionReview<DynamicObject>
#              and answers allowed, the way a typical Rust webhook does.
#
# Loopback only, bounded: for each concurrency (CONCURRENCY, default "1 16 64") and each body
# (benches/reviews/typical-allowed.json and typical-denied.json, UPDATEs of the Image `cluster`
# as kube-apiserver sends them, about 4 KB), ROUNDS rounds (default 3) of the three servers one
# after the other, each run DURATION long (default 5s): 3 x 2 x 3 x 3 x 5 s, about 5 minutes.
# Each cell is the median of its rounds. HTTP/1.1 keep-alive over TLS, like the API server. The
# servers are pinned to core 0 and the load generator (wrk, Debian package) to core 1, so that
# latency measures the server rather than the scheduler (FIELD-NOTES "Measuring on this machine").
#
#   bash benches/load.sh            # Markdown report on stdout, progress on stderr
#   DURATION=2s ROUNDS=1 CONCURRENCY="16" bash benches/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-1 16 64}
COMMAND="DURATION=$DURATION ROUNDS=$ROUNDS CONCURRENCY=\"$CONCURRENCY\" bash benches/load.sh"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 2; }
command -v taskset >/dev/null || { echo "taskset is needed (util-linux)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "two cores are needed (server on core 0, wrk on core 1)" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }

REVIEWS=benches/reviews
for body in allowed denied; do
  [ -s "$REVIEWS/typical-$body.json" ] || { echo "missing $REVIEWS/typical-$body.json" >&2; exit 2; }
done

cargo build --release --locked --bin image-config-webhook --example baseline_server \
  --example kube_core_baseline >&2
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/image-config-webhook
NOOP=$TARGET/release/examples/baseline_server
KUBE=$TARGET/release/examples/kube_core_baseline

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
"$BIN" certs --out "$work/certs" >/dev/null

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# POST a body; prints "<http code> <response body>" (code 000 when the connection failed).
post() { # port, body file
  curl -sk --max-time 5 -o "$work/answer" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$2" "https://127.0.0.1:$1/validate?timeout=10s" 2>/dev/null || true
}

# Start the webhook and time it from exec to a 200 on /readyz.
WPORT=$(port); PPORT=$(port); NPORT=$(port); KPORT=$(port)
t0=$(date +%s%N)
taskset -c 0 "$BIN" serve --cert-dir "$work/certs" --listen "127.0.0.1:$WPORT" \
  --probe-addr "127.0.0.1:$PPORT" --log-level warn &
WPID=$!; pids+=("$WPID")
until curl -sf "http://127.0.0.1:$PPORT/readyz" >/dev/null 2>&1; do
  kill -0 "$WPID" 2>/dev/null || { echo "the webhook exited before it was ready" >&2; exit 1; }
  sleep 0.002
done
t1=$(date +%s%N)
READY_MS=$(( (t1 - t0) / 1000000 ))

taskset -c 0 "$NOOP" "$work/certs" "127.0.0.1:$NPORT" 2>/dev/null &
NPID=$!; pids+=("$NPID")
taskset -c 0 "$KUBE" "$work/certs" "127.0.0.1:$KPORT" 2>/dev/null &
KPID=$!; pids+=("$KPID")

declare -A PORT=([webhook]=$WPORT [no-op]=$NPORT [kube-core]=$KPORT)
declare -A PID=([webhook]=$WPID [no-op]=$NPID [kube-core]=$KPID)
SERVERS=(webhook no-op kube-core)
declare -A RSS_READY
for s in "${SERVERS[@]}"; do
  for _ in $(seq 500); do
    [ "$(post "${PORT[$s]}" "$REVIEWS/typical-allowed.json")" = 200 ] && break
    kill -0 "${PID[$s]}" 2>/dev/null || { echo "the $s server exited before it was ready" >&2; exit 1; }
    sleep 0.01
  done
  RSS_READY[$s]=$(awk '/VmRSS/{print $2}' "/proc/${PID[$s]}/status")
done

# Every server must answer each body 200, and the webhook with the verdict the body is for;
# otherwise the run would measure error paths.
for body in allowed denied; do
  if [ "$body" = allowed ]; then want='"allowed":true'; else want='"allowed":false'; fi
  for s in "${SERVERS[@]}"; do
    code=$(post "${PORT[$s]}" "$REVIEWS/typical-$body.json")
    if [ "$code" != 200 ]; then
      echo "abort: the $s server answered $REVIEWS/typical-$body.json with HTTP $code:" >&2
      head -c 600 "$work/answer" >&2; echo >&2; exit 1
    fi
    if [ "$s" = webhook ] && ! grep -qF "$want" "$work/answer"; then
      echo "abort: the webhook's answer to $REVIEWS/typical-$body.json lacks $want:" >&2
      head -c 600 "$work/answer" >&2; echo >&2; exit 1
    fi
  done
done

. benches/wrk-run.sh  # measure

# One line per run: body concurrency server round requests/s p50 p99 p99.9 errors cpu-µs/request.
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
results="$work/results"
: > "$results"
read -r -a CS <<< "$CONCURRENCY"
total=$(( ${#CS[@]} * 2 * ROUNDS * 3 )); n=0
for c in "${CS[@]}"; do
  for body in allowed denied; do
    for round in $(seq "$ROUNDS"); do
      # Rotate the order each round so that no server always runs first or last.
      for i in 0 1 2; do
        s=${SERVERS[$(( (i + round - 1) % 3 ))]}
        # A command substitution, so that measure's abort ends this script.
        run=$(measure "$s" "${PID[$s]}" "${PORT[$s]}" "$c" "$REVIEWS/typical-$body.json") || exit 1
        read -r rps p50 p99 p999 errors cpu_us <<< "$run"
        echo "$body $c $s $round $rps $p50 $p99 $p999 $errors $cpu_us" >> "$results"
        n=$(( n + 1 ))
        printf '[%d/%d] %s c=%s round %s %-9s %7s req/s  p99 %6s µs  %5s CPU µs/req  errors %s\n' \
          "$n" "$total" "$body" "$c" "$round" "$s" "$rps" "$p99" "$cpu_us" "$errors" >&2
      done
    done
  done
done

declare -A RSS_PEAK
for s in "${SERVERS[@]}"; do RSS_PEAK[$s]=$(awk '/VmHWM/{print $2}' "/proc/${PID[$s]}/status"); done

python3 - "$results" "$ROUNDS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rounds = sys.argv[2]
cells = {}
for body, c, s, _round, rps, p50, p99, p999, err, cpu in rows:
    cells.setdefault((body, int(c), s), []).append(
        (float(rps), float(p50), float(p99), float(p999), int(err), float(cpu)))
def med(k, i):
    return statistics.median(v[i] for v in cells[k])
keys = sorted({(b, c) for b, c, _ in cells}, key=lambda k: (k[0] != "allowed", k[1]))
servers = ["webhook", "no-op", "kube-core"]
print(f"Medians of {rounds} round(s) per cell; errors are summed over the rounds.\n")
print("| body | concurrency | server | requests/s | p50 µs | p99 µs | p99.9 µs | errors | server CPU µs/request |")
print("|---|---|---|---|---|---|---|---|---|")
for b, c in keys:
    for s in servers:
        k = (b, c, s)
        errs = sum(v[4] for v in cells[k])
        print(f"| {b} | {c} | {s} | {med(k,0):.0f} | {med(k,1):.0f} | {med(k,2):.0f} | {med(k,3):.0f} | {errs} | {med(k,5):.1f} |")
print()
print("| body | concurrency | webhook / no-op throughput | webhook / kube-core throughput | webhook / no-op CPU per request | webhook / kube-core CPU per request | webhook / no-op p99 |")
print("|---|---|---|---|---|---|---|")
def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"
for b, c in keys:
    w, n, k = ((b, c, s) for s in servers)
    print(f"| {b} | {c} | {ratio(med(w,0), med(n,0))} | {ratio(med(w,0), med(k,0))} "
          f"| {ratio(med(w,5), med(n,5))} | {ratio(med(w,5), med(k,5))} | {ratio(med(w,2), med(n,2))} |")
PY

echo
echo "- webhook ready (exec to first 200 on /readyz, polled every 2 ms): ${READY_MS} ms"
for s in "${SERVERS[@]}"; do
  echo "- $s RSS: ${RSS_READY[$s]} KiB when ready, peak ${RSS_PEAK[$s]} KiB (VmHWM) after all runs"
done
echo "- bodies: $REVIEWS/typical-allowed.json $(wc -c < "$REVIEWS/typical-allowed.json") bytes, $REVIEWS/typical-denied.json $(wc -c < "$REVIEWS/typical-denied.json") bytes"
echo "- machine: $(nproc) cores, $(awk -F: '/model name/{print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB; load average before the runs $LOADAVG; $(rustc --version); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); servers on core 0, wrk -t1 on core 1"
echo "- command: \`$COMMAND\`"
