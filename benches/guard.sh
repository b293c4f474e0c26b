#!/usr/bin/env bash
# The performance guard CI runs: typed-session's instructions per request under callgrind,
# against the minimal layer (a session layer that does nothing but the unavoidable: see
# benches/README.md) and raw axum measured in the same run, with a bound on each ratio. Counts
# are deterministic, and ratios to a yardstick built in the same binary stay put when the
# toolchain moves both. Fails, naming the ratio, when one is past its bound.
#
#   benches/guard.sh            # prints every ratio; exit 1 if one is past its bound
#
# The bounds, with the figures of 2026-12-04 they were set from (see benches/README.md):
#   hot / minimal layer           <= 1.03   (0.99)
#   fresh / minimal layer         <= 1.06   (1.03)
#   read-only / minimal layer     <= 1.03   (0.98)
#   hot / raw axum                <= 1.50   (1.40)
#   signed hot / unsigned hot     <= 1.10   (1.06)  the target of the signed-path work
#   signed read-only / unsigned   <= 1.10   (1.06)
set -euo pipefail
cd "$(dirname "$0")/.."

# Fewer requests than the full comparison: the figures are per request either way (differences
# of two runs), and the guard should take a few minutes, not fifteen.
export N1=${N1:-200} N2=${N2:-600} POOL=${POOL:-400}

out=$(benches/callgrind.sh "hot fresh read-only" minimal-layer raw-axum typed-session typed-session-signed)
echo "$out"

figure() {
  local value
  value=$(awk -v w="$1" -v c="$2" '$1 == w && $2 == c { print $3 }' <<<"$out")
  if ! [[ "$value" =~ ^[0-9]+$ ]]; then
    echo "guard: no figure for $1 $2 (the bench failed its check?)" >&2
    exit 1
  fi
  echo "$value"
}

failed=0
check() { # name numerator denominator bound
  local ratio
  ratio=$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.3f", a / b }')
  if awk -v r="$ratio" -v bound="$4" 'BEGIN { exit !(r > bound) }'; then
    echo "guard: FAIL $1 = $ratio, bound $4"
    failed=1
  else
    echo "guard: ok   $1 = $ratio, bound $4"
  fi
}

check "hot / minimal layer" "$(figure hot typed-session)" "$(figure hot minimal-layer)" 1.03
check "fresh / minimal layer" "$(figure fresh typed-session)" "$(figure fresh minimal-layer)" 1.06
check "read-only / minimal layer" "$(figure read-only typed-session)" "$(figure read-only minimal-layer)" 1.03
check "hot / raw axum" "$(figure hot typed-session)" "$(figure hot raw-axum)" 1.50
check "signed hot / unsigned hot" "$(figure hot typed-session-signed)" "$(figure hot typed-session)" 1.10
check "signed read-only / unsigned" "$(figure read-only typed-session-signed)" "$(figure read-only typed-session)" 1.10
exit "$failed"
