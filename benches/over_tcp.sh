#!/usr/bin/env bash
# Each session layer's own cost per request over real TCP: every contender is served on
# loopback with `axum::serve` pinned to one core, loaded from another core by 64 keep-alive
# connections, in alternating rounds (these machines are shared, so a slower moment hits every
# contender alike). Per contender it prints the median requests per second, the time per
# request, and the session overhead: that time minus raw axum's in the same run.
#
#   benches/over_tcp.sh                                  # hot workload, the memory contenders
#   WORKLOAD=fresh ROUNDS=5 SECONDS_PER_RUN=3 benches/over_tcp.sh typed-session tower-sessions
#
# Needs two cores and `taskset` (util-linux). The load generator shares nothing with the server
# but the loopback device; where it is the bottleneck the overheads shrink together, so compare
# them within one run only.
set -euo pipefail
cd "$(dirname "$0")/.."

workload=${WORKLOAD:-hot}
rounds=${ROUNDS:-3}
seconds=${SECONDS_PER_RUN:-3}
connections=${CONNECTIONS:-64}
if [ $# -gt 0 ]; then
  contenders=("$@")
else
  contenders=(typed-session typed-session-signed tower-sessions tower-sessions-signed axum_session axum_session-signed)
fi
# raw axum is the baseline every overhead is taken against.
contenders=(raw-axum "${contenders[@]/raw-axum}")

cargo build --quiet --profile measure -p benches --example over_tcp
bin="${CARGO_TARGET_DIR:-target}/measure/examples/over_tcp"

results=$(mktemp)
server_log=$(mktemp)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -f "$results" "$server_log"
}
trap cleanup EXIT

run_one() { # contender
  taskset -c 0 "$bin" serve "$1" >"$server_log" 2>&1 &
  server=$!
  local addr=
  for _ in $(seq 1 200); do
    addr=$(sed -n 's|^listening on http://\(.*\)/$|\1|p' "$server_log")
    [ -n "$addr" ] && break
    if ! kill -0 "$server" 2>/dev/null; then
      echo "over_tcp: $1 did not start:" >&2
      cat "$server_log" >&2
      exit 1
    fi
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "over_tcp: $1 printed no address in 20 s" >&2
    exit 1
  fi
  local rate
  rate=$(taskset -c 1 "$bin" load "$addr" "$workload" "$seconds" "$connections")
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=
  echo "$1 $rate" >>"$results"
}

for round in $(seq 1 "$rounds"); do
  # Rotate the order each round, so no contender always runs first or last.
  count=${#contenders[@]}
  for i in $(seq 0 $((count - 1))); do
    contender=${contenders[$(((i + round) % count))]}
    [ -n "$contender" ] && run_one "$contender"
  done
done

echo "over TCP, workload $workload, $connections connections, $rounds rounds of ${seconds} s, median per contender"
echo
echo "| contender | requests/s | µs per request | session overhead, µs per request |"
echo "|---|---:|---:|---:|"
awk '
  {
    rates[$1] = rates[$1] " " $2
    if (!($1 in seen)) { seen[$1] = 1; names[++n] = $1 }
  }
  function median(list,   values, count, i, j, swap) {
    count = split(list, values, " ")
    for (i = 1; i <= count; i++)
      for (j = i + 1; j <= count; j++)
        if (values[j] + 0 < values[i] + 0) { swap = values[i]; values[i] = values[j]; values[j] = swap }
    return count % 2 ? values[(count + 1) / 2] : (values[count / 2] + values[count / 2 + 1]) / 2
  }
  END {
    base = 1e6 / median(rates["raw-axum"])
    for (k = 1; k <= n; k++) {
      name = names[k]
      rate = median(rates[name])
      micros = 1e6 / rate
      printf "| %s | %.0f | %.2f | %s |\n", name, rate, micros,
        name == "raw-axum" ? "(baseline)" : sprintf("%.2f", micros - base)
    }
  }
' "$results"
