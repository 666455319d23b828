#!/usr/bin/env bash
# Measures how a Morax node scales, in one run, against franz-go's in-memory
# kfake (the reference point, run by the dev tool dev/kfake, a fresh cluster
# for each run):
#
#  1. partition scaling: 1 KiB records, acks=all, one producer and one
#     consumer, keyed records (--keys) on 1, 16, 256 and 1024 partitions,
#     for kfake, a Morax node in embedded mode and one on PostgreSQL + MinIO;
#  2. idle cost: a node holding a topic of 1, 16, 256 or 1024 partitions
#     and no traffic, its CPU (% of one core, from /proc/PID/stat) over a
#     window and its RSS (embedded and PostgreSQL + MinIO);
#  3. record sizes: 100 B, 1 KiB and 16 KiB at 16 partitions (the 1 KiB run
#     is the one of (1) when 16 is among its partition counts);
#  4. memory: the node's RSS, sampled every 250 ms, while 5 GiB are produced
#     into it (PostgreSQL + MinIO), against its configured buffers and caches.
#
# Every Morax run starts a fresh node process (warnings-only logging) with a
# fresh data directory; a PostgreSQL + MinIO run also gets a fresh database
# (dropped after the run) and its own prefix in this run's bucket, so no run
# sees the topics of another. `morax bench report` prints the load tables
# (medians and min–max over ROUNDS); the whole section replaces the
# bench:scaling section of BENCHMARKS.md.
#
#   DURATION=10s bash dev/bench-scaling.sh
#
# Environment: DURATION (per load run, default 10s), ROUNDS (default 1; the
# target order reverses every other round), PARTITIONS (default
# "1 16 256 1024"), RECORD_SIZES (default "100B 1KiB 16KiB"),
# SIZE_PARTITIONS (default 16), IDLE_SETTLE (seconds after the topic exists,
# default 5), IDLE_WINDOW (seconds of CPU measured, default 20),
# INGEST_RECORDS and INGEST_RECORD_SIZE (default 327680 × 16KiB = 5 GiB),
# INGEST_PARTITIONS (default 16), INGEST_CONSUMERS (default 0), OUT (default
# BENCHMARKS.md), BENCH_PORT_BASE (default 19500: Kafka on +92, WAL on +848,
# remote on +90, kfake on +93), KEEP=1 keeps the work directory (results,
# node logs).
#
# Needs the dev servers (it runs dev/up.sh, which is idempotent) and Linux
# (/proc). The PostgreSQL + MinIO nodes' objects stay in this run's bucket
# until dev/down.sh removes the dev servers' data.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=dev/lib/bench-section.sh
. "$here/lib/bench-section.sh"
cd "$root"
rounds=${ROUNDS:-1}
duration=${DURATION:-10s}
read -r -a partition_counts <<<"${PARTITIONS:-1 16 256 1024}"
read -r -a record_sizes <<<"${RECORD_SIZES:-100B 1KiB 16KiB}"
size_partitions=${SIZE_PARTITIONS:-16}
idle_settle=${IDLE_SETTLE:-5}
idle_window=${IDLE_WINDOW:-20}
ingest_records=${INGEST_RECORDS:-327680}
ingest_size=${INGEST_RECORD_SIZE:-16KiB}
ingest_partitions=${INGEST_PARTITIONS:-16}
ingest_consumers=${INGEST_CONSUMERS:-0}
out=${OUT:-$root/BENCHMARKS.md}
base=${BENCH_PORT_BASE:-19500}
kport=$((base + 92)) wport=$((base + 848)) rport=$((base + 90)) kfport=$((base + 93))
pg_bin=${MORAX_PG_BIN:-/usr/lib/postgresql/15/bin}
clk_tck=$(getconf CLK_TCK)

# The command line as run, with every setting that was given.
command_line="DURATION=$duration"
for k in ROUNDS PARTITIONS RECORD_SIZES SIZE_PARTITIONS IDLE_SETTLE IDLE_WINDOW INGEST_RECORDS INGEST_RECORD_SIZE \
	INGEST_PARTITIONS INGEST_CONSUMERS BENCH_PORT_BASE; do
	if [ -n "${!k:-}" ]; then
		case ${!k} in *' '*) command_line+=" $k=\"${!k}\"" ;; *) command_line+=" $k=${!k}" ;; esac
	fi
done
command_line+=" bash dev/bench-scaling.sh"

started=$(date +%s)
log() { printf 'bench-scaling: %4ds %s\n' "$(($(date +%s) - started))" "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/morax-bench-scaling.XXXXXX")
mkdir -p "$work/results"
node_pid= node_log= node_data=
kfake_pid= kfake_addrs=
sampler_pid=
dbs=()
problems=() # failures and odd exits, listed in the section

cleanup() {
	if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; fi
	if [ -n "$node_pid" ]; then kill -TERM "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
	if [ -n "$kfake_pid" ]; then kill -TERM "$kfake_pid" 2>/dev/null || true; wait "$kfake_pid" 2>/dev/null || true; fi
	for d in "${dbs[@]}"; do
		"$pg_bin/psql" -q "$MORAX_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
	done
	if [ "${KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

log "building morax and dev/kfake"
go build -o "$work/morax" ./cmd/morax
go build -o "$work/kfake" ./dev/kfake
bin=$work/morax

bash "$here/up.sh"
set -a; . "$here/.env"; set +a

bucket=bench-scaling-$(date +%s)-$$
"$here/mkbucket.sh" "$MORAX_TEST_S3_ENDPOINT" "$bucket"
log "bucket $bucket, work dir $work"

# Settings every node of this script runs with: its own ports, warnings
# only (debug logging would cost the node CPU the benchmark measures).
node_env=(
	MORAX_SERVER_KAFKA_BROKER_LISTEN_ADDR=127.0.0.1:$kport
	MORAX_SERVER_WAL_BROKER_LISTEN_ADDR=127.0.0.1:$wport
	MORAX_CLUSTER_REMOTE_LISTEN_ADDR=127.0.0.1:$rport
	MORAX_TELEMETRY_LOG_LEVEL=warn
)

# new_db creates a fresh PostgreSQL database for one pg+minio node and sets
# pg_url to it.
pg_url= db=
new_db() {
	db=bench_scaling_$(date +%s%N)_$$
	"$pg_bin/psql" -q "$MORAX_TEST_PG_URL" -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
	dbs+=("$db")
	pg_url=$(printf '%s' "$MORAX_TEST_PG_URL" | sed -E "s#/[^/?]+(\?|$)#/$db\1#")
}

drop_db() {
	[ -n "$db" ] || return 0
	"$pg_bin/psql" -q "$MORAX_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	db=
}

start_node() { # name tag: starts a fresh node, returns 1 if it does not come up
	local name=$1 tag=$2 args=() extra=()
	if [ "$name" = pg+minio ]; then
		new_db
		args=(--config-file "$here/config.toml")
		extra=(
			MORAX_SERVER_META_SERVICE_URL=$pg_url
			MORAX_STORAGE_BUCKET=$bucket
			MORAX_STORAGE_ENDPOINT=$MORAX_TEST_S3_ENDPOINT
			MORAX_STORAGE_PREFIX=$tag/
			MORAX_CLUSTER_NODE_ID=bench-node
		)
	fi
	node_log=$work/node-$tag-$name.log node_data=$work/data-$tag-$name
	rm -rf "$node_data"
	env "${node_env[@]}" "${extra[@]}" MORAX_DATA_DIR="$node_data" \
		"$bin" start "${args[@]}" >"$node_log" 2>&1 &
	node_pid=$!
	for ((i = 0; i < 300; i++)); do
		if "$bin" wal health --endpoint "http://127.0.0.1:$wport" --timeout 1s >/dev/null 2>&1; then return 0; fi
		if ! kill -0 "$node_pid" 2>/dev/null; then break; fi
		sleep 0.1
	done
	log "node $name ($tag) did not start; its log:"; tail -n 30 "$node_log" >&2
	problems+=("node $name ($tag) did not start")
	stop_node "$tag"
	return 1
}

stop_node() { # tag: SIGTERM, then SIGKILL if it has not exited within 60 s
	local tag=$1 status=0
	[ -n "$node_pid" ] || return 0
	kill -TERM "$node_pid" 2>/dev/null || true
	for ((i = 0; i < 600; i++)); do
		kill -0 "$node_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$node_pid" 2>/dev/null; then
		log "node $tag still running 60 s after SIGTERM; killing it"
		problems+=("node $tag did not exit within 60 s of SIGTERM (killed)")
		kill -KILL "$node_pid" 2>/dev/null || true
	fi
	wait "$node_pid" || status=$?
	if [ "$status" != 0 ]; then
		log "node $tag exited with status $status"
		problems+=("node $tag exited with status $status after SIGTERM")
	fi
	node_pid=
	drop_db
	[ "${KEEP:-0}" = 1 ] || rm -rf "$node_data"
}

# start_kfake starts a fresh in-memory kfake cluster (dev/kfake) in the
# background and sets kfake_addrs to its brokers, which it prints once they
# listen; it returns 1 if the cluster does not come up.
start_kfake() { # tag
	local tag=$1 addr_file=$work/kfake-$1.addr
	"$work/kfake" --port "$kfport" >"$addr_file" 2>"$work/kfake-$tag.log" &
	kfake_pid=$!
	for ((i = 0; i < 100; i++)); do
		if [ -s "$addr_file" ]; then kfake_addrs=$(head -n 1 "$addr_file"); return 0; fi
		if ! kill -0 "$kfake_pid" 2>/dev/null; then break; fi
		sleep 0.1
	done
	log "kfake ($tag) did not start; its log:"; tail -n 30 "$work/kfake-$tag.log" >&2
	problems+=("kfake ($tag) did not start")
	kill -TERM "$kfake_pid" 2>/dev/null || true
	wait "$kfake_pid" 2>/dev/null || true
	kfake_pid=
	return 1
}

stop_kfake() { # tag
	local status=0
	[ -n "$kfake_pid" ] || return 0
	kill -TERM "$kfake_pid" 2>/dev/null || true
	wait "$kfake_pid" || status=$?
	if [ "$status" != 0 ]; then
		log "kfake $1 exited with status $status"
		problems+=("kfake $1 exited with status $status after SIGTERM")
	fi
	kfake_pid=
}

metric() { # name: a gauge or counter of the running node (empty if absent)
	curl -fsS --max-time 5 "http://127.0.0.1:$wport/metrics" 2>/dev/null |
		awk -v n="$1" '$1 == n { printf "%.0f\n", $2 + 0; exit }'
}

run_load() { # label tag file bench-args...: one load run; a failure is noted, not fatal
	local label=$1 tag=$2 file=$3; shift 3
	local target=()
	log "$label: $tag"
	if [ "$label" = kfake ]; then
		start_kfake "$tag" || return 0
		target=(--target kafka --brokers "$kfake_addrs" --metrics-url none)
	else
		start_node "$label" "$tag" || return 0
		target=(--brokers "127.0.0.1:$kport" --endpoint "http://127.0.0.1:$wport")
	fi
	if ! "$bin" bench "${target[@]}" --label "$label" --topic "$tag" "$@" --json >"$file" 2>"$work/progress-$tag-$label.log"; then
		log "$label $tag failed:"; tail -n 5 "$work/progress-$tag-$label.log" >&2
		problems+=("$label $tag: morax bench failed: $(tail -n 1 "$work/progress-$tag-$label.log")")
		rm -f "$file"
	fi
	if [ "$label" = kfake ]; then stop_kfake "$tag"; else stop_node "$tag"; fi
}

order=(kfake embedded pg+minio)
targets_of_round() { # round: the targets in this round's order
	if (($1 % 2 == 1)); then echo "${order[@]}"; else echo "${order[2]} ${order[1]} ${order[0]}"; fi
}

# --- 1 and 3: load runs ------------------------------------------------------
load_args=(--acks all --producers 1 --consumers 1 --keys --duration "$duration")
for ((round = 1; round <= rounds; round++)); do
	for p in "${partition_counts[@]}"; do
		mkdir -p "$work/results/partitions-$p"
		for label in $(targets_of_round "$round"); do
			run_load "$label" "p$p-r$round" "$work/results/partitions-$p/$label-$round.json" \
				--record-size 1KiB --partitions "$p" "${load_args[@]}"
		done
	done
	for s in "${record_sizes[@]}"; do
		mkdir -p "$work/results/size-$s"
		if [ "$s" = 1KiB ] && [ -d "$work/results/partitions-$size_partitions" ]; then
			continue # the same workload as partition scaling's run at this count
		fi
		for label in $(targets_of_round "$round"); do
			run_load "$label" "s$s-r$round" "$work/results/size-$s/$label-$round.json" \
				--record-size "$s" --partitions "$size_partitions" "${load_args[@]}"
		done
	done
done
for s in "${record_sizes[@]}"; do
	if [ "$s" = 1KiB ] && [ -d "$work/results/partitions-$size_partitions" ]; then
		cp "$work/results/partitions-$size_partitions"/*.json "$work/results/size-$s/" 2>/dev/null || true
	fi
done

# table DIR... : the `morax bench report` rows of each directory, with the
# directory's parameter (after its last '-') as a first column.
table() { # column-name dir...
	local col=$1 header= dir rows
	shift
	for dir in "$@"; do
		if ! compgen -G "$dir/*.json" >/dev/null; then continue; fi
		rows=$("$bin" bench report --reference kfake "$dir"/*.json) || { problems+=("bench report failed on $dir"); continue; }
		if [ -z "$header" ]; then
			header=$(printf '%s\n' "$rows" | grep -m1 '^| target')
			printf '| %s | %s\n' "$col" "${header#| }"
			printf '|---%s\n' "$(printf '%s\n' "$rows" | grep -m1 '^|---')"
		fi
		printf '%s\n' "$rows" | grep '^| ' | grep -v '^| target' | sed "s/^| /| ${dir##*-} | /"
	done
}

# --- 2: idle cost ------------------------------------------------------------
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; } # utime+stime
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
printf 'target\tpartitions\tactors\twait_s\tcpu_pct\trss_mib\tgoroutines\n' >"$work/idle.tsv"
for label in embedded pg+minio; do
	for p in "${partition_counts[@]}"; do
		tag=idle-p$p
		log "$label: idle cost with $p partitions"
		start_node "$label" "$tag" || continue
		if ! "$bin" bench --brokers "127.0.0.1:$kport" --endpoint "http://127.0.0.1:$wport" --topic "$tag" \
			--partitions "$p" --records 1 --consumers 0 --metrics-url none --json >"$work/results/$tag-$label.json" \
			2>"$work/progress-$tag-$label.log"; then
			problems+=("$label $tag: creating the topic failed: $(tail -n 1 "$work/progress-$tag-$label.log")")
			stop_node "$tag"; continue
		fi
		created=$(date +%s.%N)
		# At least IDLE_SETTLE seconds, and until every partition has its actor
		# (at most 60 s).
		sleep "$idle_settle"
		actors=$(metric morax_partition_actors)
		for ((i = 0; i < 600 && ${actors:-0} < p; i++)); do
			sleep 0.1; actors=$(metric morax_partition_actors)
		done
		waited=$(awk -v a="$created" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
		if [ "${actors:-0}" -lt "$p" ]; then problems+=("$label $tag: morax_partition_actors is ${actors:-absent}, not $p, after ${waited} s"); fi
		t0=$(ticks "$node_pid") w0=$(date +%s.%N)
		sleep "$idle_window"
		t1=$(ticks "$node_pid") w1=$(date +%s.%N) rss=$(rss_kib "$node_pid")
		goroutines=$(metric go_goroutines)
		awk -v l="$label" -v p="$p" -v a="${actors:--}" -v w="$waited" -v t0="$t0" -v t1="$t1" -v w0="$w0" -v w1="$w1" \
			-v hz="$clk_tck" -v rss="$rss" -v g="${goroutines:--}" \
			'BEGIN { printf "%s\t%s\t%s\t%s\t%.1f\t%.0f\t%s\n", l, p, a, w, (t1 - t0) / hz / (w1 - w0) * 100, rss / 1024, g }' \
			>>"$work/idle.tsv"
		stop_node "$tag"
	done
done

# --- 4: RSS during an ingest ---------------------------------------------------
cfg_bytes() { # key default: a [partition] size from dev/config.toml, else the default
	local v
	v=$(awk -v k="$1" '/^\[/ { sec = $0 } sec == "[partition]" && $1 == k { print $3 }' "$here/config.toml")
	echo "${v:-$2}"
}
mib=$((1 << 20))
node_buffer=$(cfg_bytes node_buffer_bytes $((256 * mib)))
block_cache=$(cfg_bytes block_cache_bytes $((256 * mib)))
tail_cache=$(cfg_bytes tail_cache_bytes $((8 * mib)))
max_buffer=$(cfg_bytes max_buffer_bytes $((16 * mib)))
ingest_ok=0
tag=ingest
log "pg+minio: ingest of $ingest_records × $ingest_size records into $ingest_partitions partitions"
mkdir -p "$work/results/ingest"
if start_node pg+minio "$tag"; then
	(
		while rss=$(rss_kib "$node_pid" 2>/dev/null) && [ -n "$rss" ]; do
			echo "$rss"; sleep 0.25
		done
	) >"$work/rss.txt" &
	sampler_pid=$!
	if "$bin" bench --brokers "127.0.0.1:$kport" --endpoint "http://127.0.0.1:$wport" --topic "$tag" --label pg+minio \
		--record-size "$ingest_size" --records "$ingest_records" --partitions "$ingest_partitions" --keys \
		--acks all --producers 1 --consumers "$ingest_consumers" --json \
		>"$work/results/ingest/pg+minio-1.json" 2>"$work/progress-$tag.log"; then
		ingest_ok=1
	else
		problems+=("pg+minio ingest: morax bench failed: $(tail -n 1 "$work/progress-$tag.log")")
		rm -f "$work/results/ingest/pg+minio-1.json"
	fi
	kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=
	hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$node_pid/status")
	owned=$(metric morax_partition_actors)
	stop_node "$tag"
fi

# --- the section ---------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null || echo unknown)
elapsed=$(($(date +%s) - started))
max_p=${partition_counts[${#partition_counts[@]} - 1]}
{
	echo "<!-- bench:scaling begin (written by dev/bench-scaling.sh; edits here are overwritten) -->"
	echo "## Scaling: partitions, record sizes, idle cost and memory"
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- Machine: $(nproc) cores ($cpu), $mem memory, $(uname -sr), $(go env GOVERSION)"
	echo "- Command: \`go tool task bench:scaling\`, i.e. \`$command_line\` (took $((elapsed / 60)) min $((elapsed % 60)) s)"
	echo "- Targets: kfake = franz-go's kfake (1 broker, in memory, in its own process: dev/kfake); embedded = \`morax start\` with its embedded default (SQLite metadata, objects in files); pg+minio = \`morax start --config-file dev/config.toml\` (PostgreSQL 15 and MinIO from dev/up.sh). Every Morax run starts a fresh node process (log level warn) with a fresh data directory, and for pg+minio a fresh database and its own prefix in a fresh bucket, so no run sees another's topics."
	echo "- Load runs: \`morax bench --record-size SIZE --partitions N ${load_args[*]} --json\` (one producer client, one consumer client reading every partition, linger 10ms, no compression), rounds: $rounds (medians with min–max in parentheses when more than one); × kfake is the ratio to kfake's median in the same row group. MiB/s counts record values and keys."
	echo "- Keys: \`--keys\` cycles through 1024 distinct keys which franz-go's default partitioner hashes (murmur2) onto the partitions, so up to 1024 partitions receive records; at N partitions about $(awk -v n="$max_p" 'BEGIN { printf "%.0f%%", (1 - (1 - 1 / n) ^ 1024) * 100 }') of $max_p get some (1 − (1 − 1/N)^1024), the rest none."
	echo "- Latencies: produce = record handed to the client until acknowledged (includes time in the client's buffer); e2e = handed to the producer until consumed. PUTs/GiB and txns/flush come from the node's metrics (none for kfake)."
	echo
	echo "### Partition scaling (1 KiB records)"
	echo
	dirs=(); for p in "${partition_counts[@]}"; do dirs+=("$work/results/partitions-$p"); done
	table partitions "${dirs[@]}"
	echo
	echo "### Record sizes ($size_partitions partitions)"
	echo
	dirs=(); for s in "${record_sizes[@]}"; do dirs+=("$work/results/size-$s"); done
	table "record size" "${dirs[@]}"
	if [ -d "$work/results/partitions-$size_partitions" ] && printf '%s\n' "${record_sizes[@]}" | grep -qx 1KiB; then
		echo
		echo "The 1KiB rows are the $size_partitions-partition runs of the table above (the same workload)."
	fi
	echo
	echo "### Idle cost per partition count"
	echo
	echo "A fresh node; \`morax bench --partitions N --records 1 --consumers 0\` creates the topic and writes one record; then at least ${idle_settle} s and until \`morax_partition_actors\` reaches N (at most 60 s more); then the node process's CPU time (utime + stime from /proc/PID/stat) over ${idle_window} s of no traffic, as % of one core, and its VmRSS at the end. Goroutines are the node's \`go_goroutines\` after the window."
	echo
	echo "| target | partitions | partition actors | s to actors | CPU % of one core | RSS MiB | goroutines |"
	echo "|---|---|---|---|---|---|---|"
	awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$work/idle.tsv"
	echo
	echo "### RSS during a $(awk -v n="$ingest_records" -v s="$(printf '%s' "$ingest_size" | sed 's/KiB$/*1024/; s/MiB$/*1048576/; s/B$//')" 'BEGIN { split(s, f, "*"); b = n * f[1] * (f[2] ? f[2] : 1); if (b >= 1073741824) printf "%.1f GiB", b / 1073741824; else printf "%.0f MiB", b / 1048576 }') ingest (pg+minio)"
	echo
	echo "\`morax bench --record-size $ingest_size --records $ingest_records --partitions $ingest_partitions --keys --acks all --producers 1 --consumers $ingest_consumers\` against a fresh pg+minio node; its VmRSS sampled every 250 ms from /proc/PID/status from start to the last acknowledgement, and its VmHWM (kernel's peak RSS) at the end.$([ "$ingest_consumers" = 0 ] && echo " No consumer runs, so the consume and e2e columns are empty (0.0).")"
	echo
	if [ "$ingest_ok" = 1 ]; then
		"$bin" bench report --reference kfake "$work/results/ingest"/*.json | grep '^|'
		echo
		owned=${owned:-$ingest_partitions}
		configured=$((node_buffer + block_cache + tail_cache * owned))
		sort -n "$work/rss.txt" | awk -v hwm="$hwm" -v conf="$configured" '
			{ v[NR] = $1 }
			END {
				med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
				peak = v[NR] > hwm ? v[NR] : hwm
				bound = conf / 1048576 + 256
				print "| samples | median RSS MiB | peak sampled RSS MiB | VmHWM MiB | configured MiB | configured + 256 MiB | peak ≤ bound |"
				print "|---|---|---|---|---|---|---|"
				printf "| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %s |\n", NR, med / 1024, v[NR] / 1024, hwm / 1024,
					conf / 1048576, bound, peak / 1024 <= bound ? "yes" : "**no**"
			}'
		echo
		echo "Configured = partition.node_buffer_bytes ($((node_buffer / mib)) MiB, all partitions' append buffers together; partition.max_buffer_bytes $((max_buffer / mib)) MiB each) + partition.block_cache_bytes ($((block_cache / mib)) MiB) + partition.tail_cache_bytes ($((tail_cache / mib)) MiB) × $owned partitions owned (morax_partition_actors after the ingest) = $((configured / mib)) MiB (defaults; dev/config.toml sets none of them). Per-connection request buffers (up to server.kafka_broker.max_frame_bytes each) and the Go runtime's own overhead are outside it."
	else
		echo "Not measured: the ingest run failed (see the notes below)."
	fi
	echo
	echo "### Notes from the runs"
	echo
	n=0
	for f in "$work"/results/*/*.json "$work"/results/*.json; do
		[ -f "$f" ] || continue
		rel=${f#"$work/results/"}
		awk -v f="${rel%.json}" '
			/^  "notes": \[/ { inside = 1; next }
			inside && /^  \]/ { inside = 0 }
			inside { sub(/^ +"/, ""); sub(/",?$/, ""); printf "- %s: %s\n", f, $0 }
		' "$f"
	done | sort -u | tee "$work/notes.md"
	n=$(wc -l <"$work/notes.md")
	for p in "${problems[@]}"; do echo "- $p"; n=$((n + 1)); done
	if [ "$n" = 0 ]; then echo "None: every run completed with no notes."; fi
	echo "<!-- bench:scaling end -->"
} >"$work/section.md"

write_bench_section scaling "$work/section.md" "$out"
log "wrote $out"
cat "$work/section.md"
