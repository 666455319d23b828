package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/morax-dev/morax/actors/partitionpb"
	"github.com/morax-dev/morax/persistence/meta"
)

// The codec between the typed requests of messages.go and the protobuf
// messages nodes exchange (partitionpb). Requests are checked when decoded,
// since they arrive from the network: a malformed one is answered with
// ErrInvalidArgument, never acted on. Errors travel as a code naming their
// sentinel plus the owner's message, and are rebuilt on the sending node
// so that errors.Is and errors.As match them as they would a local error.

// maxRemoteTimeout caps the timeout a request from another node may ask
// for, so a bad one cannot pin a waiter for ever.
const maxRemoteTimeout = time.Hour

// errBadReply: another node's reply is not what the protocol promises.
var errBadReply = errors.New("malformed reply from the partition's owner")

// errorCodes maps every sentinel an owner may answer with to its code.
// Order matters where one error matches several: none do today.
var errorCodes = []struct {
	err  error
	code partitionpb.Code
}{
	{ErrNotOwner, partitionpb.Code_NOT_OWNER},
	{ErrStorage, partitionpb.Code_STORAGE},
	{ErrBackpressure, partitionpb.Code_BACKPRESSURE},
	{ErrOffsetOutOfRange, partitionpb.Code_OFFSET_OUT_OF_RANGE},
	{ErrConflict, partitionpb.Code_CONFLICT},
	{ErrOutcomeUnknown, partitionpb.Code_OUTCOME_UNKNOWN},
	{ErrInvalidRecord, partitionpb.Code_INVALID_RECORD},
	{ErrCorruptRecord, partitionpb.Code_CORRUPT_RECORD},
	{ErrMessageTooLarge, partitionpb.Code_MESSAGE_TOO_LARGE},
	{ErrOutOfOrderSequence, partitionpb.Code_OUT_OF_ORDER_SEQUENCE},
	{ErrProducerFenced, partitionpb.Code_PRODUCER_FENCED},
	{ErrShuttingDown, partitionpb.Code_SHUTTING_DOWN},
	{ErrInvalidArgument, partitionpb.Code_INVALID_ARGUMENT},
	{ErrUnknownTopic, partitionpb.Code_UNKNOWN_TOPIC},
	{ErrUnknownPartition, partitionpb.Code_UNKNOWN_PARTITION},
	{ErrTopicExists, partitionpb.Code_TOPIC_EXISTS},
	{context.DeadlineExceeded, partitionpb.Code_DEADLINE_EXCEEDED},
	{context.Canceled, partitionpb.Code_CANCELED},
}

// encodeError turns an owner's error into its wire form; nil stays nil.
func encodeError(err error) *partitionpb.Error {
	if err == nil {
		return nil
	}
	e := &partitionpb.Error{Message: err.Error()}
	var ce *ConflictError
	if errors.As(err, &ce) {
		e.Code, e.Expected, e.End = partitionpb.Code_CONFLICT, ce.Expected, ce.End
		return e
	}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			e.Code = c.code
			break
		}
	}
	return e
}

// RemoteError is an error the owner of a partition on another node
// answered with. Its text is the owner's; it unwraps to the sentinel its
// code names (a *ConflictError for a conflict), so callers test it with
// errors.Is and errors.As exactly as they would a local call's error.
type RemoteError struct {
	// Node is the id of the node that answered.
	Node string
	// Kind is the sentinel (or *ConflictError), nil for an unexpected
	// error.
	Kind    error
	message string
}

func (e *RemoteError) Error() string { return e.message }

// Unwrap returns Kind.
func (e *RemoteError) Unwrap() error { return e.Kind }

// decodeError rebuilds the error an owner answered with; nil stays nil.
func decodeError(e *partitionpb.Error, node string) error {
	if e == nil {
		return nil
	}
	re := &RemoteError{Node: node, message: e.GetMessage()}
	if re.message == "" {
		re.message = "error " + e.GetCode().String() + " from node " + node
	}
	if e.GetCode() == partitionpb.Code_CONFLICT {
		re.Kind = &ConflictError{Expected: e.GetExpected(), End: e.GetEnd()}
		return re
	}
	for _, c := range errorCodes {
		if c.code == e.GetCode() {
			re.Kind = c.err
			break
		}
	}
	return re
}

// remoteRef is a decoded PartitionRef.
type remoteRef struct {
	id   meta.TopicID
	name string
	p    int32
}

func (r remoteRef) String() string { return fmt.Sprintf("%s/%d", r.name, r.p) }

func encodeRef(t meta.Topic, p int32) *partitionpb.PartitionRef {
	return &partitionpb.PartitionRef{TopicId: t.ID[:], Topic: t.Name, Partition: p}
}

// badRequest is the error for a malformed request.
func badRequest(what string, args ...any) error {
	return fmt.Errorf("%w: request from another node: %s", ErrInvalidArgument, fmt.Sprintf(what, args...))
}

// decodeHead checks the fields every request has.
func decodeHead(ref *partitionpb.PartitionRef, timeoutNanos int64) (remoteRef, time.Duration, error) {
	if ref == nil {
		return remoteRef{}, 0, badRequest("no partition")
	}
	var r remoteRef
	if len(ref.GetTopicId()) != len(r.id) {
		return remoteRef{}, 0, badRequest("topic id of %d bytes, want %d", len(ref.GetTopicId()), len(r.id))
	}
	copy(r.id[:], ref.GetTopicId())
	r.name, r.p = ref.GetTopic(), ref.GetPartition()
	if r.p < 0 {
		return remoteRef{}, 0, badRequest("partition %d", r.p)
	}
	if timeoutNanos <= 0 {
		return remoteRef{}, 0, badRequest("timeout of %dns; every request needs a positive one", timeoutNanos)
	}
	return r, min(time.Duration(timeoutNanos), maxRemoteTimeout), nil
}

// decodeAppend decodes an AppendRequest into an Append without Reply.
func decodeAppend(m *partitionpb.AppendRequest) (remoteRef, time.Duration, *Append, error) {
	ref, timeout, err := decodeHead(m.GetRef(), m.GetTimeoutNanos())
	if err != nil {
		return ref, 0, nil, err
	}
	if len(m.GetBatches()) == 0 {
		return ref, 0, nil, badRequest("append to %s without batches", ref)
	}
	if m.GetExpectedOffset() < -1 {
		return ref, 0, nil, badRequest("append to %s expects offset %d", ref, m.GetExpectedOffset())
	}
	return ref, timeout, &Append{Batches: m.GetBatches(), ExpectedOffset: m.GetExpectedOffset()}, nil
}

// decodeFetch decodes a FetchRequest into a Fetch without Reply.
func decodeFetch(m *partitionpb.FetchRequest) (remoteRef, time.Duration, *Fetch, error) {
	ref, timeout, err := decodeHead(m.GetRef(), m.GetTimeoutNanos())
	if err != nil {
		return ref, 0, nil, err
	}
	if m.GetMaxBytes() < 0 || m.GetMaxWaitNanos() < 0 {
		return ref, 0, nil, badRequest("fetch from %s with max bytes %d and max wait %dns", ref, m.GetMaxBytes(), m.GetMaxWaitNanos())
	}
	wait := min(time.Duration(m.GetMaxWaitNanos()), timeout)
	return ref, timeout, &Fetch{Offset: m.GetOffset(), MaxBytes: int(m.GetMaxBytes()), MaxWait: wait}, nil
}

// decodeListOffsets decodes a ListOffsetsRequest into a ListOffsets
// without Reply.
func decodeListOffsets(m *partitionpb.ListOffsetsRequest) (remoteRef, time.Duration, *ListOffsets, error) {
	ref, timeout, err := decodeHead(m.GetRef(), m.GetTimeoutNanos())
	if err != nil {
		return ref, 0, nil, err
	}
	return ref, timeout, &ListOffsets{Timestamp: m.GetTimestamp()}, nil
}

// decodeTrim decodes a TrimRequest into a Trim without Reply.
func decodeTrim(m *partitionpb.TrimRequest) (remoteRef, time.Duration, *Trim, error) {
	ref, timeout, err := decodeHead(m.GetRef(), m.GetTimeoutNanos())
	if err != nil {
		return ref, 0, nil, err
	}
	return ref, timeout, &Trim{Offset: m.GetOffset()}, nil
}

// decodeDescribe decodes a DescribeRequest into a Describe without Reply.
func decodeDescribe(m *partitionpb.DescribeRequest) (remoteRef, time.Duration, *Describe, error) {
	ref, timeout, err := decodeHead(m.GetRef(), m.GetTimeoutNanos())
	if err != nil {
		return ref, 0, nil, err
	}
	return ref, timeout, &Describe{}, nil
}

func encodeAppendReply(r AppendResult) *partitionpb.AppendReply {
	return &partitionpb.AppendReply{BaseOffset: r.BaseOffset, EndOffset: r.EndOffset, LogAppendTime: r.LogAppendTime,
		LogStartOffset: r.LogStartOffset, Error: encodeError(r.Err)}
}

func encodeFetchReply(r FetchResult) *partitionpb.FetchReply {
	return &partitionpb.FetchReply{Batches: r.Batches, HighWatermark: r.HighWatermark, LogStartOffset: r.LogStartOffset,
		LeaderEpoch: r.LeaderEpoch, Error: encodeError(r.Err)}
}

func encodeOffsetReply(r OffsetResult) *partitionpb.OffsetReply {
	return &partitionpb.OffsetReply{Offset: r.Offset, Timestamp: r.Timestamp, LeaderEpoch: r.LeaderEpoch, Error: encodeError(r.Err)}
}

func encodeTrimReply(r TrimResult) *partitionpb.TrimReply {
	return &partitionpb.TrimReply{LogStartOffset: r.LogStartOffset, Error: encodeError(r.Err)}
}

func encodeDescribeReply(r PartitionState) *partitionpb.DescribeReply {
	out := &partitionpb.DescribeReply{TopicId: r.Topic[:], Partition: r.Partition, LogStartOffset: r.LogStartOffset,
		HighWatermark: r.HighWatermark, NextOffset: r.NextOffset, LeaderEpoch: r.LeaderEpoch, Bytes: r.Bytes, Error: encodeError(r.Err)}
	for _, ps := range r.Producers {
		pp := &partitionpb.ProducerState{ProducerId: ps.ProducerID, ProducerEpoch: int32(ps.ProducerEpoch), LastUpdate: ps.LastUpdate}
		for _, b := range ps.Batches {
			pp.Batches = append(pp.Batches, &partitionpb.ProducerBatch{FirstSeq: b.FirstSeq, LastSeq: b.LastSeq,
				BaseOffset: b.BaseOffset, LastOffset: b.LastOffset, Timestamp: b.Timestamp})
		}
		out.Producers = append(out.Producers, pp)
	}
	return out
}

// decodeAppendReply rebuilds an AppendResult. A success must name a
// non-empty range of offsets.
func decodeAppendReply(m *partitionpb.AppendReply, node string) AppendResult {
	r := AppendResult{BaseOffset: m.GetBaseOffset(), EndOffset: m.GetEndOffset(), LogAppendTime: m.GetLogAppendTime(),
		LogStartOffset: m.GetLogStartOffset(), Err: decodeError(m.GetError(), node)}
	if r.Err == nil && (r.BaseOffset < 0 || r.EndOffset <= r.BaseOffset) {
		// The append reached the owner and its answer makes no sense: it
		// may or may not have been applied.
		r.Err = fmt.Errorf("%w: %w: append answered with offsets [%d, %d) by node %s", ErrOutcomeUnknown, errBadReply, r.BaseOffset, r.EndOffset, node)
	}
	if r.Err != nil {
		r.BaseOffset, r.EndOffset, r.LogAppendTime, r.LogStartOffset = -1, -1, -1, -1
	}
	return r
}

// decodeFetchReply rebuilds a FetchResult.
func decodeFetchReply(m *partitionpb.FetchReply, node string) FetchResult {
	r := FetchResult{Batches: m.GetBatches(), HighWatermark: m.GetHighWatermark(), LogStartOffset: m.GetLogStartOffset(),
		LeaderEpoch: m.GetLeaderEpoch(), Err: decodeError(m.GetError(), node)}
	if r.Err == nil && (r.HighWatermark < 0 || r.LogStartOffset < 0 || r.LogStartOffset > r.HighWatermark) {
		r.Err = fmt.Errorf("%w: fetch answered with log start %d and high watermark %d by node %s", errBadReply, r.LogStartOffset, r.HighWatermark, node)
	}
	if r.Err != nil {
		r = FetchResult{HighWatermark: -1, LogStartOffset: -1, LeaderEpoch: -1, Err: r.Err}
	}
	return r
}

// decodeOffsetReply rebuilds an OffsetResult.
func decodeOffsetReply(m *partitionpb.OffsetReply, node string) OffsetResult {
	r := OffsetResult{Offset: m.GetOffset(), Timestamp: m.GetTimestamp(), LeaderEpoch: m.GetLeaderEpoch(), Err: decodeError(m.GetError(), node)}
	if r.Err != nil {
		r.Offset, r.Timestamp, r.LeaderEpoch = -1, -1, -1
	}
	return r
}

// decodeTrimReply rebuilds a TrimResult.
func decodeTrimReply(m *partitionpb.TrimReply, node string) TrimResult {
	r := TrimResult{LogStartOffset: m.GetLogStartOffset(), Err: decodeError(m.GetError(), node)}
	if r.Err == nil && r.LogStartOffset < 0 {
		r.Err = fmt.Errorf("%w: trim answered with log start %d by node %s", errBadReply, r.LogStartOffset, node)
	}
	if r.Err != nil {
		r.LogStartOffset = -1
	}
	return r
}

// decodeDescribeReply rebuilds a PartitionState.
func decodeDescribeReply(m *partitionpb.DescribeReply, node string) PartitionState {
	r := PartitionState{Partition: m.GetPartition(), LogStartOffset: m.GetLogStartOffset(), HighWatermark: m.GetHighWatermark(),
		NextOffset: m.GetNextOffset(), LeaderEpoch: m.GetLeaderEpoch(), Bytes: m.GetBytes(), Err: decodeError(m.GetError(), node)}
	if r.Err != nil {
		return PartitionState{Err: r.Err}
	}
	if len(m.GetTopicId()) != len(r.Topic) {
		return PartitionState{Err: fmt.Errorf("%w: describe answered with a topic id of %d bytes by node %s", errBadReply, len(m.GetTopicId()), node)}
	}
	copy(r.Topic[:], m.GetTopicId())
	for _, pp := range m.GetProducers() {
		ps := meta.ProducerState{ProducerID: pp.GetProducerId(), ProducerEpoch: int16(pp.GetProducerEpoch()), LastUpdate: pp.GetLastUpdate()}
		for _, b := range pp.GetBatches() {
			ps.Batches = append(ps.Batches, meta.ProducerBatch{FirstSeq: b.GetFirstSeq(), LastSeq: b.GetLastSeq(),
				BaseOffset: b.GetBaseOffset(), LastOffset: b.GetLastOffset(), Timestamp: b.GetTimestamp()})
		}
		r.Producers = append(r.Producers, ps)
	}
	return r
}
