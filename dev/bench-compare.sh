#!/usr/bin/env bash
# Measures one workload (1 KiB records, acks=all, 3 partitions, a fixed
# duration, one producer and one consumer) against franz-go's in-memory
# kfake (the reference point, run by the dev tool dev/kfake, a fresh
# cluster for each run),
# a Morax node in embedded mode and a Morax node on PostgreSQL + MinIO,
# plus the raw limits of those backends (4 MiB PUTs with 8 concurrent
# uploads; single-row PostgreSQL commits). Runs alternate in every round
# (the order reverses each round) so drift on the machine hits every
# target alike, then `morax bench report` prints medians, min–max and
# ratios, and the table replaces the bench:compare section of BENCHMARKS.md.
#
#   ROUNDS=3 DURATION=10s bash dev/bench-compare.sh
#
# Environment: ROUNDS (default 3), DURATION (per load run, default 10s),
# WARMUP (the first part of each load run left out of latencies, default
# 2s), SAT_PRODUCERS (producers of the saturating workload, default 4),
# RAW_DURATION (per raw run, default DURATION), OUT (default BENCHMARKS.md),
# BENCH_PORT_BASE (default 19000: Kafka on +92, WAL on +848, remote on +90,
# kfake on +93),
# KEEP=1 keeps the work directory (results, node logs).
#
# Needs the dev servers (it runs dev/up.sh, which is idempotent). Morax
# nodes run as separate processes, as users run them; the PostgreSQL
# node gets its own database and bucket, so it never joins a cluster with
# another dev node on the same servers. Its objects stay in that bucket
# until dev/down.sh removes the dev servers' data.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=dev/lib/bench-section.sh
. "$here/lib/bench-section.sh"
cd "$root"
rounds=${ROUNDS:-3}
duration=${DURATION:-10s}
raw_duration=${RAW_DURATION:-$duration}
out=${OUT:-$root/BENCHMARKS.md}
base=${BENCH_PORT_BASE:-19000}
kport=$((base + 92)) wport=$((base + 848)) rport=$((base + 90)) kfport=$((base + 93))
pg_bin=${MORAX_PG_BIN:-/usr/lib/postgresql/15/bin}
command_line="ROUNDS=$rounds DURATION=$duration bash dev/bench-compare.sh"

log() { printf 'bench-compare: %s\n' "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/morax-bench-compare.XXXXXX")
mkdir -p "$work/results" "$work/saturating" "$work/halfload"
node_pid=
kfake_pid=
db=

cleanup() {
	if [ -n "$node_pid" ]; then kill -TERM "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
	if [ -n "$kfake_pid" ]; then kill -TERM "$kfake_pid" 2>/dev/null || true; wait "$kfake_pid" 2>/dev/null || true; fi
	if [ -n "$db" ]; then
		"$pg_bin/psql" -q "$MORAX_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

log "building morax and dev/kfake"
go build -o "$work/morax" ./cmd/morax
go build -o "$work/kfake" ./dev/kfake
bin=$work/morax

bash "$here/up.sh"
set -a; . "$here/.env"; set +a

db=bench_$(date +%s)_$$
"$pg_bin/psql" -q "$MORAX_TEST_PG_URL" -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
pg_url=$(printf '%s' "$MORAX_TEST_PG_URL" | sed -E "s#/[^/?]+(\?|$)#/$db\1#")
bucket=bench-$(date +%s)-$$
"$here/mkbucket.sh" "$MORAX_TEST_S3_ENDPOINT" "$bucket"
log "PostgreSQL database $db, bucket $bucket, work dir $work"

# Settings every node of this script runs with: its own ports, warnings
# only (debug logging would cost the node CPU the benchmark measures).
node_env=(
	MORAX_SERVER_KAFKA_BROKER_LISTEN_ADDR=127.0.0.1:$kport
	MORAX_SERVER_WAL_BROKER_LISTEN_ADDR=127.0.0.1:$wport
	MORAX_TELEMETRY_LOG_LEVEL=warn
)
pg_env=(
	MORAX_SERVER_META_SERVICE_URL=$pg_url
	MORAX_STORAGE_BUCKET=$bucket
	MORAX_STORAGE_ENDPOINT=$MORAX_TEST_S3_ENDPOINT
	MORAX_CLUSTER_REMOTE_LISTEN_ADDR=127.0.0.1:$rport
	# One node id for every round, so a round's node never waits for the
	# previous round's (same id) to expire from the cluster.
	MORAX_CLUSTER_NODE_ID=bench-node
)

start_node() { # name round [config file]
	local name=$1 round=$2 args=()
	[ -n "${3:-}" ] && args=(--config-file "$3")
	local -a extra=()
	[ "$name" = pg+minio ] && extra=("${pg_env[@]}")
	env "${node_env[@]}" "${extra[@]}" MORAX_DATA_DIR="$work/data-$name-$round" \
		"$bin" start "${args[@]}" >"$work/node-$name-$round.log" 2>&1 &
	node_pid=$!
	for ((i = 0; i < 300; i++)); do
		if "$bin" wal health --endpoint "http://127.0.0.1:$wport" --timeout 1s >/dev/null 2>&1; then return 0; fi
		if ! kill -0 "$node_pid" 2>/dev/null; then break; fi
		sleep 0.1
	done
	log "node $name did not start; its log:"; cat "$work/node-$name-$round.log" >&2; exit 1
}

stop_node() {
	kill -TERM "$node_pid"
	wait "$node_pid" || log "node exited with status $?"
	node_pid=
}

# start_kfake starts a fresh in-memory kfake cluster (dev/kfake) in the
# background and sets kfake_addrs to its brokers, which it prints once they
# listen.
kfake_addrs=
start_kfake() { # name
	local addr_file=$work/kfake-$1.addr
	"$work/kfake" --port "$kfport" >"$addr_file" 2>"$work/kfake-$1.log" &
	kfake_pid=$!
	for ((i = 0; i < 100; i++)); do
		if [ -s "$addr_file" ]; then kfake_addrs=$(head -n 1 "$addr_file"); return 0; fi
		if ! kill -0 "$kfake_pid" 2>/dev/null; then break; fi
		sleep 0.1
	done
	log "kfake did not start; its log:"; cat "$work/kfake-$1.log" >&2; exit 1
}

stop_kfake() {
	kill -TERM "$kfake_pid"
	wait "$kfake_pid" || log "kfake exited with status $?"
	kfake_pid=
}

warmup=${WARMUP:-2s}
workload=(--record-size 1KiB --acks all --partitions 3 --producers 1 --consumers 1 --duration "$duration" --warmup "$warmup" --json)
# The saturating workload: one idempotent franz-go producer keeps one
# produce request in flight, so one producer measures the broker's round
# trip, not what it can ingest; several producers saturate it, which is
# the load object PUTs per GiB are judged at.
sat=${SAT_PRODUCERS:-4}
sat_workload=(--record-size 1KiB --acks all --partitions 3 --producers "$sat" --consumers 1 --duration "$duration" --warmup "$warmup" --json)

run_load() { # label round
	local label=$1 round=$2 file dir=results
	local -a wl=("${workload[@]}")
	case $label in *-sat) dir=saturating wl=("${sat_workload[@]}") ;; esac
	file="$work/$dir/$label-$round.json"
	log "round $round: $label"
	case $label in
	kfake | kfake-sat)
		start_kfake "$label-$round"
		"$bin" bench --target kafka --brokers "$kfake_addrs" --metrics-url none --label "$label" \
			--topic "bench-${label//+/}-r$round" "${wl[@]}" >"$file" 2>"$work/progress-$label-$round.log"
		stop_kfake
		;;
	embedded | embedded-sat)
		start_node embedded "$round-$label"
		"$bin" bench --label "$label" --brokers "127.0.0.1:$kport" --endpoint "http://127.0.0.1:$wport" \
			--topic "bench-r$round" "${wl[@]}" >"$file" 2>"$work/progress-$label-$round.log"
		stop_node
		;;
	pg+minio | pg+minio-sat)
		start_node pg+minio "$round-$label" "$here/config.toml"
		"$bin" bench --label "$label" --brokers "127.0.0.1:$kport" --endpoint "http://127.0.0.1:$wport" \
			--topic "bench-${label//+/}-r$round" "${wl[@]}" >"$file" 2>"$work/progress-$label-$round.log"
		stop_node
		;;
	raw-s3)
		MORAX_STORAGE_BUCKET=$bucket MORAX_STORAGE_ENDPOINT=$MORAX_TEST_S3_ENDPOINT \
			"$bin" bench raw-s3 --config-file "$here/config.toml" --object-size 4MiB --concurrency 8 \
			--duration "$raw_duration" --label raw-s3 --json >"$file"
		;;
	raw-s3-c1)
		MORAX_STORAGE_BUCKET=$bucket MORAX_STORAGE_ENDPOINT=$MORAX_TEST_S3_ENDPOINT \
			"$bin" bench raw-s3 --config-file "$here/config.toml" --object-size 4MiB --concurrency 1 \
			--duration "$raw_duration" --label raw-s3-c1 --json >"$work/halfload/$label-$round.json"
		;;
	kfake-half)
		start_kfake "$label-$round"
		"$bin" bench --target kafka --brokers "$kfake_addrs" --metrics-url none --label "$label" \
			--topic "bench-half-r$round" --rate "$half_rate" "${workload[@]}" \
			>"$work/halfload/$label-$round.json" 2>"$work/progress-$label-$round.log"
		stop_kfake
		;;
	pg+minio-half)
		start_node pg+minio "$round-$label" "$here/config.toml"
		"$bin" bench --label "$label" --brokers "127.0.0.1:$kport" --endpoint "http://127.0.0.1:$wport" \
			--topic "bench-half-r$round" --rate "$half_rate" "${workload[@]}" >"$work/halfload/$label-$round.json" 2>"$work/progress-$label-$round.log"
		stop_node
		;;
	raw-pg)
		"$bin" bench raw-pg --pg-url "$pg_url" --concurrency 1 --duration "$raw_duration" --label raw-pg --json >"$file"
		;;
	esac
}

order=(kfake embedded pg+minio kfake-sat embedded-sat pg+minio-sat raw-s3 raw-pg)
for ((round = 1; round <= rounds; round++)); do
	if ((round % 2 == 1)); then seq=("${order[@]}"); else seq=(); for ((i = ${#order[@]} - 1; i >= 0; i--)); do seq+=("${order[$i]}"); done; fi
	for label in "${seq[@]}"; do run_load "$label" "$round"; done
done

# Produce p99 at half load (PostgreSQL + MinIO): rate-limited runs at half
# the median records/s of the pg+minio runs above, against the budget
# linger + one 4 MiB PUT's p99 (MinIO, one upload at a time) + one
# PostgreSQL commit's p99 + 5 ms.
field() { grep -o "\"$2\": *[0-9.e+-]*" "$1" | head -1 | sed 's/.*: *//'; }
median() { sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
half_rate=$(for f in "$work"/results/pg+minio-*.json; do field "$f" records_per_sec; done | median | awk '{printf "%d", $1 / 2}')
log "half load: $half_rate records/s"
for ((round = 1; round <= rounds; round++)); do
	run_load pg+minio-half "$round"
	run_load kfake-half "$round"
	run_load raw-s3-c1 "$round"
done
linger_ms=$(awk -F'"' '/^linger *=/ {print $2}' "$here/config.toml" | sed 's/ms$//')
put_p99=$(for f in "$work"/halfload/raw-s3-c1-*.json; do field "$f" p99_ms; done | median)
pg_p99=$(for f in "$work"/results/raw-pg-*.json; do field "$f" p99_ms; done | median)
half_p50=$(for f in "$work"/halfload/pg+minio-half-*.json; do tr -d '\n' <"$f" | grep -o '"produce_latency": *{[^}]*' | grep -o '"p50_ms": *[0-9.e+-]*' | sed 's/.*: *//'; done | median)
half_p99s=$(for f in "$work"/halfload/pg+minio-half-*.json; do tr -d '\n' <"$f" | grep -o '"produce_latency": *{[^}]*' | grep -o '"p99_ms": *[0-9.e+-]*' | sed 's/.*: *//'; done | sort -g | tr '\n' ' ')
half_p99=$(printf '%s\n' $half_p99s | median)
kfake_half_p99=$(for f in "$work"/halfload/kfake-half-*.json; do tr -d '\n' <"$f" | grep -o '"produce_latency": *{[^}]*' | grep -o '"p99_ms": *[0-9.e+-]*' | sed 's/.*: *//'; done | median)
budget=$(awk -v a="$linger_ms" -v b="$put_p99" -v c="$pg_p99" 'BEGIN {printf "%.1f", a + b + c + 5}')
"$bin" bench report --reference kfake --vs-raw pg+minio "$work"/results/*.json >"$work/table.md"
"$bin" bench report --reference kfake-sat --vs-raw pg+minio-sat "$work"/saturating/*.json "$work"/results/raw-*.json >"$work/table-sat.md"

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null || echo unknown)
{
	echo "<!-- bench:compare begin (written by dev/bench-compare.sh; edits here are overwritten) -->"
	echo "## Side by side: Morax, kfake and the backends' limits"
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- Machine: $(nproc) cores ($cpu), $mem memory, $(uname -sr), $(go env GOVERSION)"
	echo "- Command: \`go tool task bench:compare\`, i.e. \`$command_line\`"
	echo "- Workload: \`morax bench ${workload[*]}\` (one producer client, one consumer client, linger 10ms, no keys, no compression), rounds: $rounds, each round running every target in turn (order reversed every other round); medians with min–max (in parentheses)."
	echo "- Targets: kfake = franz-go's kfake (1 broker, in memory, in its own process: dev/kfake); embedded = \`morax start\` with its embedded default (SQLite metadata, objects in files); pg+minio = \`morax start --config-file dev/config.toml\` (PostgreSQL 15 and MinIO from dev/up.sh, a fresh database and bucket). Each Morax run starts a fresh node process and a fresh topic."
	echo "- Backend limits: \`morax bench raw-s3 --object-size 4MiB --concurrency 8\` (the node's S3 client) and \`morax bench raw-pg --concurrency 1\` (INSERT of one row per transaction into a logged table), $raw_duration each."
	echo "- Latencies: produce = record handed to the client until acknowledged (includes time in the client's buffer); e2e = handed to the producer until consumed; records sent in the first $warmup of a run (connections, metadata, partition starts) are left out of them."
	echo
	echo "### One producer (round-trip bound)"
	echo
	cat "$work/table.md"
	echo
	echo "### Produce p99 at half load (PostgreSQL + MinIO)"
	echo
	printf -- '- pg+minio at %s records/s (half the median above), %s rounds: produce p50 %.1f ms, p99 %.1f ms (median; each round: %s).\n' "$half_rate" "$rounds" "$half_p50" "$half_p99" "$half_p99s"
	printf -- '- kfake at the same rate, same client: produce p99 %.1f ms (median), the noise floor of this machine and load generator.\n' "$kfake_half_p99"
	printf -- '- Budget: linger %s ms + 4 MiB PUT p99 %.1f ms (`morax bench raw-s3 --object-size 4MiB --concurrency 1`, median) + PostgreSQL commit p99 %.2f ms (raw-pg above) + 5 ms = %s ms.\n' "$linger_ms" "$put_p99" "$pg_p99" "$budget"
	echo
	echo "### Saturating: $sat producers"
	echo
	echo "The same workload with \`--producers $sat\`: kfake-sat, embedded-sat and pg+minio-sat are the three targets above under it. Object PUTs per GiB are judged here."
	echo
	cat "$work/table-sat.md"
	echo "<!-- bench:compare end -->"
} >"$work/section.md"

write_bench_section compare "$work/section.md" "$out"
log "wrote $out"
cat "$work/section.md"
