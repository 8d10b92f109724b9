#!/usr/bin/env bash
# Soak of the webhook server: sustained load at about half the measured capacity while the
# serving certificate is rotated by kubelet-style symlink swap every INTERVAL seconds, with one
# corrupt rotation (a garbage tls.crt) in the middle; then a SIGKILL under load and a restart.
#
# Loopback only, bounded: DURATION (default 600 s = 10 minutes, in whole INTERVALs) of load,
# plus about 40 s of set-up (build excluded) and 25 s for the kill test.
#
#   bash benches/soak.sh                       # 10 minutes; Markdown report on stdout
#   DURATION=120 bash benches/soak.sh          # a 2-minute run
#   KILL_TEST=0 bash benches/soak.sh           # without the SIGKILL test
#
# What it does:
# 1. builds the release binary; makes a CA and a pool of POOL leaf certificates (openssl, P-256)
#    for localhost/127.0.0.1 up front;
# 2. lays out a kubelet-style Secret mount: DIR/..data -> ..TIMESTAMP/, DIR/tls.crt ->
#    ..data/tls.crt, DIR/tls.key -> ..data/tls.key, and starts `serve --cert-dir DIR` pinned to
#    core 0 (taskset), with the plain-HTTP probe listener for /metrics;
# 3. measures capacity: wrk (Debian package; one thread, pinned to core 1) unthrottled for
#    10 s, 16 connections, the same request mix as the soak (benches/soak/paced.lua: a denied
#    AdmissionReview, every CLOSE_EVERY-th request with `Connection: close` so wrk reconnects
#    and new handshakes see the rotated certificates);
# 4. paces the load at TARGET = capacity / 2: wrk has no rate control (wrk2 is not packaged),
#    so each of C connections waits DELAY_MS before each request (wrk's Lua `delay()` hook); a
#    10 s calibration run sets C so the achieved rate is about TARGET;
# 5. runs DURATION / INTERVAL back-to-back wrk segments of INTERVAL seconds; half-way through
#    each segment it swaps `..data` to a new timestamped directory with the next certificate
#    (the middle segment's swap is the corrupt one; the next swap is good again), waits until
#    a verifying TLS client (openssl s_client -CAfile ca.crt) sees the expected serial, and
#    after each segment records requests, failures (transport errors, non-200 statuses, wrong
#    verdicts), the achieved rate, p99 latency over the segment, VmRSS and open file
#    descriptors of the server, and the certificate reload counters from /metrics;
# 6. KILL_TEST=1: under the same paced load, SIGKILLs the server, starts it again at once and
#    measures the time until HTTPS /readyz answers 200 and what the load saw meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds() { # 600, 600s, 10m
  case "$1" in
    *m) echo $((${1%m} * 60)) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}
DURATION=$(seconds "${DURATION:-600}")
INTERVAL=$(seconds "${INTERVAL:-30}")
KILL_TEST=${KILL_TEST:-1}
POOL=${POOL:-4}
CLOSE_EVERY=${CLOSE_EVERY:-100}
DELAY_MS=${DELAY_MS:-2}
OUT=${OUT:-target/soak}
SEGMENTS=$((DURATION / INTERVAL))
[ "$SEGMENTS" -ge 2 ] || { echo "DURATION must be at least 2 x INTERVAL ($INTERVAL s)" >&2; exit 2; }
for tool in wrk taskset openssl curl; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done

cargo build --release --locked --bin image-config-webhook >&2
BIN=$PWD/target/release/image-config-webhook
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
SERVER_PID=
WRK_PID=
cleanup() {
  [ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# --- certificates -------------------------------------------------------------------------
certs=$work/pool
mkdir -p "$certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=image-config-webhook soak CA" -keyout "$certs/ca.key" -out "$certs/ca.crt" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n' > "$certs/ext"
for i in $(seq 1 "$POOL"); do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=image-config-webhook soak $i" -keyout "$certs/$i.key" -out "$certs/$i.csr" 2>/dev/null
  openssl x509 -req -in "$certs/$i.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" \
    -set_serial $((1000 + i)) -days 2 -extfile "$certs/ext" -out "$certs/$i.crt" 2>/dev/null
done
head -c 3000 /dev/urandom | base64 > "$certs/garbage.crt"
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }

# --- kubelet-style Secret mount -------------------------------------------------------------
SECRET=$work/secret
mkdir -p "$SECRET"
publish() { # CERT KEY: what kubelet's AtomicWriter does on a Secret update
  local ts old
  ts="..$(date -u +%Y_%m_%d_%H_%M_%S.%N)"
  old=$(readlink "$SECRET/..data" 2>/dev/null || true)
  mkdir "$SECRET/$ts"
  cp "$1" "$SECRET/$ts/tls.crt"
  cp "$2" "$SECRET/$ts/tls.key"
  chmod 0600 "$SECRET/$ts/tls.key"
  ln -s "$ts" "$SECRET/..data_tmp"
  mv -T "$SECRET/..data_tmp" "$SECRET/..data"
  [ -e "$SECRET/tls.crt" ] || ln -s ..data/tls.crt "$SECRET/tls.crt"
  [ -e "$SECRET/tls.key" ] || ln -s ..data/tls.key "$SECRET/tls.key"
  if [ -n "$old" ]; then rm -rf "${SECRET:?}/$old"; fi
}
publish "$certs/1.crt" "$certs/1.key"

# --- the request ----------------------------------------------------------------------------
# A denied review: a dozen entries, two errors (R2 and R7) to report. (benches/reviews/ holds the
# load benchmark's larger ones, with the metadata the API server sends.)
cat > "$work/denied.json" <<'JSON'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"soak",
 "kind":{"group":"config.openshift.io","version":"v1","kind":"Image"},
 "resource":{"group":"config.openshift.io","version":"v1","resource":"images"},
 "name":"cluster","operation":"UPDATE","userInfo":{"username":"system:admin"},"dryRun":false,
 "object":{"apiVersion":"config.openshift.io/v1","kind":"Image","metadata":{"name":"cluster","uid":"u1"},
  "spec":{"additionalTrustedCA":{"name":"registry-cas"},
   "allowedRegistriesForImport":[{"domainName":"quay.io"},{"domainName":"registry.redhat.io"},{"domainName":"*.corp.example.com"}],
   "externalRegistryHostnames":["registry.apps.example.com"],
   "registrySources":{"allowedRegistries":["quay.io","registry.redhat.io","image-registry.openshift-image-registry.svc:5000","*.corp.example.com"],"blockedRegistries":["registry.io/myrepo:latest"],"containerRuntimeSearchRegistries":["docker.io"]}}},
 "oldObject":{"apiVersion":"config.openshift.io/v1","kind":"Image","metadata":{"name":"cluster","uid":"u1"},"spec":{}}}}
JSON
EXPECT='"allowed":false'

# --- the server -----------------------------------------------------------------------------
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(port)
PPORT=$(port)
URL="https://127.0.0.1:$PORT/validate?timeout=10s"
start_server() {
  taskset -c 0 "$BIN" serve --cert-dir "$SECRET" --listen "127.0.0.1:$PORT" \
    --probe-addr "127.0.0.1:$PPORT" --log-level warn >>"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
}
https_ready() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 1 --cacert "$certs/ca.crt" \
    "https://localhost:$PORT/readyz" 2>/dev/null | grep -q '^200$'
}
wait_ready() { # prints milliseconds from $1 (date +%s%N) to the first 200 from HTTPS /readyz
  while ! https_ready; do
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited; see $OUT/server.log" >&2; exit 1; }
    sleep 0.005
  done
  echo $(( ($(date +%s%N) - $1) / 1000000 ))
}
: > "$OUT/server.log"
t0=$(date +%s%N)
start_server
READY_MS=$(wait_ready "$t0")
rss() { awk '/VmRSS/{print $2}' "/proc/$SERVER_PID/status"; }
hwm() { awk '/VmHWM/{print $2}' "/proc/$SERVER_PID/status"; }
fds() { ls "/proc/$SERVER_PID/fd" | wc -l; }
metrics() { curl -s --max-time 2 "http://127.0.0.1:$PPORT/metrics"; }
metric() { metrics | awk -v s="$1" '$1 == s {print $2; found=1} END {if (!found) print 0}'; }
RELOAD_OK='image_config_webhook_certificate_reloads_total{result="success"}'
RELOAD_FAILED='image_config_webhook_certificate_reloads_total{result="failure"}'
OPEN='image_config_webhook_connections_open{listener="webhook"}'
REJECTED='image_config_webhook_connections_rejected_total{listener="webhook",reason="limit"}'
served_serial() {
  openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$certs/ca.crt" \
    -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
RSS_IDLE=$(rss)
FDS_IDLE=$(fds)
log "server pid $SERVER_PID ready in ${READY_MS} ms on 127.0.0.1:$PORT (probe $PPORT); VmRSS ${RSS_IDLE} KiB, ${FDS_IDLE} fds"

# --- load -----------------------------------------------------------------------------------
run_wrk() { # CONNECTIONS DURATION_S DELAY_MS -> RESULT line
  taskset -c 1 wrk -t1 -c"$1" -d"$2"s --timeout 5s -s benches/soak/paced.lua "$URL" \
    -- "$work/denied.json" "$3" "$CLOSE_EVERY" "$EXPECT" | grep "^RESULT" || echo "RESULT requests=0 errors=-1 duration_us=1"
}
field() { # LINE NAME
  echo "$1" | tr ' ' '\n' | awk -F= -v n="$2" '$1 == n {print $2}'
}
rate_of() { echo $(( $(field "$1" requests) * 1000000 / $(field "$1" duration_us) )); }

cap_line=$(run_wrk 16 10 0)
CAPACITY=$(rate_of "$cap_line")
TARGET=$((CAPACITY / 2))
C=$(( (TARGET * DELAY_MS + 999) / 1000 ))
[ "$C" -ge 1 ] || C=1
cal_line=$(run_wrk "$C" 10 "$DELAY_MS")
ACHIEVED=$(rate_of "$cal_line")
if [ "$ACHIEVED" -gt 0 ]; then C=$(( (C * TARGET + ACHIEVED / 2) / ACHIEVED )); fi
[ "$C" -ge 1 ] || C=1
log "capacity ${CAPACITY}/s (16 connections, unthrottled: $cap_line)"
log "target ${TARGET}/s: calibration with $(( (TARGET * DELAY_MS + 999) / 1000 )) connections gave ${ACHIEVED}/s; soaking with $C connections x ${DELAY_MS} ms delay"
RSS_WARM=$(rss)
FDS_WARM=$(fds)

# --- soak -----------------------------------------------------------------------------------
MID=$(( (SEGMENTS + 1) / 2 ))
next=1
expected=$(serial_of "$certs/1.crt")
csv=$OUT/soak.csv
echo "segment,end_s,rotation,pickup_ms,served_serial,requests,failed,wrong,rate,p50_us,p99_us,p999_us,max_us,rss_kib,fds_under_load,open_conns_under_load,fds_after,reload_ok,reload_failed" > "$csv"
table=$OUT/soak-table.md
{
  echo "| t (s) | rotation | picked up | requests | failed | rate/s | p50 µs | p99 µs | max µs | VmRSS KiB | fds (load / after) | reloads ok / failed |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
} > "$table"
TOTAL_REQ=0
TOTAL_FAIL=0
SOAK_START=$(date +%s)
RSS_FIRST=
FDS_FIRST=
for seg in $(seq 1 "$SEGMENTS"); do
  taskset -c 1 wrk -t1 -c"$C" -d"$INTERVAL"s --timeout 5s -s benches/soak/paced.lua "$URL" \
    -- "$work/denied.json" "$DELAY_MS" "$CLOSE_EVERY" "$EXPECT" > "$work/seg.out" 2>&1 &
  WRK_PID=$!
  sleep $((INTERVAL / 2))
  fds_load=$(fds)
  open_load=$(metric "$OPEN")
  swapped=$(date +%s%N)
  if [ "$seg" -eq "$MID" ]; then
    rotation="corrupt"
    before_failed=$(metric "$RELOAD_FAILED")
    publish "$certs/garbage.crt" "$certs/$next.key"
    # The failure is counted and the previous certificate stays in service.
    for _ in $(seq 1 100); do
      [ "$(metric "$RELOAD_FAILED")" != "$before_failed" ] && break
      sleep 0.05
    done
    pickup_ms=$(( ($(date +%s%N) - swapped) / 1000000 ))
    pickup="rejected in $pickup_ms ms"
  else
    next=$(( next % POOL + 1 ))
    rotation="to leaf $next"
    publish "$certs/$next.crt" "$certs/$next.key"
    expected=$(serial_of "$certs/$next.crt")
    pickup_ms=timeout
    for _ in $(seq 1 200); do
      if [ "$(served_serial)" = "$expected" ]; then
        pickup_ms=$(( ($(date +%s%N) - swapped) / 1000000 ))
        break
      fi
      sleep 0.02
    done
    pickup="$pickup_ms ms"
  fi
  served=$(served_serial)
  wait "$WRK_PID" || true
  WRK_PID=
  line=$(grep '^RESULT' "$work/seg.out" || echo "RESULT requests=0 errors=-1 wrong=0 duration_us=1 p50=0 p99=0 p999=0 max=0")
  requests=$(field "$line" requests)
  errors=$(field "$line" errors)
  wrong=$(field "$line" wrong)
  failed=$((errors + wrong))
  rate=$(rate_of "$line")
  r=$(rss)
  f=$(fds)
  [ -n "$RSS_FIRST" ] || { RSS_FIRST=$r; FDS_FIRST=$f; }
  ok=$(metric "$RELOAD_OK")
  bad=$(metric "$RELOAD_FAILED")
  t=$(( $(date +%s) - SOAK_START ))
  TOTAL_REQ=$((TOTAL_REQ + requests))
  TOTAL_FAIL=$((TOTAL_FAIL + failed))
  [ "$served" = "$expected" ] || rotation="$rotation (served $served, expected $expected!)"
  echo "$seg,$t,$rotation,$pickup_ms,$served,$requests,$failed,$wrong,$rate,$(field "$line" p50),$(field "$line" p99),$(field "$line" p999),$(field "$line" max),$r,$fds_load,$open_load,$f,$ok,$bad" >> "$csv"
  echo "| $t | $rotation | $pickup | $requests | $failed | $rate | $(field "$line" p50) | $(field "$line" p99) | $(field "$line" max) | $r | $fds_load / $f | $ok / $bad |" >> "$table"
  log "segment $seg/$SEGMENTS: $rotation picked up: $pickup; $requests requests, $failed failed, ${rate}/s, p99 $(field "$line" p99) µs; VmRSS $r KiB, fds $fds_load under load ($open_load connections) / $f after; reloads $ok ok / $bad failed"
done
RSS_END=$(rss)
FDS_END=$(fds)
HWM=$(hwm)
RELOADS_OK=$(metric "$RELOAD_OK")
RELOADS_FAILED=$(metric "$RELOAD_FAILED")
SERVER_ERRORS=$(grep -c 'ERROR' "$OUT/server.log" || true)
SERVER_WARNS=$(grep -c 'WARN' "$OUT/server.log" || true)

# --- SIGKILL under load -----------------------------------------------------------------------
KILL_REPORT=
if [ "$KILL_TEST" = 1 ]; then
  taskset -c 1 wrk -t1 -c"$C" -d20s --timeout 5s -s benches/soak/paced.lua "$URL" \
    -- "$work/denied.json" "$DELAY_MS" "$CLOSE_EVERY" "$EXPECT" > "$work/kill.out" 2>&1 &
  WRK_PID=$!
  sleep 5
  old_pid=$SERVER_PID
  t_kill=$(date +%s%N)
  kill -KILL "$old_pid"
  wait "$old_pid" 2>/dev/null || true
  t_exec=$(date +%s%N)
  start_server
  ready_after_kill=$(wait_ready "$t_kill")
  ready_after_exec=$(( ($(date +%s%N) - t_exec) / 1000000 ))
  wait "$WRK_PID" || true
  WRK_PID=
  kline=$(grep '^RESULT' "$work/kill.out" || echo "RESULT requests=0 errors=-1")
  after_ok=$(metric "$RELOAD_OK")
  KILL_REPORT="- SIGKILL of pid $old_pid under load (${C} connections, about ${TARGET}/s), restarted at once as pid $SERVER_PID:
  HTTPS /readyz 200 again $ready_after_kill ms after the kill ($ready_after_exec ms after exec); the new process
  loaded the certificate in service (reloads_total{success} $after_ok, counters start from zero: no state).
  wrk over the 20 s around it: $(field "$kline" requests) answered, $(field "$kline" errors) errors (connect $(field "$kline" connect),
  read $(field "$kline" read), write $(field "$kline" write), status $(field "$kline" status), timeout $(field "$kline" timeout)), $(field "$kline" wrong) wrong verdicts."
fi

# --- report ---------------------------------------------------------------------------------
pct() { python3 -c "print(f'{($2 - $1) / $1 * 100:+.1f} %')"; }
{
  echo "## Soak: $SEGMENTS x ${INTERVAL} s at about half capacity, certificate rotation every ${INTERVAL} s"
  echo
  echo "- command: \`DURATION=$DURATION bash benches/soak.sh\` ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo "- capacity (wrk, 16 connections, unthrottled, 10 s): ${CAPACITY} requests/s; target ${TARGET}/s;"
  echo "  load: $C connections, each waiting ${DELAY_MS} ms before each request; every ${CLOSE_EVERY}th request"
  echo "  carries \`Connection: close\`, so new TLS handshakes pick up rotated certificates"
  echo "- requests: $TOTAL_REQ sent and answered; failed: $TOTAL_FAIL (transport errors, non-200, wrong verdicts)"
  echo "- VmRSS: ${RSS_IDLE} KiB idle after start, ${RSS_WARM} KiB after the capacity run, ${RSS_FIRST} KiB after the"
  echo "  first segment, ${RSS_END} KiB at the end ($(pct "$RSS_FIRST" "$RSS_END") from the first segment); VmHWM ${HWM} KiB"
  echo "- file descriptors: ${FDS_IDLE} idle, ${FDS_FIRST} after the first segment, ${FDS_END} at the end;"
  echo "  under load $(cut -d, -f15 "$csv" | tail -n +2 | sort -n | head -1) to $(cut -d, -f15 "$csv" | tail -n +2 | sort -n | tail -1) (the load's $C connections + the listeners)"
  echo "- rotation picked up by new handshakes (swap to a verifying client seeing the new serial): $(grep -v corrupt "$csv" | cut -d, -f4 | tail -n +2 | sort -n | head -1) to $(grep -v corrupt "$csv" | cut -d, -f4 | tail -n +2 | sort -n | tail -1) ms"
  echo "- certificate reloads from /metrics: ${RELOADS_OK} successes (1 at start + $((SEGMENTS - 1)) rotations), ${RELOADS_FAILED} failure (the corrupt rotation, segment $MID)"
  echo "- server log: $SERVER_ERRORS ERROR lines, $SERVER_WARNS WARN lines"
  echo "- server ready (exec to HTTPS /readyz 200): ${READY_MS} ms"
  [ -z "$KILL_REPORT" ] || echo "$KILL_REPORT"
  echo "- machine: $(nproc) cores, $(awk -F: '/model name/{print $2; exit}' /proc/cpuinfo | sed 's/^ *//'); server pinned to core 0, wrk to core 1"
  echo
  cat "$table"
} | tee "$OUT/soak.md"
