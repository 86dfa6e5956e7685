#!/usr/bin/env bash
# Two builds of etsd side by side, to tell whether a change helps: both serve at
# once (fresh single members, 127.0.0.1 only), both get the same warm-up, then
# etcd's own benchmark tool alternates between them run by run (the order flips
# every pair), so a slow spell of a shared machine hits both alike. Prints each
# run (req/s, server CPU per request from /proc/<pid>/stat) and the means.
# Both servers are stopped by PID at the end, also on error or Ctrl-C.
#
# Usage: bash bench/pair-builds.sh DIR_A DIR_B [pairs=10] [total=30000] [clients=1000] [conns=100]
#   DIR_A, DIR_B: checkouts with dist/ built (e.g. `git worktree add /tmp/old HEAD~1`,
#   then in it: ln -s <repo>/node_modules node_modules && ln -sfn <repo>/native-bindings
#   native-bindings && npx tsc -p .). etcd's tool: scripts/build-etcd-benchmark.sh.
set -euo pipefail
A=$1; B=$2; PAIRS=${3:-10}; TOTAL=${4:-30000}; CLIENTS=${5:-1000}; CONNS=${6:-100}
TOOL=${ETCD_BENCHMARK:-${XDG_CACHE_HOME:-$HOME/.cache}/etsd/benchmark/benchmark}
[ -x "$TOOL" ] || { echo "etcd's benchmark tool not found at $TOOL: run scripts/build-etcd-benchmark.sh" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
start() { # dir name -> "pid port"
  local client peer
  client=$(free_port); peer=$(free_port)
  node "$1/dist/src/cli/etsd.js" --name "$2" --data-dir "$WORK/$2" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$2=http://127.0.0.1:$peer" > "$WORK/$2.log" 2>&1 &
  echo "$! $client"
}
read -r PA PORTA < <(start "$A" a); PIDS+=("$PA")
read -r PB PORTB < <(start "$B" b); PIDS+=("$PB")
for port in "$PORTA" "$PORTB"; do
  for _ in $(seq 100); do curl -sf "127.0.0.1:$port/health" > /dev/null && break; sleep 0.2; done
done
put() { # port total
  "$TOOL" --endpoints "127.0.0.1:$1" --conns "$CONNS" --clients "$CLIENTS" put --total "$2" \
    --val-size 256 --key-size 8 --key-space-size 100000 2>&1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for port in "$PORTA" "$PORTB"; do put "$port" 30000 > /dev/null; done
run() { # label pid port
  local c0 c1 out hz
  hz=$(getconf CLK_TCK)
  c0=$(cpu_ticks "$2"); out=$(put "$3" "$TOTAL"); c1=$(cpu_ticks "$2")
  echo "$1 $(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}') $(( (c1 - c0) * 1000000 / hz / TOTAL ))"
}
echo "run req/s cpu-us/req"
for i in $(seq "$PAIRS"); do
  if [ $((i % 2)) = 1 ]; then run A "$PA" "$PORTA"; run B "$PB" "$PORTB"; else run B "$PB" "$PORTB"; run A "$PA" "$PORTA"; fi
done | tee "$WORK/runs"
for l in A B; do
  awk -v L="$l" '$1 == L {n++; r += $2; c += $3} END {printf "%s (%s): mean %d req/s, %.1f us CPU per request over %d runs\n", L, L == "A" ? "'"$A"'" : "'"$B"'", r / n, c / n, n}' "$WORK/runs"
done
