#!/usr/bin/env bash
# One command for "how does etsd compare with the etcd I run today, on this machine?"
# Runs real etcd 3.4 (Debian's etcd-server) and etsd with the same flags on the
# same disk, workload by workload in alternation, and prints throughput and p99
# ratios; JSON and SVG percentile plots go to bench/results/. Last, etcd's own
# benchmark tool on both, server RSS after 1M keys, and watchers (memory, latency).
# Usage: npm run bench:compare [-- --duration 10s --rounds 2] [-- --tls] [-- --auth] [-- --jwt]
#   --tls: both servers serve clients over TLS (same openssl-made certificates, client
#          certificates required); --auth: root user and auth on, the load clients
#          authenticate and send the token; --jwt: auth with JWT tokens (RS256) on both.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/bin/etcd ] || { echo "needs etcd 3.4: apt-get install etcd-server etcd-client" >&2; exit 1; }
[ -f dist/bench/load/compare.js ] || npm run build
out=bench/results
mkdir -p "$out"
common=(--targets etcd,etsd --duration 8s --warmup 1s --rounds 1 --val-size 256 "$@")
# The server set-up flags, for etcd's own tool too.
setup=()
for a in "$@"; do case "$a" in --tls|--auth|--jwt) setup+=("$a") ;; esac; done

echo "### 1000 clients over 100 connections: put, txn-put, range (linearizable)"
node dist/bench/load/compare.js "${common[@]}" --workloads put,txn-put,range --conns 100 --clients 1000 \
  --key-space-size 100000 --out "$out/many-clients.json" --plot "$out/many-clients.svg"

echo "### 1000 clients over 100 connections: serializable range"
node dist/bench/load/compare.js "${common[@]}" --workloads range --consistency s --conns 100 --clients 1000 \
  --key-space-size 100000 --out "$out/range-serializable.json" --plot "$out/range-serializable.svg"

echo "### one client: put latency"
node dist/bench/load/compare.js "${common[@]}" --workloads put --conns 1 --clients 1 \
  --out "$out/one-client.json" --plot "$out/one-client.svg"

echo "### three members on this machine: put, 1000 clients over 99 connections spread over the members"
node dist/bench/load/compare.js "${common[@]}" --members 3 --workloads put --conns 99 --clients 999 \
  --key-space-size 100000 --out "$out/three-members.json" --plot "$out/three-members.svg"

echo "### Authenticate throughput: 100 clients over 10 connections, as root (bcrypt cost 10 on the server; auth on)"
node dist/bench/load/compare.js "${common[@]}" --workloads authenticate --conns 10 --clients 100 \
  --out "$out/authenticate.json" --plot "$out/authenticate.svg"

echo "### etcd's own benchmark tool (tools/benchmark of etcd 3.4, built from Debian's source package)"
if bin=$(bash scripts/build-etcd-benchmark.sh); then
  node dist/bench/load/compare.js --targets etcd,etsd --tool etcd-benchmark --benchmark-bin "$bin" --rounds 1 ${setup[@]+"${setup[@]}"} \
    --val-size 256 --out "$out/etcd-tool.json" --md "$out/etcd-tool.md"
else
  echo "(skipped: scripts/build-etcd-benchmark.sh could not build the tool; see its messages above)"
fi

echo "### memory with many keys: RSS of each server (all threads) after 1M keys (txns of 100 puts, 256 B values)"
node dist/bench/memory.js --at 1000000 --out "$out/memory.json"

echo "### watchers: server memory per watcher (100k watchers) and event delivery latency (10k watchers on 1k keys, 1000 puts/s)"
node dist/bench/watch.js --target etsd,etcd | tee "$out/watch.txt"
