# Sourced by benches/load.sh and benches/context_stall.sh: one pinned wrk run against one server.
# Needs DURATION set and the working directory at the repository root.

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# measure NAME PID PORT CONCURRENCY BODY: wrk -t1 on core 1 POSTs BODY to the server on PORT for
# DURATION (benches/wrk-post.lua); prints "requests/s p50 p99 p99.9 errors server-CPU-µs/request",
# the CPU from the server's utime+stime. Fails (exit 1, with a line on stderr) when the server is gone or wrk gives no result.
measure() {
  local name=$1 pid=$2 port=$3 c=$4 body=$5 before after line
  kill -0 "$pid" 2>/dev/null || { echo "abort: the $name server exited" >&2; exit 1; }
  before=$(cpu_ticks "$pid")
  line=$(taskset -c 1 wrk -t1 -c"$c" -d"$DURATION" -s benches/wrk-post.lua \
    "https://127.0.0.1:$port/validate?timeout=10s" -- "$body" \
    | grep '^RESULT') || { echo "abort: wrk gave no RESULT line against $name" >&2; exit 1; }
  after=$(cpu_ticks "$pid")
  local requests=0 errors=0 duration_us=1 p50=0 p99=0 p999=0
  eval "${line#RESULT }"  # assigns the six above (benches/wrk-post.lua)
  awk -v r="$requests" -v d="$duration_us" -v t=$(( after - before )) -v hz="$HZ" \
    -v rest="$p50 $p99 $p999 $errors" \
    'BEGIN { r1 = r > 0 ? r : 1; printf "%.0f %s %.1f\n", r * 1e6 / d, rest, t * 1e6 / hz / r1 }'
}
