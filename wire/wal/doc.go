// Package wal serves Morax's WAL API over HTTP (fasthttp).
//
// A WAL log is a Kafka topic of kind meta.KindWAL with one partition, kept
// by the same partition actors and stored in the same format (Kafka
// RecordBatch v2, entry data as record values) as any Kafka topic
// (DESIGN.md invariant 4). So a Kafka consumer reads a WAL log entry by
// entry at the same offsets, and this API reads a Kafka topic given a
// partition.
//
// # Wire format
//
// The original protocol (morax-wal-client 0.1.x) is kept byte for byte;
// later fields are optional in requests and additive in responses, so the
// original client works unchanged. Bodies are JSON; entry data is standard
// base64 with padding.
//
//	GET  /v1/health                          200 OK, or 503 Unavailable with the reasons
//	GET  /v1/status                          {"node", "healthy", "problems": [...],
//	                                          "partitions": {"serving", "limit", "refused"}}
//	POST /v1/create  {"name", "properties"?: {"storage"?: {...}, "config"?: {...}}}
//	                                         {"name"}
//	POST /v1/append  {"name", "entries": [{"data", "key"?}], "expected_offset"?, "partition"?}
//	                                         {"offsets": {"start", "end"}}
//	POST /v1/read    {"name", "offset", "max_entries"?, "max_bytes"?, "wait_ms"?, "partition"?}
//	                                         {"entries": [{"index", "data", "key"?}], "end_offset"}
//	POST /v1/trim    {"name", "offset", "partition"?}
//	                                         {"start_offset"}
//	GET  /v1/logs?prefix=&after=&limit=&kind=
//	                                         {"logs": [{"name", "kind", "partitions", "created_at"}], "next"}
//	GET  /v1/logs/{name}?partition=          {"name", "kind", "partitions", "partition",
//	                                          "start_offset", "end_offset", "bytes", "created_at"}
//	DELETE /v1/logs/{name}                   {"name"}
//	GET  /v1/logs/{name}/tail?offset=&partition=   text/event-stream (see handleTail)
//	GET  /metrics                            Prometheus metrics, when configured
//
// Reads return entries from offset on, at most max_entries and about
// max_bytes of entry data (default 1 MiB, capped by the body limit; each
// entry counts 16 bytes on top of its data), but always the first entry
// available. A read at the log's end with wait_ms
// parks in the partition actor until an entry commits or the wait (capped
// by Config.MaxWait) passes. Records of Kafka topics come with their key;
// transaction markers are skipped (reads see uncommitted transactional
// records, as a read_uncommitted consumer does).
//
// An append with expected_offset succeeds only if the log's end offset is
// exactly that, and otherwise fails with Conflict carrying the end; a
// single writer that always appends at the offset it expects is fenced
// against any other. An append holds at most 65536 entries, each within the
// log's max.message.bytes; entries that together exceed it are split over
// several batches, appended atomically.
//
// Listing shows WAL logs only by default; kind=kafka lists Kafka topics and
// kind=all both. Read, append, trim, describe and tail work on Kafka topics
// too (with partition); delete refuses them.
//
// properties.storage on create is accepted when it names the node's own
// store (StorageIdentity; empty fields match anything, credentials are
// ignored and never logged or echoed). Other storage is refused with
// PermissionDenied unless Config.AllowPerLogStorage is set, and then with
// Unimplemented: this node keeps every log in its own store.
//
// # Errors
//
// A failed request gets a non-2xx status with {"code", "message"}; some add
// "start_offset" and "end_offset":
//
//	Unexpected        500  anything not below (the original's only code)
//	InvalidArgument   400  malformed JSON, wrong types, bad base64, missing
//	                       name, negative offsets, bad names or config
//	NotFound          404  unknown log, partition or endpoint
//	MethodNotAllowed  405  wrong HTTP method (with an Allow header)
//	PermissionDenied  403  per-log storage refused by the node's config, or
//	                       a create past the cluster's partition cap
//	                       (limits.max_cluster_partitions)
//	AlreadyExists     409  create of an existing name
//	Conflict          409  expected_offset is not the end; has end_offset
//	PayloadTooLarge   413  body over Config.MaxBodyBytes, or an entry over
//	                       the log's max.message.bytes
//	OffsetOutOfRange  416  read, tail or trim outside the log; has
//	                       start_offset and end_offset
//	TooManyRequests   429  node buffers full; retry (Retry-After: 1); or a
//	                       create past the node's creation rate
//	                       (limits.create_rate), Retry-After in seconds
//	Unimplemented     501  understood but not supported by this node
//	Unavailable       503  storage or metadata unavailable, partition
//	                       moving, node shutting down; retry. Also the
//	                       health check of a node that cannot serve (its
//	                       lease renewals or its cluster poll failing)
//	Unavailable       504  an append's outcome is unknown (its partition
//	                       stopped mid-commit, or the node that owns the log
//	                       did not answer in time): it may or may not have
//	                       been applied; read the log's end before retrying
//
// Responses of 200 bytes or more are compressed when the request's
// Accept-Encoding asks (gzip preferred); tail streams are not.
//
// # Clusters
//
// Any node serves any log. Append, read, trim and describe requests for a
// log whose partition another node owns are checked here, then run through
// the same Broker calls as local ones, which send the typed request to the
// owner's partition over protoactor remote (actors.StartRemote) and, while
// the partition changes hands, to its new owner until the request's time
// is up; long polls and tails (a long-poll fetch per poll) follow the log
// the same way. Create, list and delete are metadata operations every node
// does itself.
package wal
