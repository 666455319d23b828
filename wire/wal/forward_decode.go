package wal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"
)

// Decoders of the answers another node gives to requests forwarded to it,
// for the tail streams that poll a log's owner with reads. The owner is
// another Morax node, but its answers still cross a network and are
// checked like any input: a malformed one fails the stream with an error
// instead of corrupting it.

// errBadAnswer: a forwarded request's answer is not what the API promises.
var errBadAnswer = errors.New("malformed answer from the node that serves the log")

// remoteEntry is one entry of a read answer: its index, and its JSON object
// ({"index","data","key"?}) compacted onto one line, ready to be an event's
// data.
type remoteEntry struct {
	Index int64
	JSON  []byte
}

// readResponse is the answer of POST /v1/read.
type readResponse struct {
	Entries   []remoteEntry
	EndOffset int64
}

// decodeReadResponse decodes a read answer. Entries must carry an index
// and data, with indexes strictly increasing. Each entry's JSON is kept as
// sent but compacted, since an event's data line cannot hold a newline.
func decodeReadResponse(body []byte) (readResponse, error) {
	var wire struct {
		Entries   []json.RawMessage `json:"entries"`
		EndOffset *int64            `json:"end_offset"`
	}
	if err := json.Unmarshal(body, &wire); err != nil {
		return readResponse{}, fmt.Errorf("%w: read: %v", errBadAnswer, err)
	}
	if wire.EndOffset == nil || *wire.EndOffset < 0 {
		return readResponse{}, fmt.Errorf("%w: read: no valid end_offset", errBadAnswer)
	}
	out := readResponse{EndOffset: *wire.EndOffset, Entries: make([]remoteEntry, 0, len(wire.Entries))}
	for i, raw := range wire.Entries {
		var e struct {
			Index *int64  `json:"index"`
			Data  *string `json:"data"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return readResponse{}, fmt.Errorf("%w: read entry %d: %v", errBadAnswer, i, err)
		}
		if e.Index == nil || *e.Index < 0 || e.Data == nil {
			return readResponse{}, fmt.Errorf("%w: read entry %d: want an object with a non-negative index and data", errBadAnswer, i)
		}
		if i > 0 && *e.Index <= out.Entries[i-1].Index {
			return readResponse{}, fmt.Errorf("%w: read entry %d: index %d does not follow %d", errBadAnswer, i, *e.Index, out.Entries[i-1].Index)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return readResponse{}, fmt.Errorf("%w: read entry %d: %v", errBadAnswer, i, err)
		}
		out.Entries = append(out.Entries, remoteEntry{Index: *e.Index, JSON: compact.Bytes()})
	}
	return out, nil
}

// decodeEndOffset decodes the end_offset of a describe answer
// (GET /v1/logs/{name}).
func decodeEndOffset(body []byte) (int64, error) {
	var wire struct {
		EndOffset *int64 `json:"end_offset"`
	}
	if err := json.Unmarshal(body, &wire); err != nil {
		return 0, fmt.Errorf("%w: describe: %v", errBadAnswer, err)
	}
	if wire.EndOffset == nil || *wire.EndOffset < 0 {
		return 0, fmt.Errorf("%w: describe: no valid end_offset", errBadAnswer)
	}
	return *wire.EndOffset, nil
}

// decodeErrorBody turns an error answer ({"code","message"} and perhaps the
// offset bounds) back into the apiError it was made from, so a tail stream
// can send it on as an error event. An answer that is not such an object
// (a proxy's page, say) becomes an Unexpected error naming the status.
func decodeErrorBody(status int, body []byte) apiError {
	var wire struct {
		Code        *string `json:"code"`
		Message     *string `json:"message"`
		StartOffset *int64  `json:"start_offset"`
		EndOffset   *int64  `json:"end_offset"`
	}
	if status < 400 || status > 599 {
		status = fasthttp.StatusBadGateway
	}
	if err := json.Unmarshal(body, &wire); err != nil || wire.Code == nil || !validCode(*wire.Code) || wire.Message == nil {
		return newAPIError(status, CodeUnexpected, fmt.Sprintf("the node that serves the log answered HTTP %d", status))
	}
	e := newAPIError(status, *wire.Code, *wire.Message)
	if wire.StartOffset != nil && *wire.StartOffset >= 0 {
		e.startOffset = *wire.StartOffset
	}
	if wire.EndOffset != nil && *wire.EndOffset >= 0 {
		e.endOffset = *wire.EndOffset
	}
	return e
}

// validCode reports whether code looks like one of the API's error codes:
// a short PascalCase word. Anything else is not passed on, since codes are
// written into events unescaped beyond Go quoting.
func validCode(code string) bool {
	if code == "" || len(code) > 64 {
		return false
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}
