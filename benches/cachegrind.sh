#!/usr/bin/env bash
# Cache behaviour per request under cachegrind's simulated caches: instructions (Ir), first-level
# instruction-cache misses (I1mr) and data-cache read misses (D1mr), each as
# (count(N2) - count(N1)) / (N2 - N1), so set-up cancels. Deterministic like `callgrind.sh`; it
# shows what instruction counts cannot: a request that runs through more code than the
# instruction cache holds pays a miss per extra cache line of code, which is where wall-clock
# time goes when two contenders execute about as many instructions. Needs valgrind.
#
#   benches/cachegrind.sh                                  # hot, typed-session and the yardsticks
#   benches/cachegrind.sh fresh typed-session tower-sessions
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-10000}
N2=${N2:-30000}
POOL=${POOL:-10000}
workload=${1:-hot}
shift || true
contenders=${*:-"raw-axum minimal-layer typed-session"}

cargo build --quiet --profile measure -p benches --example per_request
bin=${CARGO_TARGET_DIR:-target}/measure/examples/per_request
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The `summary:` line's counts, in the order of its `events:` line (Ir I1mr ILmr Dr D1mr ...).
counts() {
  valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file="$out/$2" \
    "$bin" "$1" "$workload" "$2" "$POOL" > /dev/null 2>&1
  sed -n 's/^summary: //p' "$out/$2"
}

echo "per request under cachegrind ($workload, N1=$N1, N2=$N2, pool=$POOL), $(date -u +%F), $(uname -m)"
echo "contender Ir I1mr D1mr"
for contender in $contenders; do
  read -r -a low <<< "$(counts "$contender" "$N1")"
  read -r -a high <<< "$(counts "$contender" "$N2")"
  awk -v c="$contender" -v n="$(( N2 - N1 ))" \
    -v ir="$(( high[0] - low[0] ))" -v i1="$(( high[1] - low[1] ))" -v d1="$(( high[4] - low[4] ))" \
    'BEGIN { printf "%s %.0f %.1f %.2f\n", c, ir / n, i1 / n, d1 / n }'
done
