// Package actors holds the broker's stateful core: one actor per topic
// partition (its append buffer, next offset, idempotent-producer windows,
// tail cache and parked readers), a registry actor per node that starts and
// stops them, and the Broker facade the protocol layers (wire/kafka,
// wire/wal) call.
//
// Requests are plain Go structs carrying a Reply callback, never protoactor
// futures: the hot path allocates no future per message. Owners are reached
// only through their mailbox (mailbox.go), which is named, bounded and
// counted in metrics, and answers every request exactly once: a request
// sent to an owner that has stopped is refused by the mailbox itself.
// Call (call.go) turns a request into an ordinary call for code that waits.
//
// Slow work (object uploads, metadata commits, cold reads) runs on
// goroutines outside the actor and reports back as messages, so a
// partition's mailbox never waits on I/O.
//
// This package knows nothing of Kafka frames or HTTP: it never imports kmsg
// or fasthttp. Record batches are Kafka RecordBatch v2 bytes because that is
// the storage format (persistence/segment), whichever protocol wrote them.
package actors
