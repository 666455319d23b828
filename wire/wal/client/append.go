package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
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

// appendEntry and appendRequest are an append as encodeAppend writes it.
type appendEntry struct {
	Data []byte
	Key  []byte
}

type appendRequest struct {
	Name           string
	Entries        []appendEntry
	ExpectedOffset *int64
	Partition      int32
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
	name, err := json.Marshal(req.Name)
	if err != nil {
		return Range{}, fmt.Errorf("morax wal: encode request: %w", err)
	}
	var out struct {
		Offsets Range `json:"offsets"`
	}
	err = c.do(ctx, http.MethodPost, c.url(nil, "v1", "append"), rawJSON(encodeAppend(name, req)), &out)
	return out.Offsets, err
}

// encodeAppend writes an append body by hand: entries are most of it, and
// appending their base64 straight into one buffer is several times faster
// than encoding/json. name is the already-encoded JSON string.
func encodeAppend(name []byte, req appendRequest) []byte {
	size := 64 + len(name)
	for _, e := range req.Entries {
		size += 24 + base64.StdEncoding.EncodedLen(len(e.Data)) + base64.StdEncoding.EncodedLen(len(e.Key))
	}
	b := make([]byte, 0, size)
	b = append(b, `{"name":`...)
	b = append(b, name...)
	b = append(b, `,"entries":[`...)
	for i, e := range req.Entries {
		if i > 0 {
			b = append(b, ',')
		}
		// Always a string, never null: an empty entry is "".
		b = append(b, `{"data":"`...)
		b = base64.StdEncoding.AppendEncode(b, e.Data)
		b = append(b, '"')
		if e.Key != nil {
			b = append(b, `,"key":"`...)
			b = base64.StdEncoding.AppendEncode(b, e.Key)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if req.ExpectedOffset != nil {
		b = append(b, `,"expected_offset":`...)
		b = strconv.AppendInt(b, *req.ExpectedOffset, 10)
	}
	if req.Partition != 0 {
		b = append(b, `,"partition":`...)
		b = strconv.AppendInt(b, int64(req.Partition), 10)
	}
	return append(b, '}')
}
