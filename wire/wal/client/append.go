package client

import (
	"context"
	"net/http"
)

// Range is a half-open range of offsets [Start, End).
type Range struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Len is the number of offsets in the range.
func (r Range) Len() int64 { return r.End - r.Start }

// Entry is one log entry.
type Entry struct {
	// Index is the entry's offset in the log.
	Index int64 `json:"index"`
	// Data is the entry's bytes (the Kafka record value).
	Data []byte `json:"data"`
	// Key is the Kafka record key; nil for entries appended through the WAL
	// API without one.
	Key []byte `json:"key,omitempty"`
}

// AppendOptions are the optional settings of AppendEntries.
type AppendOptions struct {
	// Conditional makes the append succeed only if the log's end offset is
	// ExpectedOffset; otherwise it fails with CodeConflict and the actual
	// end in APIError.EndOffset. Use it to fence out other writers: a
	// single writer that appends at the offset it expects never interleaves
	// with anyone.
	Conditional    bool
	ExpectedOffset int64
	// Partition is the Kafka topic partition to append to (a WAL log has
	// only 0).
	Partition int32
}

type appendEntry struct {
	Data []byte `json:"data"`
	Key  []byte `json:"key,omitempty"`
}

type appendRequest struct {
	Name           string        `json:"name"`
	Entries        []appendEntry `json:"entries"`
	ExpectedOffset *int64        `json:"expected_offset,omitempty"`
	Partition      int32         `json:"partition,omitempty"`
}

// Append appends entries to the log, atomically and in order, and returns
// the offsets they were given. It returns once they are durable. One call
// takes at most 65536 entries and the node's body limit (16 MiB by
// default) of JSON, in which entries grow by a third (base64).
func (c *Client) Append(ctx context.Context, name string, entries [][]byte) (Range, error) {
	es := make([]appendEntry, len(entries))
	for i, d := range entries {
		es[i].Data = d
	}
	return c.append(ctx, appendRequest{Name: name, Entries: es})
}

// AppendIf appends entries only if the log's end offset is expectedOffset
// (see AppendOptions.Conditional).
func (c *Client) AppendIf(ctx context.Context, name string, entries [][]byte, expectedOffset int64) (Range, error) {
	es := make([]appendEntry, len(entries))
	for i, d := range entries {
		es[i].Data = d
	}
	return c.append(ctx, appendRequest{Name: name, Entries: es, ExpectedOffset: &expectedOffset})
}

// AppendEntries appends entries with keys (their Index is ignored), to a
// partition, conditionally: the general form of Append.
func (c *Client) AppendEntries(ctx context.Context, name string, entries []Entry, opts AppendOptions) (Range, error) {
	req := appendRequest{Name: name, Entries: make([]appendEntry, len(entries)), Partition: opts.Partition}
	for i, e := range entries {
		req.Entries[i] = appendEntry{Data: e.Data, Key: e.Key}
	}
	if opts.Conditional {
		req.ExpectedOffset = &opts.ExpectedOffset
	}
	return c.append(ctx, req)
}

func (c *Client) append(ctx context.Context, req appendRequest) (Range, error) {
	for i := range req.Entries {
		// JSON null would decode as "no data"; send an empty entry as "".
		if req.Entries[i].Data == nil {
			req.Entries[i].Data = []byte{}
		}
	}
	var out struct {
		Offsets Range `json:"offsets"`
	}
	err := c.do(ctx, http.MethodPost, c.url(nil, "v1", "append"), req, &out)
	return out.Offsets, err
}
