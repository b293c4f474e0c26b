#!/usr/bin/env bash
# Instructions per request of every contender and workload, under callgrind: deterministic, so
# it does not depend on what else the machine is doing. Per request = (I(N2) - I(N1)) / (N2 - N1),
# which cancels what the first requests pay once. On the main thread only `per_request`'s
# `measure_*` functions are counted (`--toggle-collect`), so its set-up (runtime, store, check,
# session pool) is left out; they are named in full because a toggle flips, and a pattern that
# also matched the async block inside would switch counting off there. Other threads (SQLite's
# connection workers) are counted whole, their set-up cancelling in the difference. Built with
# the `measure` profile (release, one codegen unit; see Cargo.toml). Needs valgrind.
#
#   benches/callgrind.sh                  # all contenders and workloads
#   benches/callgrind.sh hot typed-session tower-sessions
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-500}
N2=${N2:-1500}
POOL=${POOL:-1000}
workloads=${1:-"hot fresh read-only"}
shift || true
contenders=${*:-"raw-axum minimal-layer typed-session typed-session-signed typed-session-sqlite tower-sessions tower-sessions-signed axum_session axum_session-signed"}

cargo build --quiet --profile measure -p benches --example per_request
bin=${CARGO_TARGET_DIR:-target}/measure/examples/per_request

instructions() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    --toggle-collect='*per_request::measure_requests' \
    --toggle-collect='*per_request::measure_hmac_verifications' \
    --toggle-collect='*Thread>::new::thread_start' \
    "$bin" "$1" "$2" "$3" "$POOL" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

echo "instructions per request (N1=$N1, N2=$N2, pool=$POOL), $(date -u +%F), $(uname -m)"
low=$(instructions hmac-verify any "$N1")
high=$(instructions hmac-verify any "$N2")
echo "yardstick hmac-verify $(( (high - low) / (N2 - N1) ))"
for workload in $workloads; do
  for contender in $contenders; do
    # A contender that fails its check (1 then 2 with its own cookie) is reported, not measured.
    if low=$(instructions "$contender" "$workload" "$N1") && [ -n "$low" ] \
      && high=$(instructions "$contender" "$workload" "$N2") && [ -n "$high" ]; then
      echo "$workload $contender $(( (high - low) / (N2 - N1) ))"
    else
      echo "$workload $contender failed its check under valgrind (see: valgrind $bin $contender $workload $N1 $POOL)"
    fi
  done
done
