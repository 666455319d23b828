// Package segment implements Morax's storage format: Kafka RecordBatch v2
// bytes, exactly as they travel on the wire.
//
// A segment object is the concatenation of the record batches of one
// partition, each with its base offset rewritten by the partition actor. Since
// Kafka's CRC-32C covers only the bytes from the attributes field on, the
// actor can rewrite the base offset and partition leader epoch in place
// without touching the CRC, and a fetch can return stored bytes verbatim.
//
// The package is pure computation: no I/O, no goroutines. Functions that work
// on one batch take the batch's bytes and either read them (ParseHeader,
// Validate, Records) or patch them in place (SetBaseOffset and friends).
// Segments are assembled with a Builder, which also produces the sparse
// offset index stored in the metadata DB (EncodeIndex, DecodeIndex) and used
// for ranged reads (Lookup, Slice, CompleteBatches).
//
// Every decoder treats its input as hostile: errors wrap one of the sentinel
// errors (ErrTruncated, ErrCorrupt, ...), and no input makes a decoder panic or allocate more than a
// bounded multiple of its size (MaxDecompressedSize for compressed batches).
package segment
