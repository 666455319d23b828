#!/usr/bin/env bash
# Starts a local three-node Morax cluster in the background: node1..node3,
# each a separate `morax start --config-file dev/cluster/nodeN.toml` process,
# sharing the dev PostgreSQL database and MinIO bucket (it runs dev/up.sh,
# which is idempotent, to make sure they are up).
#
#   node   Kafka            WAL HTTP         remote (node to node)
#   node1  127.0.0.1:9092   127.0.0.1:8848   127.0.0.1:8090
#   node2  127.0.0.1:9093   127.0.0.1:8849   127.0.0.1:8091
#   node3  127.0.0.1:9094   127.0.0.1:8850   127.0.0.1:8092
#
# The binary is built once into $state/bin/morax; logs and pid files go to
# $state/cluster/ (state is MORAX_DEV_STATE, default /tmp/morax-dev). Returns
# once every node answers GET /v1/health, or fails with the log tail of the
# node that did not within 30 s. Nodes already running are left alone.
# Stop them with dev/cluster-down.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
state=${MORAX_DEV_STATE:-/tmp/morax-dev}
dir=$state/cluster
bin=$state/bin/morax
nodes=(1 2 3)

log() { printf 'dev/cluster-up: %s\n' "$*" >&2; }

wal_port() { echo $((8847 + $1)); }

# running N: whether the pid file of node N names a live morax process (a
# stale pid file, or a pid reused by another program, does not count).
running() {
	local f=$dir/node$1.pid pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "morax start" || return 1
}

bash "$here/up.sh"

mkdir -p "$dir" "$(dirname "$bin")"
log "building $bin"
(cd "$root" && go build -o "$bin" ./cmd/morax)

# The config files are the whole configuration: MORAX_* variables from the
# caller's shell (dev/.env, a test run) would otherwise override their keys,
# and a MORAX_CLUSTER_NODE_ID would give all three nodes the same id.
unset_env=()
while IFS= read -r name; do unset_env+=(-u "$name"); done < <(compgen -e | grep '^MORAX_' || true)

for n in "${nodes[@]}"; do
	if running "$n"; then
		log "node$n already running (pid $(cat "$dir/node$n.pid"))"
		continue
	fi
	mkdir -p "$dir/node$n"
	printf '\n=== %s: starting node%s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$n" >>"$dir/node$n.log"
	# setsid: the nodes outlive this script and the terminal's job control,
	# and a Ctrl-C in the shell that ran the task does not reach them.
	env "${unset_env[@]}" MORAX_DATA_DIR="$dir/node$n/data" \
		setsid nohup "$bin" start --config-file "$here/cluster/node$n.toml" \
		>>"$dir/node$n.log" 2>&1 </dev/null &
	echo $! >"$dir/node$n.pid"
done

deadline=$((SECONDS + 30))
for n in "${nodes[@]}"; do
	port=$(wal_port "$n")
	until curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/v1/health" 2>/dev/null; do
		if ! running "$n"; then
			log "node$n exited during start; last lines of $dir/node$n.log:"
			tail -n 40 "$dir/node$n.log" >&2
			exit 1
		fi
		if ((SECONDS >= deadline)); then
			log "node$n does not answer http://127.0.0.1:$port/v1/health after 30s; last lines of $dir/node$n.log:"
			tail -n 40 "$dir/node$n.log" >&2
			exit 1
		fi
		sleep 0.2
	done
	log "node$n up: Kafka 127.0.0.1:$((9091 + n)), WAL http://127.0.0.1:$port, log $dir/node$n.log"
done
log "cluster up; see it with: go run ./cmd/morax cluster status"
