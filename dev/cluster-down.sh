#!/usr/bin/env bash
# Stops the nodes dev/cluster-up.sh started: SIGTERM to each (a graceful
# stop, which releases the node's leases at once), then waits for every one
# to exit. A node still running after 30 s is reported and killed.
# Logs stay in $state/cluster/ (state is MORAX_DEV_STATE, default
# /tmp/morax-dev); dev/down.sh removes them with the servers' data.
set -uo pipefail

state=${MORAX_DEV_STATE:-/tmp/morax-dev}
dir=$state/cluster
nodes=(1 2 3)

log() { printf 'dev/cluster-down: %s\n' "$*" >&2; }

# alive PID: the pid is a live morax node (not a pid reused by another
# program since the pid file was written).
alive() {
	kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q "morax start"
}

declare -A pids=()
for n in "${nodes[@]}"; do
	f=$dir/node$n.pid
	[ -f "$f" ] || continue
	pid=$(cat "$f")
	if [ -n "$pid" ] && alive "$pid"; then
		kill -TERM "$pid" && pids[$n]=$pid
	else
		rm -f "$f"
	fi
done
if [ ${#pids[@]} -eq 0 ]; then
	log "no cluster node running"
	exit 0
fi

# The nodes are not children of this shell, so `wait` cannot be used: poll.
deadline=$((SECONDS + 30))
status=0
for n in "${!pids[@]}"; do
	pid=${pids[$n]}
	while alive "$pid"; do
		if ((SECONDS >= deadline)); then
			log "node$n (pid $pid) still running 30s after SIGTERM; killing it. Last lines of $dir/node$n.log:"
			tail -n 20 "$dir/node$n.log" >&2
			kill -KILL "$pid" 2>/dev/null
			status=1
			break
		fi
		sleep 0.1
	done
	rm -f "$dir/node$n.pid"
	log "node$n stopped"
done
exit $status
