package actors

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/morax-dev/morax/actors/partitionpb"
	"github.com/morax-dev/morax/persistence/meta"
)

// Every request to an owner (a partition, a group coordinator) is a typed
// message carrying a reply callback; the callback is how an owner answers
// without blocking on its caller. Call turns that into an ordinary call for
// code that may wait (WAL handlers, handlers already on their own
// goroutine). Adding an operation therefore touches the message, its
// handler in the owner, and the method below that calls it (with its
// protobuf form in partitionpb when other nodes may send it, route.go).

// Outcome is implemented by reply types that carry the owner's error, so
// that Call can return it as the call's error.
type Outcome interface{ outcome() error }

func (r AppendResult) outcome() error   { return r.Err }
func (r FetchResult) outcome() error    { return r.Err }
func (r OffsetResult) outcome() error   { return r.Err }
func (r TrimResult) outcome() error     { return r.Err }
func (r PartitionState) outcome() error { return r.Err }

// Call sends a request through send and waits for its answer or for ctx.
// The error is ctx's, or the owner's when the reply is an Outcome. A late
// answer after ctx ends is dropped (the reply channel is buffered, so the
// owner never blocks on it).
func Call[R any](ctx context.Context, what string, send func(reply func(R))) (R, error) {
	ch := make(chan R, 1)
	send(func(r R) { ch <- r })
	select {
	case r := <-ch:
		if o, ok := any(r).(Outcome); ok {
			return r, o.outcome()
		}
		return r, nil
	case <-ctx.Done():
		var zero R
		return zero, fmt.Errorf("wait for %s: %w", what, ctx.Err())
	}
}

// The methods below reach partition p of t wherever it lives: on this node
// through Send, on another over protoactor remote (route.go), retrying
// while the partition changes hands until ctx ends. The timeout another
// node is given is ctx's deadline.

// Append appends batches to partition p of t and waits for the
// acknowledgement (see Append, the message).
func (b *Broker) Append(ctx context.Context, t meta.Topic, p int32, batches []byte, expectedOffset int64) (AppendResult, error) {
	return reach(ctx, b, t, p, routed[AppendResult]{
		what:     "append",
		isAppend: true,
		// Every attempt sends the same bytes. Only a refusal is retried, and
		// a refused append is held by nobody; the fields an earlier actor
		// may have rewritten in place (base offset, leader epoch, append
		// time) are rewritten by the one that accepts it.
		local: func(_ int, _ time.Duration, reply func(AppendResult)) {
			b.Send(t, p, &Append{Batches: batches, ExpectedOffset: expectedOffset, Reply: reply})
		},
		remote: func(_ int, _, timeout time.Duration, cfg RemoteConfig) (proto.Message, error) {
			if len(batches) > cfg.MaxMessageBytes-replyHeadroom {
				return nil, fmt.Errorf("%w: %d bytes of batches; messages between nodes hold up to %d", ErrMessageTooLarge, len(batches), cfg.MaxMessageBytes-replyHeadroom)
			}
			return &partitionpb.AppendRequest{Ref: encodeRef(t, p), Batches: batches, ExpectedOffset: expectedOffset, TimeoutNanos: int64(timeout)}, nil
		},
		decode: replyDecoder(decodeAppendReply),
	})
}

// Fetch reads committed batches of partition p of t and waits for them.
// f.MaxWait counts from the call: a fetch sent again after its partition
// moved does not wait again from the start.
func (b *Broker) Fetch(ctx context.Context, t meta.Topic, p int32, f Fetch) (FetchResult, error) {
	return reach(ctx, b, t, p, routed[FetchResult]{
		what: "fetch",
		local: func(_ int, elapsed time.Duration, reply func(FetchResult)) {
			g := f
			asked := time.Now()
			g.MaxWait = max(0, f.MaxWait-elapsed)
			g.Reply = func(r FetchResult) { reply(b.handedOver(t, p, g.MaxWait, asked, r)) }
			b.Send(t, p, &g)
		},
		remote: func(_ int, elapsed, timeout time.Duration, cfg RemoteConfig) (proto.Message, error) {
			return &partitionpb.FetchRequest{Ref: encodeRef(t, p), Offset: f.Offset, MaxBytes: int32(min(f.MaxBytes, cfg.MaxMessageBytes/2)),
				MaxWaitNanos: int64(max(0, f.MaxWait-elapsed)), TimeoutNanos: int64(timeout)}, nil
		},
		decode: replyDecoder(decodeFetchReply),
	})
}

// ListOffsets looks an offset of partition p of t up by timestamp.
func (b *Broker) ListOffsets(ctx context.Context, t meta.Topic, p int32, ts int64) (OffsetResult, error) {
	return reach(ctx, b, t, p, routed[OffsetResult]{
		what: "list offsets",
		local: func(_ int, _ time.Duration, reply func(OffsetResult)) {
			b.Send(t, p, &ListOffsets{Timestamp: ts, Reply: reply})
		},
		remote: func(_ int, _, timeout time.Duration, _ RemoteConfig) (proto.Message, error) {
			return &partitionpb.ListOffsetsRequest{Ref: encodeRef(t, p), Timestamp: ts, TimeoutNanos: int64(timeout)}, nil
		},
		decode: replyDecoder(decodeOffsetReply),
	})
}

// Trim advances the log start of partition p of t.
func (b *Broker) Trim(ctx context.Context, t meta.Topic, p int32, offset int64) (TrimResult, error) {
	return reach(ctx, b, t, p, routed[TrimResult]{
		what: "trim",
		local: func(_ int, _ time.Duration, reply func(TrimResult)) {
			b.Send(t, p, &Trim{Offset: offset, Reply: reply})
		},
		remote: func(_ int, _, timeout time.Duration, _ RemoteConfig) (proto.Message, error) {
			return &partitionpb.TrimRequest{Ref: encodeRef(t, p), Offset: offset, TimeoutNanos: int64(timeout)}, nil
		},
		decode: replyDecoder(decodeTrimReply),
	})
}

// Describe returns the live state of partition p of t.
func (b *Broker) Describe(ctx context.Context, t meta.Topic, p int32) (PartitionState, error) {
	return reach(ctx, b, t, p, routed[PartitionState]{
		what: "describe",
		local: func(_ int, _ time.Duration, reply func(PartitionState)) {
			b.Send(t, p, &Describe{Reply: reply})
		},
		remote: func(_ int, _, timeout time.Duration, _ RemoteConfig) (proto.Message, error) {
			return &partitionpb.DescribeRequest{Ref: encodeRef(t, p), TimeoutNanos: int64(timeout)}, nil
		},
		decode: replyDecoder(decodeDescribeReply),
	})
}
