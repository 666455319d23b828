package actors

import (
	"errors"
	"fmt"
)

// Errors answered to requests. The protocol layers map them to Kafka error
// codes and HTTP statuses; wrap them with %w and test them with errors.Is.
var (
	// ErrUnknownTopic means no topic has the name (or id) asked for.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrUnknownPartition means the topic has no such partition.
	ErrUnknownPartition = errors.New("unknown partition")
	// ErrTopicExists means a topic with that name already exists.
	ErrTopicExists = errors.New("topic already exists")
	// ErrNotOwner means this node does not (or no longer) own the partition;
	// the client should find the owner and retry. Retriable.
	ErrNotOwner = errors.New("partition not owned by this node")
	// ErrStorage means a flush to object storage or its metadata commit
	// failed; nothing in it was acknowledged. Retriable.
	ErrStorage = errors.New("storage unavailable")
	// ErrBackpressure means a buffer limit was hit; retry later. Retriable.
	ErrBackpressure = errors.New("buffers full")
	// ErrOffsetOutOfRange means the offset is below the log start or past
	// the end of the log.
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrCorruptRecord means a batch failed framing or CRC checks.
	ErrCorruptRecord = errors.New("corrupt record batch")
	// ErrInvalidRecord means a batch is well-formed but not acceptable (old
	// message format, control or transactional batch from a client).
	ErrInvalidRecord = errors.New("invalid record batch")
	// ErrMessageTooLarge means a batch exceeds the topic's max.message.bytes.
	ErrMessageTooLarge = errors.New("record batch too large")
	// ErrOutOfOrderSequence means an idempotent producer skipped sequence numbers.
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrProducerFenced means an idempotent producer used an epoch older
	// than the partition has seen.
	ErrProducerFenced = errors.New("invalid producer epoch")
	// ErrConflict is the kind of ConflictError.
	ErrConflict = errors.New("expected offset does not match the log end")
	// ErrOutcomeUnknown means an append's flush was being committed when
	// the partition stopped: it may or may not be stored, and was not
	// acknowledged. A retry may duplicate it unless the producer is
	// idempotent.
	ErrOutcomeUnknown = errors.New("append outcome unknown")
	// ErrShuttingDown means the node is stopping. Retriable elsewhere.
	ErrShuttingDown = errors.New("node shutting down")
	// ErrInvalidArgument means a request field is out of its domain.
	ErrInvalidArgument = errors.New("invalid argument")
)

// ConflictError answers a conditional append whose expected offset is not
// the log's end. It matches ErrConflict with errors.Is.
type ConflictError struct {
	Expected int64
	End      int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("expected offset %d but the log ends at %d", e.Expected, e.End)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
