#!/usr/bin/env bash
# rampart throughput benchmark: CPU time (user+sys) and peak RSS of rampart and its peers
# on the same generated 1M-line logs. See bench/README.md.
#
#   bash bench/run.sh                        # rampart, plus the peers that are installed
#   BENCH_INSTALL_PEERS=1 bash bench/run.sh  # first install fail2ban, fail2ban-rs, faketime
#
# Environment (all optional):
#   BENCH_LINES=1000000  BENCH_SEED=42  BENCH_START=2026-11-20T00:00:00Z
#   BENCH_NOW=2026-11-25T00:00:00Z   "now" for every tool (rampart --now; peers via libfaketime)
#   BENCH_REPEAT=3                   runs per rampart / fail2ban-rs command (median reported)
#   BENCH_F2B_REPEAT=1               runs per fail2ban-regex command (~45 CPU s each)
#   BENCH_SKIP_PEERS=1               only rampart
#   BENCH_SKIP_RAMPART=1             only the peers (builds only the log generator)
#   BENCH_NO_BUILD=1                 use the binaries already built, do not run cargo
#   BENCH_INSTALL_PEERS=1            apt-get install fail2ban faketime; cargo install fail2ban-rs
#   CARGO_TARGET_DIR                 where cargo builds (default: target)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

LINES=${BENCH_LINES:-1000000}
SEED=${BENCH_SEED:-42}
START=${BENCH_START:-2026-11-20T00:00:00Z}
NOW=${BENCH_NOW:-2026-11-25T00:00:00Z}
REPEAT=${BENCH_REPEAT:-3}
F2B_REPEAT=${BENCH_F2B_REPEAT:-1}
OUT=bench/out
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release
AUTH=$OUT/auth.log
ACCESS=$OUT/access.log
RESULTS=$OUT/results.md
TMP=$OUT/tmp

# Classic syslog lines carry no zone: every tool reads them as UTC.
export TZ=UTC
export LC_ALL=C

mkdir -p "$OUT" "$TMP"

say() { printf '%s\n' "$*" >&2; }
NOTES=()
note() { NOTES+=("$*"); say "note: $*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------------------------------
# Tools: GNU time (CPU to the microsecond through a python3 wait4 wrapper when python3 is
# there), optional peers, optional libfaketime.

if [ "${BENCH_INSTALL_PEERS:-0}" = 1 ]; then
    say "installing peers: fail2ban, faketime (apt-get), fail2ban-rs (cargo install)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q fail2ban faketime time
    cargo install fail2ban-rs --locked
fi

TIMER=()
if ! /usr/bin/time --version 2>&1 | grep -qi 'gnu' && command -v apt-get >/dev/null 2>&1 \
    && [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null 2>&1 || true
fi
if ! /usr/bin/time --version 2>&1 | grep -qi 'gnu'; then
    say "error: need GNU time (Debian package 'time') to measure CPU time and peak RSS"
    exit 2
fi
if command -v python3 >/dev/null 2>&1; then
    # CPU to the microsecond: os.wait4 gives the rusage of GNU time and the command it
    # waited for (GNU time's '%U %S' cut each figure to hundredths: up to 0.02 s low, a
    # tenth of a 0.2 s target). Peak RSS still comes from GNU time ('%M', the command's
    # own: a process started by python inherits python's high-water mark).
    cat >"$TMP/rusage.py" <<'PY'
import os, subprocess, sys
out, cmd = sys.argv[1], sys.argv[2:]
p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", out + ".rss"] + cmd)
_, status, r = os.wait4(p.pid, 0)
with open(out + ".rss") as f:
    rss = f.read().split()[-1]
with open(out, "w") as f:
    f.write(f"{r.ru_utime:.6f} {r.ru_stime:.6f} {rss}\n")
sys.exit(os.waitstatus_to_exitcode(status))
PY
    TIMER=(python3 "$TMP/rusage.py")
else
    TIMER=(/usr/bin/time -f '%U %S %M' -o)
fi

# Peers read syslog timestamps without a year and infer it from the clock. Run them at
# BENCH_NOW (after the last log line) so that a machine clock inside or before the log's
# time range does not change what they count.
FAKETIME_LIB=""
for lib in /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 \
    /usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1 \
    /usr/lib/faketime/libfaketime.so.1 /usr/local/lib/faketime/libfaketime.so.1; do
    if [ -e "$lib" ]; then FAKETIME_LIB=$lib; break; fi
done
NOW_FAKETIME=$(date -u -d "$NOW" '+%Y-%m-%d %H:%M:%S')
PEER_ENV=(env)
if [ -n "$FAKETIME_LIB" ]; then
    PEER_ENV=(env "LD_PRELOAD=$FAKETIME_LIB" "FAKETIME=@$NOW_FAKETIME")
fi

# ---------------------------------------------------------------------------------------
# Build.

RAMPART_OK=1
if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then
    say "not building (BENCH_NO_BUILD=1): using $BIN/rampart and $BIN/gen-logs as they are"
    if [ "${BENCH_SKIP_RAMPART:-0}" = 1 ] || [ ! -x "$BIN/rampart" ]; then RAMPART_OK=0; fi
elif [ "${BENCH_SKIP_RAMPART:-0}" = 1 ]; then
    RAMPART_OK=0
    say "building (cargo build --release -p rampart-testkit; BENCH_SKIP_RAMPART=1)"
    cargo build --release -p rampart-testkit
elif say "building (cargo build --release -p rampart -p rampart-testkit)" &&
    ! cargo build --release -p rampart -p rampart-testkit; then
    RAMPART_OK=0
    note "rampart did not build; only the peers are measured"
    cargo build --release -p rampart-testkit
fi

# ---------------------------------------------------------------------------------------
# Logs: regenerate when missing or when the generator or its parameters changed.

gen_stamp() {
    {
        printf 'lines=%s seed=%s start=%s\n' "$LINES" "$SEED" "$START"
        find crates/rampart-testkit -type f \( -name '*.rs' -o -name Cargo.toml \) -print0 \
            | sort -z | xargs -0 cat
        cat crates/rampart-core/src/time.rs
    } | sha256sum | cut -d' ' -f1
}
STAMP=$(gen_stamp)
if [ ! -s "$AUTH" ] || [ ! -s "$ACCESS" ] || [ "$(cat "$OUT/logs.stamp" 2>/dev/null)" != "$STAMP" ]; then
    say "generating $AUTH and $ACCESS ($LINES lines each, seed $SEED)"
    rm -f "$OUT/logs.stamp"
    for kind in auth access; do
        "$BIN/gen-logs" "$kind" --lines "$LINES" --seed "$SEED" --start "$START" \
            --out "$OUT/$kind.log" 2>"$OUT/$kind.summary" || { cat "$OUT/$kind.summary" >&2; exit 2; }
        cat "$OUT/$kind.summary" >&2
    done
    echo "$STAMP" >"$OUT/logs.stamp"
fi
AUTH_LINES=$(wc -l <"$AUTH")
ACCESS_LINES=$(wc -l <"$ACCESS")

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Warm the page cache so that the first measured run does not pay for the disk.
cat "$AUTH" "$ACCESS" >/dev/null

# ---------------------------------------------------------------------------------------
# Measuring.

ROWS=()

# median FILE: the median of the numbers in FILE, one per line.
median() {
    sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# measure NAME LINES REPEAT PARSER -- COMMAND...
# Runs COMMAND REPEAT times (stdout to $TMP/NAME.out, stderr to $TMP/NAME.err), then adds
# a table row with the median CPU time and the median peak RSS. PARSER is a function that
# reads the last run's output and prints the matches/decisions cell.
measure() {
    local name=$1 lines=$2 repeat=$3 parser=$4
    shift 5
    local cpu_file=$TMP/$name.cpu rss_file=$TMP/$name.rss tfile=$TMP/$name.time i
    : >"$cpu_file"
    : >"$rss_file"
    for ((i = 1; i <= repeat; i++)); do
        say "run $i/$repeat: $*"
        if ! "${TIMER[@]}" "$tfile" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"; then
            say "  failed: $(tail -n 3 "$TMP/$name.err" | tr '\n' ' ')"
            return 1
        fi
        # GNU time prefixes a line when the command fails; the numbers are on the last line.
        tail -n 1 "$tfile" | awk '{ printf "%.3f\n", $1 + $2 }' >>"$cpu_file"
        tail -n 1 "$tfile" | awk '{ print $3 }' >>"$rss_file"
        say "  $(tail -n 1 "$cpu_file") CPU s, $(tail -n 1 "$rss_file") KiB"
    done
    local cpu rss lps mib result
    cpu=$(median "$cpu_file")
    rss=$(median "$rss_file")
    lps=$(awk -v l="$lines" -v c="$cpu" 'BEGIN { if (c > 0) printf "%.0f", l / c; else print "n/a (< 0.001 s)" }')
    mib=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
    result=$("$parser" "$TMP/$name.out" "$TMP/$name.err" || true)
    # Shown without the libfaketime environment, and peers by their program name.
    local -a disp=("$@")
    if [ "${disp[0]}" = env ]; then
        disp=("${disp[@]:1}")
        while [ "${#disp[@]}" -gt 0 ] && [[ ${disp[0]} == *=* ]]; do disp=("${disp[@]:1}"); done
    fi
    if [[ ${disp[0]} == /* && ${disp[0]} != "$ROOT"/* ]]; then disp[0]=${disp[0]##*/}; fi
    local shown="${disp[*]}"
    shown=${shown//$ROOT\//}
    ROWS+=("| \`$shown\` | $(group "$lines") | $cpu | $(group "$lps") | $mib | $repeat | ${result:-} |")
}

# group N: 1234567 -> 1,234,567 (non-numbers unchanged).
group() {
    printf '%s' "$1" | sed -E ':a; s/^([0-9]+)([0-9]{3})/\1,\2/; ta'
}

# Parsers: print the matches/decisions cell from a command's stdout ($1) and stderr ($2).
parse_replay() {
    local failures bans
    failures=$(grep -ohE '^jail [^:]+: failures [0-9]+' "$1" "$2" | awk '{ s += $4 } END { if (NR) print s }')
    bans=$(grep -ohE '^summary:.* ([0-9]+) bans' "$1" "$2" | grep -oE '[0-9]+ bans' | head -n 1)
    printf '%s failures, %s' "${failures:-?}" "${bans:-? bans}"
}
parse_filter_test() {
    # One "matched" line per filter (several with a comma-separated list): their sum.
    grep -ohE '^matched +[0-9]+ failures' "$1" "$2" | awk '{ s += $2 } END { if (NR) print s " failures" }'
}
parse_f2b_regex() {
    # "Lines: 1000000 lines, 0 ignored, 160814 matched, 746856 missed"
    grep -ohE '^Lines: .*' "$1" "$2" | head -n 1 | sed -E 's/^Lines: [0-9]+ lines, //'
}
parse_f2b_rs() {
    local m u b
    m=$(awk '/^  Matches:/ { print $2; exit }' "$1")
    u=$(awk '/^  Unique IPs:/ { print $3; exit }' "$1")
    b=$(awk '/^  Would ban:/ { print $3; exit }' "$1")
    printf '%s matches, %s addresses, %s would ban' "${m:-?}" "${u:-?}" "${b:-0}"
}

# ---------------------------------------------------------------------------------------
# rampart.

if [ "$RAMPART_OK" = 1 ]; then
    measure rampart-replay "$AUTH_LINES" "$REPEAT" parse_replay -- \
        "$BIN/rampart" replay --config examples/rampart.toml --now "$NOW" "$AUTH" ||
        note "rampart replay failed (see $TMP/rampart-replay.err)"
    measure rampart-filter-sshd "$AUTH_LINES" "$REPEAT" parse_filter_test -- \
        "$BIN/rampart" filter test sshd "$AUTH" --now "$NOW" ||
        note "rampart filter test sshd failed (see $TMP/rampart-filter-sshd.err)"
    measure rampart-filter-web-scan "$ACCESS_LINES" "$REPEAT" parse_filter_test -- \
        "$BIN/rampart" filter test web-scan "$ACCESS" --now "$NOW" ||
        note "skipped rampart filter test web-scan: the command failed (no web-scan filter yet?)"
    measure rampart-filter-web-badbots "$ACCESS_LINES" "$REPEAT" parse_filter_test -- \
        "$BIN/rampart" filter test web-badbots "$ACCESS" --now "$NOW" ||
        note "rampart filter test web-badbots failed (see $TMP/rampart-filter-web-badbots.err)"
    # Every built-in filter that reads the same file, in one pass (as the daemon runs the
    # jails of one source): the prefilter keeps the others' cost to a literal scan.
    measure rampart-filter-auth-all "$AUTH_LINES" "$REPEAT" parse_filter_test -- \
        "$BIN/rampart" filter test sshd,vsftpd,proftpd "$AUTH" --now "$NOW" ||
        note "rampart filter test sshd,vsftpd,proftpd failed (see $TMP/rampart-filter-auth-all.err)"
    measure rampart-filter-sshd-aggressive "$AUTH_LINES" "$REPEAT" parse_filter_test -- \
        "$BIN/rampart" filter test "sshd[mode=aggressive]" "$AUTH" --now "$NOW" ||
        note "rampart filter test sshd[mode=aggressive] failed (see $TMP/rampart-filter-sshd-aggressive.err)"
    measure rampart-filter-access-all "$ACCESS_LINES" "$REPEAT" parse_filter_test -- \
        "$BIN/rampart" filter test web-scan,web-badbots "$ACCESS" --now "$NOW" ||
        note "rampart filter test web-scan,web-badbots failed (see $TMP/rampart-filter-access-all.err)"
    # fail2ban's own sshd filter, loaded unchanged from /etc/fail2ban (issue 5's yardstick:
    # compare with the fail2ban-regex sshd row below, same file, same run).
    if [ -f /etc/fail2ban/filter.d/sshd.conf ]; then
        measure rampart-filter-fail2ban-sshd "$AUTH_LINES" "$REPEAT" parse_filter_test -- \
            "$BIN/rampart" filter test fail2ban:sshd "$AUTH" --now "$NOW" ||
            note "rampart filter test fail2ban:sshd failed (see $TMP/rampart-filter-fail2ban-sshd.err)"
    else
        note "skipped rampart filter test fail2ban:sshd: /etc/fail2ban is not installed"
    fi
fi

# ---------------------------------------------------------------------------------------
# Peers.

if [ "${BENCH_SKIP_PEERS:-0}" != 1 ]; then
    if [ -z "$FAKETIME_LIB" ]; then
        note "libfaketime not found (Debian package faketime): peers run at the real clock; if it lies inside or before the logs' time range ($START + ~3 days), they mis-infer syslog years and their ban counts are wrong"
    fi

    if command -v fail2ban-regex >/dev/null 2>&1; then
        F2B_REGEX=$(command -v fail2ban-regex)
        measure f2b-sshd "$AUTH_LINES" "$F2B_REPEAT" parse_f2b_regex -- \
            "${PEER_ENV[@]}" "$F2B_REGEX" "$AUTH" sshd ||
            note "fail2ban-regex sshd failed (see $TMP/f2b-sshd.err)"
        measure f2b-nginx-botsearch "$ACCESS_LINES" "$F2B_REPEAT" parse_f2b_regex -- \
            "${PEER_ENV[@]}" "$F2B_REGEX" "$ACCESS" nginx-botsearch ||
            note "fail2ban-regex nginx-botsearch failed (see $TMP/f2b-nginx-botsearch.err)"
    else
        note "fail2ban: not installed (BENCH_INSTALL_PEERS=1 installs it)"
    fi

    F2B_RS=$(command -v fail2ban-rs || true)
    if [ -z "$F2B_RS" ] && [ -x "$HOME/.cargo/bin/fail2ban-rs" ]; then F2B_RS=$HOME/.cargo/bin/fail2ban-rs; fi
    if [ -n "$F2B_RS" ]; then
        # Its built-in filters, as `gen-config` prints them, with its defaults: 5 failures
        # within 10 minutes (the same policy as examples/rampart.toml). dry-run needs a
        # [global] table; it touches neither the state directory nor the firewall.
        F2B_RS_CONF=$OUT/fail2ban-rs.toml
        {
            echo '# Generated by bench/run.sh from `fail2ban-rs gen-config sshd` and `... nginx-botsearch`.'
            echo '[global]'
            echo
            "$F2B_RS" gen-config sshd
            echo 'max_retry = 5'
            echo 'find_time = "10m"'
            echo
            "$F2B_RS" gen-config nginx-botsearch
            echo 'max_retry = 5'
            echo 'find_time = "10m"'
        } >"$F2B_RS_CONF"
        measure f2brs-sshd "$AUTH_LINES" "$REPEAT" parse_f2b_rs -- \
            "${PEER_ENV[@]}" "$F2B_RS" dry-run -c "$F2B_RS_CONF" "$AUTH" -j sshd ||
            note "fail2ban-rs dry-run sshd failed (see $TMP/f2brs-sshd.err)"
        measure f2brs-nginx-botsearch "$ACCESS_LINES" "$REPEAT" parse_f2b_rs -- \
            "${PEER_ENV[@]}" "$F2B_RS" dry-run -c "$F2B_RS_CONF" "$ACCESS" -j nginx-botsearch ||
            note "fail2ban-rs dry-run nginx-botsearch failed (see $TMP/f2brs-nginx-botsearch.err)"
    else
        note "fail2ban-rs: not installed (BENCH_INSTALL_PEERS=1 installs it)"
    fi
fi

# ---------------------------------------------------------------------------------------
# Report.

version_of() { "$@" 2>/dev/null | head -n 1 || true; }
{
    echo "# rampart benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end, kernel $(uname -r)"
    echo "- rampart: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes'), $(rustc -V 2>/dev/null || echo 'rustc ?')"
    peers=$( (version_of fail2ban-regex --version; version_of "${F2B_RS:-fail2ban-rs}" --version) |
        grep -v '^$' | paste -sd, - | sed 's/,/, /g' || true)
    echo "- peers: ${peers:-none installed}; clock $([ -n "$FAKETIME_LIB" ] && echo "set to $NOW with libfaketime" || echo 'real (libfaketime not found)')"
    echo "- logs: seed $SEED, start $START; $AUTH $AUTH_LINES lines ($(du -m "$AUTH" | cut -f1) MiB), $ACCESS $ACCESS_LINES lines ($(du -m "$ACCESS" | cut -f1) MiB)"
    for s in "$OUT/auth.summary" "$OUT/access.summary"; do
        if [ -s "$s" ]; then echo "- generator: $(cat "$s")"; fi
    done
    echo "- CPU s = user + sys of the process (median of the runs; from wait4, to the microsecond, with python3); lines per CPU-second = lines / CPU s; peak RSS = max resident set size (median of the runs)"
    echo
    echo "| command | lines | CPU s (user+sys) | lines per CPU-second | peak RSS MiB | runs | matches / decisions |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    for r in "${ROWS[@]}"; do echo "$r"; done
    if [ "${#NOTES[@]}" -gt 0 ]; then
        echo
        for n in "${NOTES[@]}"; do echo "- note: $n"; done
    fi
} >"$RESULTS"
cat "$RESULTS"
