#!/usr/bin/env bash
# Stops the servers dev/up.sh started and removes their data.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${MORAX_DEV_STATE:-/tmp/morax-dev}
pg_bin=${MORAX_PG_BIN:-/usr/lib/postgresql/15/bin}
if [ -f "$state/minio.pid" ]; then
	kill "$(cat "$state/minio.pid")" 2>/dev/null || true
	rm -f "$state/minio.pid"
fi
if [ -d "$state/pg/data" ]; then
	run_as=(); [ "$(id -u)" = 0 ] && run_as=(runuser -u postgres --)
	"${run_as[@]}" "$pg_bin/pg_ctl" -D "$state/pg/data" -m fast -w stop >/dev/null 2>&1 || true
fi
rm -rf "$state" "$here/.env"
echo "dev/down: stopped PostgreSQL and MinIO" >&2
