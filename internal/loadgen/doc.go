// Package loadgen is the load engine behind `morax bench`: it drives a
// produce and consume workload against a Kafka-protocol broker (with
// franz-go) or a Morax WAL endpoint (with the project's Go client), measures
// throughput and latency on the client side, and reads a Morax node's
// Prometheus metrics before and after to say what the run cost in object
// store requests and metadata transactions.
//
// It also measures the raw limits of the backends a Morax node runs on
// (object PUT bandwidth, single-row commit rate) so a run can be compared
// with what the hardware allows, and aggregates saved results into the
// markdown table of BENCHMARKS.md.
//
// Everything is in one package, apart from the CLI, so that tests can run
// the engine against an in-process broker without a binary.
package loadgen
