#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 and a MinIO on 127.0.0.1 for development
# and tests, with their data in a fresh temporary directory, and writes
# dev/.env with the variables the tests and dev/config.toml expect.
# Stop them with dev/down.sh. Idempotent: servers already up are left alone.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=${MORAX_DEV_STATE:-/tmp/morax-dev}
pg_port=${MORAX_DEV_PG_PORT:-5432}
s3_port=${MORAX_DEV_S3_PORT:-9000}
pg_bin=${MORAX_PG_BIN:-/usr/lib/postgresql/15/bin}
minio_version=v0.0.0-20260212201848-7aac2a2c5b7c # RELEASE.2026-02-12 source build
minio_cache=${MORAX_TOOLS_CACHE:-$HOME/.cache/morax/tools}/minio-$minio_version
mkdir -p "$state"

log() { printf 'dev/up: %s\n' "$*" >&2; }

wait_for() { # name, seconds, command...
	local name=$1 secs=$2; shift 2
	for ((i = 0; i < secs * 10; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	log "$name did not become ready in ${secs}s"; return 1
}

# --- PostgreSQL ------------------------------------------------------------
start_postgres() {
	if [ ! -x "$pg_bin/postgres" ]; then
		log "PostgreSQL binaries not in $pg_bin; installing postgresql-15 from Debian"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
	fi
	if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
		log "PostgreSQL already answering on 127.0.0.1:$pg_port"; return 0
	fi
	local run_as=()
	if [ "$(id -u)" = 0 ]; then run_as=(runuser -u postgres --); fi
	local dir="$state/pg"
	rm -rf "$dir"; mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir" "$state"
	"${run_as[@]}" "$pg_bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$state/pg-initdb.log" 2>&1
	# fsync stays on: durability tests kill the broker, not PostgreSQL, but the
	# numbers we measure should be the real commit cost.
	"${run_as[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -l "$state/pg.log" -w -t 30 \
		-o "-h 127.0.0.1 -p $pg_port -k $dir -c max_connections=400 -c shared_buffers=256MB" start >/dev/null
	"$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE morax LOGIN SUPERUSER PASSWORD 'secret';
CREATE DATABASE morax_meta OWNER morax;
SQL
	log "PostgreSQL 15 on 127.0.0.1:$pg_port (data $dir)"
}

# --- MinIO -----------------------------------------------------------------
minio_binary() {
	if [ -x "$minio_cache" ]; then echo "$minio_cache"; return; fi
	log "building MinIO $minio_version with go install (several minutes on 2 cores; cached in $minio_cache)"
	local gobin; gobin=$(mktemp -d)
	GOBIN=$gobin GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$minio_version" >&2
	mkdir -p "$(dirname "$minio_cache")"
	mv "$gobin/minio" "$minio_cache"; rmdir "$gobin"
	echo "$minio_cache"
}

start_minio() {
	if curl -fsS "http://127.0.0.1:$s3_port/minio/health/live" >/dev/null 2>&1; then
		log "MinIO already answering on 127.0.0.1:$s3_port"; return 0
	fi
	local bin; bin=$(minio_binary)
	local dir="$state/minio"
	rm -rf "$dir"; mkdir -p "$dir"
	MINIO_ROOT_USER=minioadmin MINIO_ROOT_PASSWORD=minioadmin MINIO_BROWSER=off \
		MINIO_UPDATE=off MINIO_CI_CD=1 \
		setsid nohup "$bin" server "$dir/data" --address "127.0.0.1:$s3_port" --console-address "127.0.0.1:$((s3_port + 1))" \
		>"$state/minio.log" 2>&1 &
	echo $! >"$state/minio.pid"
	wait_for MinIO 60 curl -fsS "http://127.0.0.1:$s3_port/minio/health/live"
	# The bucket dev/config.toml uses; tests make their own.
	"$here/mkbucket.sh" "http://127.0.0.1:$s3_port" morax
	log "MinIO on 127.0.0.1:$s3_port (data $dir)"
}

start_postgres
start_minio

cat >"$here/.env" <<ENV
export MORAX_TEST_PG_URL=postgres://morax:secret@127.0.0.1:$pg_port/morax_meta?sslmode=disable
export MORAX_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export MORAX_TEST_S3_ACCESS_KEY=minioadmin
export MORAX_TEST_S3_SECRET_KEY=minioadmin
export MORAX_TEST_S3_REGION=us-east-1
export MORAX_TEST_PG_BIN=$pg_bin
export MORAX_TEST_MINIO_BIN=$(minio_binary)
ENV
log "wrote $here/.env"
