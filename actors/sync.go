package actors

import (
	"context"

	"github.com/morax-dev/morax/persistence/meta"
)

// call sends a request built around a reply callback and waits for its
// answer or for ctx. A late answer after ctx ends is dropped.
func call[R any](ctx context.Context, b *Broker, t meta.Topic, p int32, build func(reply func(R)) Request) (R, error) {
	ch := make(chan R, 1)
	b.Send(t, p, build(func(r R) { ch <- r }))
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
}

// AppendWait appends and waits for the acknowledgement. The result's Err
// holds the broker's answer; the returned error is only ctx's.
func (b *Broker) AppendWait(ctx context.Context, t meta.Topic, p int32, batches []byte, expectedOffset int64) (AppendResult, error) {
	return call(ctx, b, t, p, func(reply func(AppendResult)) Request {
		return &Append{Batches: batches, ExpectedOffset: expectedOffset, Reply: reply}
	})
}

// FetchWait fetches and waits for the answer.
func (b *Broker) FetchWait(ctx context.Context, t meta.Topic, p int32, f Fetch) (FetchResult, error) {
	return call(ctx, b, t, p, func(reply func(FetchResult)) Request {
		f.Reply = reply
		return &f
	})
}

// ListOffsetsWait looks an offset up by timestamp and waits for the answer.
func (b *Broker) ListOffsetsWait(ctx context.Context, t meta.Topic, p int32, ts int64) (OffsetResult, error) {
	return call(ctx, b, t, p, func(reply func(OffsetResult)) Request {
		return &ListOffsets{Timestamp: ts, Reply: reply}
	})
}

// TrimWait advances the log start and waits for the answer.
func (b *Broker) TrimWait(ctx context.Context, t meta.Topic, p int32, offset int64) (TrimResult, error) {
	return call(ctx, b, t, p, func(reply func(TrimResult)) Request {
		return &Trim{Offset: offset, Reply: reply}
	})
}

// DescribeWait returns a partition's live state.
func (b *Broker) DescribeWait(ctx context.Context, t meta.Topic, p int32) (PartitionState, error) {
	return call(ctx, b, t, p, func(reply func(PartitionState)) Request {
		return &Describe{Reply: reply}
	})
}
