package actors

import (
	"time"

	"github.com/morax-dev/morax/persistence/meta"
)

// Request is a message to a partition actor. Every request is answered
// exactly once through its Reply callback (unless Reply is nil).
//
// Reply callbacks run on an actor's or an I/O goroutine: they must not block
// (send to a buffered channel, or to an actor).
type Request interface {
	// fail answers the request with err; used when it cannot be delivered.
	fail(err error)
	// size is the bytes the request carries, for the node's byte budget.
	size() int
}

// Append adds record batches to a partition. They are acknowledged only once
// they are in object storage and their offsets are committed in metadata.
type Append struct {
	// Batches holds one or more Kafka RecordBatch v2 batches. The actor takes
	// ownership and rewrites offsets in place: the caller must pass a copy of
	// any connection buffer.
	Batches []byte
	// ExpectedOffset, when >= 0, makes the append conditional: it succeeds
	// only if the log's end offset (including appends not yet committed) is
	// exactly this; otherwise it fails with a *ConflictError.
	ExpectedOffset int64
	// Reply receives the outcome; nil for fire-and-forget (Kafka acks=0).
	Reply func(AppendResult)

	reserved int64   // bytes reserved from budget; released on answer
	budget   *budget // nil when nothing was reserved
	answered bool    // set by finish; an append is answered once
}

// AppendResult is the outcome of an Append.
type AppendResult struct {
	// BaseOffset is the offset of the first record appended; EndOffset is one
	// past the last (so EndOffset-BaseOffset records were appended).
	BaseOffset, EndOffset int64
	// LogAppendTime is the broker timestamp given to the records when the
	// topic uses LogAppendTime, else -1.
	LogAppendTime int64
	// LogStartOffset is the partition's first readable offset.
	LogStartOffset int64
	Err            error
}

// finish releases the append's budget and answers it. Only the goroutine
// that owns the append at that moment (its partition actor, or the sender
// before delivery) calls it.
func (a *Append) finish(r AppendResult) {
	if a.answered {
		return
	}
	a.answered = true
	if a.budget != nil {
		a.budget.release(a.reserved)
		a.budget = nil
	}
	if a.Reply != nil {
		a.Reply(r)
	}
}

func (a *Append) fail(err error) {
	a.finish(AppendResult{BaseOffset: -1, EndOffset: -1, LogAppendTime: -1, LogStartOffset: -1, Err: err})
}
func (a *Append) size() int { return len(a.Batches) }

// Fetch reads committed batches from an offset.
type Fetch struct {
	Offset int64
	// MaxBytes bounds the answer, except that the first batch is always
	// returned whole (as Kafka does), so a consumer can never get stuck.
	MaxBytes int
	// MaxWait is how long to park when no data is at Offset yet (the offset
	// is the log end). Zero answers at once.
	MaxWait time.Duration
	Reply   func(FetchResult)
}

// FetchResult carries whole record batches. The first batch may start
// before the requested offset; readers skip records below it.
type FetchResult struct {
	Batches        []byte
	HighWatermark  int64
	LogStartOffset int64
	// LeaderEpoch is the partition's lease epoch.
	LeaderEpoch int32
	// Moving says the partition answered while handing itself over (a
	// drain): an empty answer then says nothing about the log, and a
	// caller that can follow the partition (Broker.Fetch) asks its next
	// owner instead.
	Moving bool
	Err    error
}

func (f *Fetch) fail(err error) {
	if f.Reply != nil {
		f.Reply(FetchResult{HighWatermark: -1, LogStartOffset: -1, LeaderEpoch: -1, Err: err})
	}
}
func (f *Fetch) size() int { return 0 }

// Special timestamps for ListOffsets, as Kafka defines them.
const (
	// LatestTimestamp asks for the log end offset.
	LatestTimestamp int64 = -1
	// EarliestTimestamp asks for the log start offset.
	EarliestTimestamp int64 = -2
	// MaxTimestamp asks for the offset of the record with the largest timestamp.
	MaxTimestamp int64 = -3
)

// ListOffsets finds an offset by timestamp (or one of the special
// timestamps above).
type ListOffsets struct {
	Timestamp int64
	Reply     func(OffsetResult)
}

// OffsetResult answers ListOffsets. Offset is -1 (with Timestamp -1) when no
// record has a timestamp at or after the one asked for.
type OffsetResult struct {
	Offset      int64
	Timestamp   int64
	LeaderEpoch int32
	Err         error
}

func (l *ListOffsets) fail(err error) {
	if l.Reply != nil {
		l.Reply(OffsetResult{Offset: -1, Timestamp: -1, LeaderEpoch: -1, Err: err})
	}
}
func (l *ListOffsets) size() int { return 0 }

// Trim advances the log start offset (Kafka DeleteRecords, WAL trim).
// Offset -1 means the high watermark. Segments wholly below the new start
// are deleted.
type Trim struct {
	Offset int64
	Reply  func(TrimResult)
}

// TrimResult answers Trim with the new log start offset.
type TrimResult struct {
	LogStartOffset int64
	Err            error
}

func (t *Trim) fail(err error) {
	if t.Reply != nil {
		t.Reply(TrimResult{LogStartOffset: -1, Err: err})
	}
}
func (t *Trim) size() int { return 0 }

// Describe asks for a partition's live state.
type Describe struct {
	Reply func(PartitionState)
}

// PartitionState is a snapshot of a partition as its actor sees it.
type PartitionState struct {
	Topic          meta.TopicID
	Partition      int32
	LogStartOffset int64
	HighWatermark  int64
	// NextOffset includes appends not yet committed.
	NextOffset  int64
	LeaderEpoch int32
	Bytes       int64
	Producers   []meta.ProducerState
	Err         error
}

func (d *Describe) fail(err error) {
	if d.Reply != nil {
		d.Reply(PartitionState{Err: err})
	}
}
func (d *Describe) size() int { return 0 }
