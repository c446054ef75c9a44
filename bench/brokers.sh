#!/usr/bin/env bash
# bench/brokers.sh: `eddy bench cluster` (two nodes, 1,000 subscribers of one
# channel, 500 publishes/s for 8 s) over three brokers in one sitting: one
# redis-server, a Redis Cluster (3 masters + 3 replicas, redis_cluster) and
# a nats-server with JetStream. After each run it prints the broker's work
# per publish: Redis INFO commandstats summed over the masters, NATS /varz.
# Everything runs on 127.0.0.1 from BASE_PORT (default 17100) and is
# stopped at the end. Needs redis-server, redis-cli, nats-server, jq, curl
# and EDDY (default: eddy on PATH). Results go to OUT (default bench/results).
set -euo pipefail
EDDY=${EDDY:-eddy}
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
BASE=${BASE_PORT:-17100}
OUT=${OUT:-bench/results}
SUBS=${SUBS:-1000} RATE=${RATE:-500} DURATION=${DURATION:-8s}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

"$EDDY" init --config "$dir/eddy.yaml" >/dev/null
redis() { # port [args...]
  local p=$1; shift
  mkdir -p "$dir/r$p"
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir/r$p" "$@" >"$dir/r$p.log" 2>&1 &
  pids+=($!)
  until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.05; done
}
node() { # port broker-flags...
  local p=$1; shift
  "$EDDY" serve --config "$dir/eddy.yaml" --listen "127.0.0.1:$p" --data-dir "$dir/d$p" --log-level warn "$@" >"$dir/n$p.log" 2>&1 &
  pids+=($!)
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/readyz")" = 200 ]; do sleep 0.1; done
}
run() { # name port1 port2
  local name=$1 a=$2 b=$3
  "$EDDY" bench cluster --config "$dir/eddy.yaml" --ws "ws://127.0.0.1:$a/ws" --ws "ws://127.0.0.1:$b/ws" \
    --api "http://127.0.0.1:$a" --api "http://127.0.0.1:$b" --subscribers "$SUBS" --rate "$RATE" --duration "$DURATION" \
    -q --json "$OUT/$name.json"
}
redis_calls() { # ports...: total calls, and the top commands
  for p in "$@"; do redis-cli -p "$p" info commandstats; done |
    awk -F'[:,=]' '/^cmdstat_/ {c[$1]+=$3; u[$1]+=$5; t+=$3} END {printf "%d", t; for (k in c) printf " %s=%d", substr(k,9), c[k]; printf " (evalsha %.1f us each in Redis)\n", u["cmdstat_evalsha"]/c["cmdstat_evalsha"]}'
}
per_publish() { # name calls-line
  local sent; sent=$(jq .sent "$OUT/$1.json")
  echo "$1: $sent publishes; broker commands: $2; per publish: $(echo "$2" | awk -v s="$sent" '{printf "%.2f", $1/s}')"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# One redis-server.
redis $((BASE))
node $((BASE+20)) --redis "redis://127.0.0.1:$((BASE))/0"
node $((BASE+21)) --redis "redis://127.0.0.1:$((BASE))/0"
redis-cli -p $((BASE)) config resetstat >/dev/null
run brokers-redis-single $((BASE+20)) $((BASE+21))
per_publish brokers-redis-single "$(redis_calls $((BASE)))"

# A Redis Cluster: 3 masters, 3 replicas.
ports=()
for i in 1 2 3 4 5 6; do
  redis $((BASE+i)) --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000
  ports+=("127.0.0.1:$((BASE+i))")
done
redis-cli --cluster create "${ports[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
until redis-cli -p $((BASE+1)) cluster info | grep -q cluster_state:ok; do sleep 0.1; done
node $((BASE+22)) --redis-cluster --redis "redis://127.0.0.1:$((BASE+1))"
node $((BASE+23)) --redis-cluster --redis "redis://127.0.0.1:$((BASE+2))"
masters=$(redis-cli -p $((BASE+1)) cluster nodes | awk '/master/ {split($2,a,"[:@]"); print a[2]}')
for p in $masters; do redis-cli -p "$p" config resetstat >/dev/null; done
run brokers-redis-cluster $((BASE+22)) $((BASE+23))
# shellcheck disable=SC2086
per_publish brokers-redis-cluster "$(redis_calls $masters)"

# One nats-server with JetStream.
"$NATS_SERVER" -a 127.0.0.1 -p $((BASE+10)) -m $((BASE+11)) -js -sd "$dir/nats" >"$dir/nats.log" 2>&1 &
pids+=($!)
until curl -s "http://127.0.0.1:$((BASE+11))/healthz" | grep -q ok; do sleep 0.1; done
node $((BASE+24)) --nats "nats://127.0.0.1:$((BASE+10))"
node $((BASE+25)) --nats "nats://127.0.0.1:$((BASE+10))"
v0=$(curl -s "http://127.0.0.1:$((BASE+11))/varz")
run brokers-nats $((BASE+24)) $((BASE+25))
v1=$(curl -s "http://127.0.0.1:$((BASE+11))/varz")
in=$(( $(echo "$v1" | jq .in_msgs) - $(echo "$v0" | jq .in_msgs) ))
out=$(( $(echo "$v1" | jq .out_msgs) - $(echo "$v0" | jq .out_msgs) ))
per_publish brokers-nats "$in messages in (and $out out)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
