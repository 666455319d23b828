// Package client is the Go client of the Morax WAL HTTP API.
//
// It imports only the standard library, so a program that talks to Morax
// pulls in none of the broker's dependencies (an architecture test keeps it
// that way).
//
// A WAL log is an ordered sequence of entries (opaque bytes), each with a
// dense offset starting at 0. Appends are acknowledged only once the
// entries are in object storage and their offsets committed, so an entry
// whose Append returned is durable.
//
// The same log is a single-partition Kafka topic: a Kafka consumer sees
// each entry as a record value at the same offset, and a Kafka topic can be
// read through this client by naming its partition (ReadOptions.Partition).
//
// Every call takes a context. Errors the server reports come back as
// *APIError (with its Code, e.g. CodeNotFound, CodeConflict); a response
// that is not an API error (a proxy's HTML page, say) comes back as
// *StatusError; transport failures are returned as they are, wrapped.
package client
