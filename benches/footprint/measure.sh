#!/usr/bin/env bash
# Footprint of adopting dualmetrics (issue 20): crates in the normal dependency tree and a clean
# release build, for a minimal service with dualmetrics (default features) and the same service
# with opentelemetry-otlp + cadence wired by hand. Each build gets an empty target dir; the two
# run one after the other on the same machine.
#   bash benches/footprint/measure.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for svc in by-hand with-dualmetrics; do
  dir=$here/$svc
  crates=$(cd "$dir" && cargo tree -e normal --prefix none | sed 's/ (\*)$//' | sort -u | wc -l)
  target=$(mktemp -d)
  start=$(date +%s.%N)
  (cd "$dir" && CARGO_TARGET_DIR=$target cargo build --release -q)
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  rm -rf "$target"
  printf '%-18s crates %4d   clean release build %6.1f s\n' "$svc" "$crates" "$secs"
done
