package actors

import (
	"context"
	"fmt"

	"github.com/morax-dev/morax/persistence/meta"
)

// Every request to an owner (a partition, a group coordinator) is a typed
// message carrying a reply callback; the callback is how an owner answers
// without blocking on its caller. Call turns that into an ordinary call for
// code that may wait (WAL handlers, handlers already on their own
// goroutine). Adding an operation therefore touches the message, its
// handler in the owner, and the method below that calls it.

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

// Append appends batches to partition p of t and waits for the
// acknowledgement (see Append, the message).
func (b *Broker) Append(ctx context.Context, t meta.Topic, p int32, batches []byte, expectedOffset int64) (AppendResult, error) {
	return Call(ctx, "append", func(reply func(AppendResult)) {
		b.Send(t, p, &Append{Batches: batches, ExpectedOffset: expectedOffset, Reply: reply})
	})
}

// Fetch reads committed batches of partition p of t and waits for them.
func (b *Broker) Fetch(ctx context.Context, t meta.Topic, p int32, f Fetch) (FetchResult, error) {
	return Call(ctx, "fetch", func(reply func(FetchResult)) {
		f.Reply = reply
		b.Send(t, p, &f)
	})
}

// ListOffsets looks an offset of partition p of t up by timestamp.
func (b *Broker) ListOffsets(ctx context.Context, t meta.Topic, p int32, ts int64) (OffsetResult, error) {
	return Call(ctx, "list offsets", func(reply func(OffsetResult)) {
		b.Send(t, p, &ListOffsets{Timestamp: ts, Reply: reply})
	})
}

// Trim advances the log start of partition p of t.
func (b *Broker) Trim(ctx context.Context, t meta.Topic, p int32, offset int64) (TrimResult, error) {
	return Call(ctx, "trim", func(reply func(TrimResult)) {
		b.Send(t, p, &Trim{Offset: offset, Reply: reply})
	})
}

// Describe returns the live state of partition p of t.
func (b *Broker) Describe(ctx context.Context, t meta.Topic, p int32) (PartitionState, error) {
	return Call(ctx, "describe", func(reply func(PartitionState)) {
		b.Send(t, p, &Describe{Reply: reply})
	})
}
