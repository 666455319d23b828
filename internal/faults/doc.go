// Package faults puts failures between Morax nodes and their backends for
// the fault tests: a fault-injecting TCP proxy (toxiproxy, run in-process)
// in front of each backend, and a private PostgreSQL and a private MinIO
// that the tests may stop, kill and restart without touching the shared
// dev servers other engineers' tests use.
//
// The backends' binaries are found through MORAX_TEST_PG_BIN (the folder
// of the PostgreSQL 15 binaries) and MORAX_TEST_MINIO_BIN (the MinIO
// binary), which dev/up.sh writes to dev/.env.
package faults

// Environment variables naming the backend binaries (written by dev/up.sh).
const (
	// EnvPostgresBin names the folder holding initdb and postgres.
	EnvPostgresBin = "MORAX_TEST_PG_BIN"
	// EnvMinIOBin names the MinIO server binary.
	EnvMinIOBin = "MORAX_TEST_MINIO_BIN"
)
