#!/usr/bin/env bash
# Installs the non-Go Kafka clients the compatibility tests drive: kcat
# (Debian package) and kafkajs (npm, pinned by wire/kafka/testdata/kafkajs's
# package-lock.json). Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { printf 'dev/clients: %s\n' "$*" >&2; }

if ! command -v kcat >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ]; then
		log "kcat is missing; install it (Debian: apt-get install kcat) and run again"; exit 1
	fi
	log "installing kcat from Debian"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
fi

if ! command -v npm >/dev/null 2>&1; then
	log "npm is missing; install Node.js 18+ (Debian: apt-get install nodejs npm)"; exit 1
fi
js="$here/../wire/kafka/testdata/kafkajs"
if [ ! -d "$js/node_modules/kafkajs" ]; then
	log "installing kafkajs with npm ci"
	(cd "$js" && npm ci --no-audit --no-fund --silent)
fi
