package wal

import (
	"context"
	"fmt"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/segment"
)

// recordOverhead bounds the bytes a record adds to its key and value in a
// v2 batch: length, attributes, timestamp and offset deltas, key and value
// lengths, header count, all varints.
const recordOverhead = 32

// handleAppend serves POST /v1/append: the entries become the records
// (value = entry data) of one or more Kafka v2 batches, appended atomically
// and acknowledged once durable.
func (s *Server) handleAppend(ctx *fasthttp.RequestCtx) {
	// decodeAppend copies every entry out of the request buffer, which
	// fasthttp reuses once this handler returns; the actor keeps the batch.
	req, err := decodeAppend(ctx.PostBody())
	if err != nil {
		s.fail(ctx, "append", err)
		return
	}
	rctx, cancel := s.requestContext(ctx, 0)
	defer cancel()
	t, err := s.topic(rctx, req.Name)
	if err != nil {
		s.fail(ctx, "append", err)
		return
	}
	res, err := s.appendEntries(rctx, t, req)
	if err != nil {
		s.fail(ctx, "append", err)
		return
	}
	body := make([]byte, 0, 64)
	body = append(body, `{"offsets":{"start":`...)
	body = strconv.AppendInt(body, res.BaseOffset, 10)
	body = append(body, `,"end":`...)
	body = strconv.AppendInt(body, res.EndOffset, 10)
	writeJSON(ctx, append(body, "}}"...))
}

// appendEntries builds the batches and appends them to t.
func (s *Server) appendEntries(ctx context.Context, t actors.Topic, req appendRequest) (actors.AppendResult, error) {
	batches, err := buildBatches(req.Entries, s.b.Options().Now().UnixMilli(), s.maxBatch(t))
	if err != nil {
		return actors.AppendResult{}, fmt.Errorf("log %q: %w", t.Name, err)
	}
	return s.b.Append(ctx, t, req.Partition, batches, req.ExpectedOffset)
}

// maxBatch is the largest record batch the log accepts (its
// max.message.bytes), and so the largest a fetch can return first.
func (s *Server) maxBatch(t actors.Topic) int {
	if st, err := s.b.TopicSettings(t); err == nil && st.MaxMessageBytes > 0 {
		return st.MaxMessageBytes
	}
	return s.b.Options().MaxMessageBytes
}

// buildBatches encodes entries as consecutive uncompressed v2 batches, each
// at most maxBatch bytes (the log's max.message.bytes), so an append of
// many entries is not refused for exceeding a per-batch limit the client
// never sees. The partition actor appends all of them atomically.
func buildBatches(entries []appendEntry, now int64, maxBatch int) ([]byte, error) {
	recs := make([]segment.Record, len(entries))
	total := 0
	for i, e := range entries {
		recs[i] = segment.Record{Timestamp: now, Key: e.Key, Value: e.Data}
		size := len(e.Data) + len(e.Key) + recordOverhead
		if segment.HeaderSize+size > maxBatch {
			return nil, fmt.Errorf("%w: entry %d is %d bytes; this log accepts entries up to %d bytes (max.message.bytes)",
				actors.ErrMessageTooLarge, i, len(e.Data)+len(e.Key), maxBatch-segment.HeaderSize-recordOverhead)
		}
		total += size
	}
	out := make([]byte, 0, total+segment.HeaderSize*(1+total/max(1, maxBatch-segment.HeaderSize)))
	start, size := 0, 0
	var err error
	for i := range recs {
		n := len(recs[i].Value) + len(recs[i].Key) + recordOverhead
		if i > start && segment.HeaderSize+size+n > maxBatch {
			if out, err = segment.AppendBatch(out, recs[start:i], segment.CodecNone); err != nil {
				return nil, fmt.Errorf("encode batch: %w", err)
			}
			start, size = i, 0
		}
		size += n
	}
	if out, err = segment.AppendBatch(out, recs[start:], segment.CodecNone); err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return out, nil
}
