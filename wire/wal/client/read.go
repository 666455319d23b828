package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ReadOptions are the optional settings of Read.
type ReadOptions struct {
	// MaxEntries bounds the entries returned; 0 leaves it to MaxBytes.
	MaxEntries int
	// MaxBytes bounds the entry bytes returned, each entry counting 16
	// bytes on top of its data (the first entry is returned whatever its
	// size); 0 takes the server's default (1 MiB).
	MaxBytes int
	// Wait, when the read starts at the end of the log, parks it on the
	// server until an entry commits or Wait passes (long polling). The
	// server caps it (30s by default).
	Wait time.Duration
	// Partition is the Kafka topic partition to read (a WAL log has only 0).
	Partition int32
}

// ReadResult is the answer of Read.
type ReadResult struct {
	// Entries are consecutive, from the offset asked for.
	Entries []Entry `json:"entries"`
	// EndOffset is the log's end when the read was served: the offset the
	// next entry will get.
	EndOffset int64 `json:"end_offset"`
}

// Next is the offset to read from next: after the last entry returned, or
// the offset read when there were none.
func (r ReadResult) Next(from int64) int64 {
	if len(r.Entries) == 0 {
		return from
	}
	return r.Entries[len(r.Entries)-1].Index + 1
}

type readRequest struct {
	Name       string `json:"name"`
	Offset     int64  `json:"offset"`
	MaxEntries int    `json:"max_entries,omitempty"`
	MaxBytes   int    `json:"max_bytes,omitempty"`
	WaitMs     int64  `json:"wait_ms,omitempty"`
	Partition  int32  `json:"partition,omitempty"`
}

// Read returns entries from offset on. A read below the log's start or past
// its end fails with CodeOffsetOutOfRange; a read at the end returns no
// entries (after waiting, with ReadOptions.Wait).
func (c *Client) Read(ctx context.Context, name string, offset int64, opts *ReadOptions) (ReadResult, error) {
	req := readRequest{Name: name, Offset: offset}
	if opts != nil {
		req.MaxEntries, req.MaxBytes = opts.MaxEntries, opts.MaxBytes
		req.WaitMs, req.Partition = durationMillis(opts.Wait), opts.Partition
	}
	var out ReadResult
	err := c.do(ctx, http.MethodPost, c.url(nil, "v1", "read"), req, &out)
	return out, err
}

// TailOptions are the optional settings of Tail.
type TailOptions struct {
	// Partition is the Kafka topic partition to follow.
	Partition int32
	// FromEnd starts at the log's end (only new entries), ignoring the
	// offset argument.
	FromEnd bool
	// MaxEventBytes bounds one event of the stream (one entry, base64
	// encoded); default 64 MiB.
	MaxEventBytes int
}

// Tail follows a log from offset: it yields every entry as it commits, and
// keeps waiting for more until ctx ends, the loop breaks, or the stream
// fails. It yields an error at most once, as its last value: ctx's error,
// an *APIError (an unknown log, an offset out of range), ErrStreamEnded
// when the node closes the stream as it shuts down, or a transport error.
// To resume, tail again from the last Index + 1.
func (c *Client) Tail(ctx context.Context, name string, offset int64, opts *TailOptions) iter.Seq2[Entry, error] {
	var o TailOptions
	if opts != nil {
		o = *opts
	}
	return func(yield func(Entry, error) bool) {
		q := url.Values{}
		if !o.FromEnd {
			q.Set("offset", strconv.FormatInt(offset, 10))
		}
		if o.Partition != 0 {
			q.Set("partition", strconv.Itoa(int(o.Partition)))
		}
		req, err := c.newRequest(ctx, http.MethodGet, c.url(q, "v1", "logs", name, "tail"), nil)
		if err != nil {
			yield(Entry{}, err)
			return
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := c.hc.Do(req)
		if err != nil {
			yield(Entry{}, c.streamErr(ctx, err))
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			yield(Entry{}, responseError(resp))
			return
		}
		limit := o.MaxEventBytes
		if limit <= 0 {
			limit = 64 << 20
		}
		sr := sseReader{r: bufio.NewReaderSize(resp.Body, 64<<10), limit: limit}
		for {
			ev, err := sr.next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = fmt.Errorf("morax wal: tail stream closed without an end event: %w", io.ErrUnexpectedEOF)
				}
				yield(Entry{}, c.streamErr(ctx, err))
				return
			}
			switch ev.event {
			case "", "entry":
				var e Entry
				if err := json.Unmarshal(ev.data, &e); err != nil {
					yield(Entry{}, fmt.Errorf("morax wal: tail: decode entry: %w", err))
					return
				}
				if !yield(e, nil) {
					return
				}
			case "error":
				if ae := parseAPIError(ev.data, resp.StatusCode); ae != nil {
					yield(Entry{}, ae)
				} else {
					yield(Entry{}, fmt.Errorf("morax wal: tail: stream error %q", ev.data))
				}
				return
			case "end":
				yield(Entry{}, ErrStreamEnded)
				return
			}
			// Other events are for newer clients; skip them.
		}
	}
}

// streamErr prefers ctx's error when ctx ending is what broke the stream,
// so callers can tell cancellation from failure.
func (c *Client) streamErr(ctx context.Context, err error) error {
	if isContextErr(ctx, err) {
		return ctx.Err()
	}
	if errors.Is(err, ErrStreamEnded) {
		return err
	}
	return fmt.Errorf("morax wal: tail: %w", err)
}

// sseEvent is one server-sent event.
type sseEvent struct {
	event string
	data  []byte
}

// sseReader parses a text/event-stream (the subset the server sends: event,
// data and id fields, comments as keep-alives).
type sseReader struct {
	r     *bufio.Reader
	limit int
	line  []byte
}

// next returns the next event with a data field.
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data []byte
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if hasData {
				ev.data = data
				return ev, nil
			}
			ev = sseEvent{}
			continue
		}
		if line[0] == ':' {
			continue // comment: keep-alive
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.event = string(value)
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
			if len(data) > s.limit {
				return sseEvent{}, fmt.Errorf("morax wal: tail: event larger than %d bytes", s.limit)
			}
		}
	}
}

// readLine reads one line without its terminator, bounded by the limit.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		s.line = append(s.line, chunk...)
		if len(s.line) > s.limit+64 {
			return nil, fmt.Errorf("morax wal: tail: line longer than %d bytes", s.limit)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
	line := bytes.TrimSuffix(s.line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}
