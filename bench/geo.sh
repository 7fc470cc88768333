#!/usr/bin/env bash
# rampart-geo benchmark: build every country's aggregated IPv4+IPv6 set from the five
# vendored RIR files (target: <= 1 CPU second), and IPv4 lookups per second on one core
# (target: >= 10 M/s); then the kernel side (needs root): load a 100k-prefix policy set
# (target <= 1 s), replace it atomically while UDP flows run (no gap), and single jail bans
# with a 500k-prefix set loaded (target p99 <= 20 ms). See docs/geo.md.
#
#   bash bench/geo.sh
#
# Environment (all optional):
#   GEO_REPEAT=3          runs of each measurement (the median is reported)
#   GEO_LOOKUPS=10000000  random IPv4 addresses looked up
#   BENCH_NO_BUILD=1      use the examples already built, do not run cargo
#   GEO_KERNEL=0          skip the kernel measurements (they need root)
#   CARGO_TARGET_DIR      where cargo builds (default: target)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

REPEAT=${GEO_REPEAT:-3}
LOOKUPS=${GEO_LOOKUPS:-10000000}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/examples/geo_bench
OUT=bench/out
mkdir -p "$OUT"

if [ ! -x /usr/bin/time ]; then
  echo "bench/geo.sh: /usr/bin/time is missing (apt-get install time)" >&2
  exit 2
fi

if [ -z "${BENCH_NO_BUILD:-}" ]; then
  cargo build --release --locked -q -p rampart-geo --example geo_bench
  if [ "${GEO_KERNEL:-1}" != 0 ]; then
    cargo build --release --locked -q -p rampart-enforce --example geo-bench
  fi
fi

FILES=()
for rir in afrinic apnic arin lacnic ripencc; do
  FILES+=("data/geo/rir/delegated-$rir-extended-20181013.gz")
done

# median of the numbers on stdin
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# run LABEL CMD...: REPEAT runs under /usr/bin/time; keeps the last run's output in
# $OUT/LABEL.txt and prints "cpu_seconds max_rss_kib" medians.
run() {
  local label=$1; shift
  local cpus=() rss=()
  for _ in $(seq "$REPEAT"); do
    /usr/bin/time -f '%U %S %M' -o "$OUT/$label.time" "$@" >"$OUT/$label.txt"
    read -r u s m <"$OUT/$label.time"
    cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')")
    rss+=("$m")
  done
  echo "$(printf '%s\n' "${cpus[@]}" | median) $(printf '%s\n' "${rss[@]}" | median)"
}

read -r build_cpu build_rss < <(run geo-build "$BIN" build "${FILES[@]}")
read -r lookup_cpu lookup_rss < <(run geo-lookup "$BIN" lookup "$LOOKUPS" "${FILES[@]}")

{
  echo "## rampart-geo ($(date -u +%Y-%m-%d), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
  echo
  echo "Build every country's aggregated IPv4+IPv6 set from the five 2018 RIR files"
  echo "(median of $REPEAT runs; /usr/bin/time user+sys for the whole process):"
  echo
  echo '```'
  cat "$OUT/geo-build.txt"
  echo '```'
  echo
  echo "| measurement | CPU s (process) | peak RSS |"
  echo "|---|---|---|"
  echo "| load 5 files + every country's sets | $build_cpu | $((build_rss / 1024)) MiB |"
  echo "| load + $LOOKUPS lookups x3 kinds | $lookup_cpu | $((lookup_rss / 1024)) MiB |"
  echo
  echo "Lookups (last run; CPU time of the lookup loop only, random IPv4 addresses):"
  echo
  echo '```'
  cat "$OUT/geo-lookup.txt"
  echo '```'
} | tee "$OUT/geo.md"

if [ "${GEO_KERNEL:-1}" != 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench/geo.sh: the kernel measurements need root (or set GEO_KERNEL=0)" >&2
    exit 2
  fi
  "$TARGET/release/examples/geo-bench" >"$OUT/geo-kernel.txt"
  {
    echo
    echo "Kernel sets (\`geo-bench\` example of rampart-enforce, in throw-away namespaces):"
    echo
    echo '```'
    cat "$OUT/geo-kernel.txt"
    echo '```'
  } | tee -a "$OUT/geo.md"
fi
