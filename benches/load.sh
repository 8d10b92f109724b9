#!/usr/bin/env bash
# Load benchmark of the webhook server against a no-op baseline on the same TLS and HTTP stack
# (examples/baseline_server.rs), measured in the same run, interleaved.
#
# Loopback only, bounded: each run lasts DURATION (default 10s); 3 concurrencies x 2 bodies x
# 2 servers = 12 runs. HTTP/1.1 keep-alive over TLS, like the API server. The servers are pinned
# to core 0 and the load generator (wrk, Debian package) to core 1, so that latency measures the
# server rather than the scheduler (FIELD-NOTES "Measuring on this machine").
#
#   bash benches/load.sh            # prints a Markdown report on stdout
#   DURATION=5s bash benches/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 2; }
command -v taskset >/dev/null || { echo "taskset is needed (util-linux)" >&2; exit 2; }

cargo build --release --locked --bin image-config-webhook --example baseline_server >&2
BIN=target/release/image-config-webhook
BASE=target/release/examples/baseline_server

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
"$BIN" certs --out "$work/certs" >/dev/null

# A typical allowed review and a typical denied one (a dozen entries each).
review() { # uid, registrySources JSON
  cat <<JSON
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"$1",
 "kind":{"group":"config.openshift.io","version":"v1","kind":"Image"},
 "resource":{"group":"config.openshift.io","version":"v1","resource":"images"},
 "name":"cluster","operation":"UPDATE","userInfo":{"username":"system:admin"},"dryRun":false,
 "object":{"apiVersion":"config.openshift.io/v1","kind":"Image","metadata":{"name":"cluster","uid":"u1"},
  "spec":{"additionalTrustedCA":{"name":"registry-cas"},
   "allowedRegistriesForImport":[{"domainName":"quay.io"},{"domainName":"registry.redhat.io"},{"domainName":"*.corp.example.com"}],
   "externalRegistryHostnames":["registry.apps.example.com"],
   "registrySources":$2}},
 "oldObject":{"apiVersion":"config.openshift.io/v1","kind":"Image","metadata":{"name":"cluster","uid":"u1"},"spec":{}}}}
JSON
}
review allowed '{"allowedRegistries":["quay.io","registry.redhat.io","image-registry.openshift-image-registry.svc:5000","*.corp.example.com","mirror.example.com"],"insecureRegistries":["mirror.example.com"],"containerRuntimeSearchRegistries":["registry.corp.example.com"]}' > "$work/allowed.json"
review denied '{"allowedRegistries":["quay.io","registry.redhat.io","image-registry.openshift-image-registry.svc:5000","*.corp.example.com"],"blockedRegistries":["registry.io/myrepo:latest"],"containerRuntimeSearchRegistries":["docker.io"]}' > "$work/denied.json"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Start the webhook and time it from exec to a 200 on /readyz.
WPORT=$(port); PPORT=$(port); BPORT=$(port)
t0=$(date +%s%N)
taskset -c 0 "$BIN" serve --cert-dir "$work/certs" --listen "127.0.0.1:$WPORT" --probe-addr "127.0.0.1:$PPORT" --log-level warn &
WPID=$!; pids+=("$WPID")
until curl -sf "http://127.0.0.1:$PPORT/readyz" >/dev/null 2>&1; do
  kill -0 "$WPID" 2>/dev/null || { echo "the webhook exited" >&2; exit 1; }
  sleep 0.002
done
t1=$(date +%s%N)
READY_MS=$(( (t1 - t0) / 1000000 ))
RSS_IDLE=$(awk '/VmRSS/{print $2}' "/proc/$WPID/status")

taskset -c 0 "$BASE" "$work/certs" "127.0.0.1:$BPORT" 2>/dev/null &
BPID=$!; pids+=("$BPID")
for _ in $(seq 500); do curl -sk -o /dev/null "https://127.0.0.1:$BPORT/" && break; sleep 0.01; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

echo "| body | concurrency | server | requests/s | p50 µs | p99 µs | p99.9 µs | errors | server CPU µs/request |"
echo "|---|---|---|---|---|---|---|---|---|"
declare -A RPS
for c in 1 16 64; do
  for body in allowed denied; do
    for server in baseline webhook; do
      if [ "$server" = webhook ]; then p=$WPORT; pid=$WPID; else p=$BPORT; pid=$BPID; fi
      before=$(cpu_ticks "$pid")
      line=$(taskset -c 1 wrk -t1 -c"$c" -d"$DURATION" -s benches/wrk-post.lua \
        "https://127.0.0.1:$p/validate?timeout=10s" -- "$work/$body.json" | grep '^RESULT')
      after=$(cpu_ticks "$pid")
      eval "${line#RESULT }"
      rps=$(( requests * 1000000 / duration_us ))
      cpu_us=$(( (after - before) * 1000000 / HZ / (requests > 0 ? requests : 1) ))
      RPS[$body-$c-$server]=$rps
      echo "| $body | $c | $server | $rps | $p50 | $p99 | $p999 | $errors | $cpu_us |"
    done
  done
done
echo
echo "| body | concurrency | webhook / baseline throughput |"
echo "|---|---|---|"
for c in 1 16 64; do
  for body in allowed denied; do
    w=${RPS[$body-$c-webhook]}; b=${RPS[$body-$c-baseline]}
    echo "| $body | $c | $(python3 -c "print(f'{$w/$b:.1%}')") |"
  done
done
RSS_PEAK=$(awk '/VmHWM/{print $2}' "/proc/$WPID/status")
echo
echo "- webhook ready (exec to first 200 on /readyz, polled every 2 ms): ${READY_MS} ms"
echo "- webhook RSS: ${RSS_IDLE} KiB when ready, peak ${RSS_PEAK} KiB (VmHWM) after all runs"
echo "- machine: $(nproc) cores, $(awk -F: '/model name/{print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB; $(rustc --version); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
