package wal

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/actors"
)

// Request decoding. Every decoder takes the request body (or query) as
// fasthttp hands it over and returns values that share no memory with it:
// encoding/json copies strings, and entry data is base64-decoded into fresh
// slices. That is what lets an append's bytes travel to a partition actor
// after fasthttp has reused its buffer for the next request.
//
// Decoders are lenient about unknown fields (a newer client may send fields
// this node does not know) and strict about the types and domains of the
// ones they read. Every error wraps actors.ErrInvalidArgument.

// maxNameLen is Kafka's limit on topic names; WAL logs are topics.
const maxNameLen = 249

// maxAppendEntries bounds the entries of one append. The body limit alone
// would not bound memory: an entry costs a few bytes of JSON ("{}," is
// three) but over a hundred bytes of decoded structures and record framing.
const maxAppendEntries = 1 << 16

// createRequest is POST /v1/create.
type createRequest struct {
	Name string
	// Storage is properties.storage, nil when absent.
	Storage *storageSpec
	// Config is properties.config: topic config overrides.
	Config map[string]string
}

// storageSpec is properties.storage as the original client sends it.
type storageSpec struct {
	Scheme          string `json:"scheme"`
	Bucket          string `json:"bucket"`
	Region          string `json:"region"`
	Endpoint        string `json:"endpoint"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// String keeps the secret out of any log line or error a spec ends up in.
func (s storageSpec) String() string {
	return fmt.Sprintf("scheme %q bucket %q region %q endpoint %q", s.Scheme, s.Bucket, s.Region, s.Endpoint)
}

// GoString redacts the credentials for %#v as String does for %v.
func (s storageSpec) GoString() string { return s.String() }

// appendRequest is POST /v1/append.
type appendRequest struct {
	Name    string
	Entries []appendEntry
	// ExpectedOffset is -1 for an unconditional append.
	ExpectedOffset int64
	Partition      int32
}

// appendEntry is one entry to append; Key is nil unless the client sent one.
type appendEntry struct {
	Data []byte
	Key  []byte
}

// readRequest is POST /v1/read.
type readRequest struct {
	Name       string
	Offset     int64
	MaxEntries int   // 0: no limit but MaxBytes
	MaxBytes   int   // 0: the server default
	WaitMs     int64 // 0: answer at once
	Partition  int32
}

// trimRequest is POST /v1/trim.
type trimRequest struct {
	Name      string
	Offset    int64
	Partition int32
}

// listQuery is the query of GET /v1/logs.
type listQuery struct {
	Prefix, After string
	Limit         int
	// Kinds: "wal" (default), "kafka" or "all".
	Kind string
}

// tailQuery is the query (and Last-Event-ID) of GET /v1/logs/{name}/tail.
type tailQuery struct {
	// Offset is -1 to start at the log's end.
	Offset    int64
	Partition int32
}

// invalid returns an error wrapping actors.ErrInvalidArgument.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", actors.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// unmarshal decodes a JSON object body into v and explains failures in the
// API's terms (field names as on the wire, not Go's).
func unmarshal(body []byte, v any) error {
	if len(body) == 0 {
		return invalid("empty request body; want a JSON object")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return invalid("malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.As(err, &te):
		if te.Field == "" {
			return invalid("request body must be a JSON object, not %s", te.Value)
		}
		return invalid("field %q: want %s, got %s", te.Field, jsonTypeName(te.Type.Kind().String()), te.Value)
	default:
		// Truncated input ("unexpected end of JSON input") and the like.
		return invalid("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

// jsonTypeName names a Go kind the way an API user thinks of it.
func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return kind
}

// checkName validates a log name: Kafka's topic alphabet and length, so a
// log is always a valid Kafka topic.
func checkName(name string) error {
	if name == "" {
		return invalid("name is required")
	}
	if len(name) > maxNameLen {
		return invalid("name is %d characters; the limit is %d", len(name), maxNameLen)
	}
	if name == "." || name == ".." {
		return invalid("name %q is reserved", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalid("name %q: character %q is not allowed (use letters, digits, '.', '_' and '-')", name, c)
		}
	}
	return nil
}

func checkPartition(p *int64) (int32, error) {
	if p == nil {
		return 0, nil
	}
	if *p < 0 || *p > 1<<31-1 {
		return 0, invalid("partition %d is out of range", *p)
	}
	return int32(*p), nil
}

// decodeBase64 decodes standard base64 with padding (RFC 4648 §4), as the
// original protocol specifies, into a new slice.
func decodeBase64(field string, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, invalid("%s: not standard padded base64: %v", field, err)
	}
	return b, nil
}

// decodeCreate decodes POST /v1/create.
func decodeCreate(body []byte) (createRequest, error) {
	var w struct {
		Name       string `json:"name"`
		Properties *struct {
			Storage *storageSpec      `json:"storage"`
			Config  map[string]string `json:"config"`
		} `json:"properties"`
	}
	if err := unmarshal(body, &w); err != nil {
		return createRequest{}, err
	}
	if err := checkName(w.Name); err != nil {
		return createRequest{}, err
	}
	r := createRequest{Name: w.Name}
	if w.Properties != nil {
		r.Storage, r.Config = w.Properties.Storage, w.Properties.Config
	}
	return r, nil
}

// decodeAppend decodes POST /v1/append. The common shape of body takes the
// fast path (decode_fast.go); anything else, errors included, goes through
// encoding/json with entry data as strings, so a bad entry can be named.
func decodeAppend(body []byte) (appendRequest, error) {
	// Every entry is a JSON object, so the count of '{' bounds the entries
	// (over-counting only braces inside strings, which base64 never has).
	// Counting first refuses a flood of tiny entries before either decoder
	// allocates for them.
	if n := bytes.Count(body, []byte{'{'}); n > maxAppendEntries+1 {
		return appendRequest{}, invalid("an append holds at most %d entries", maxAppendEntries)
	}
	w, ok := fastAppend(body)
	if !ok {
		return decodeAppendSlow(body)
	}
	r, err := checkAppend(w.name, len(w.entries), w.expected, w.partition)
	if err != nil {
		return appendRequest{}, err
	}
	r.Entries = w.entries
	return r, nil
}

// checkAppend validates an append's fields other than its entries.
func checkAppend(name string, entries int, expected, partition *int64) (appendRequest, error) {
	if err := checkName(name); err != nil {
		return appendRequest{}, err
	}
	r := appendRequest{Name: name, ExpectedOffset: -1}
	if entries == 0 {
		return appendRequest{}, invalid("entries is required and must not be empty")
	}
	if expected != nil {
		if *expected < 0 {
			return appendRequest{}, invalid("expected_offset %d is negative", *expected)
		}
		r.ExpectedOffset = *expected
	}
	var err error
	if r.Partition, err = checkPartition(partition); err != nil {
		return appendRequest{}, err
	}
	return r, nil
}

// decodeAppendSlow decodes an append with entry data as strings, so a bad
// one can be named; it explains what the fast path only refused.
func decodeAppendSlow(body []byte) (appendRequest, error) {
	var w struct {
		Name    string `json:"name"`
		Entries []struct {
			Data *string `json:"data"`
			Key  *string `json:"key"`
		} `json:"entries"`
		ExpectedOffset *int64 `json:"expected_offset"`
		Partition      *int64 `json:"partition"`
	}
	if err := unmarshal(body, &w); err != nil {
		return appendRequest{}, err
	}
	r, err := checkAppend(w.Name, len(w.Entries), w.ExpectedOffset, w.Partition)
	if err != nil {
		return appendRequest{}, err
	}
	r.Entries = make([]appendEntry, len(w.Entries))
	for i, e := range w.Entries {
		r.Entries[i].Data = []byte{}
		if e.Data != nil && *e.Data != "" {
			if r.Entries[i].Data, err = decodeBase64(fmt.Sprintf("entries[%d].data", i), *e.Data); err != nil {
				return appendRequest{}, err
			}
		}
		if e.Key != nil {
			if r.Entries[i].Key, err = decodeBase64(fmt.Sprintf("entries[%d].key", i), *e.Key); err != nil {
				return appendRequest{}, err
			}
		}
	}
	return r, nil
}

// decodeRead decodes POST /v1/read. A missing offset reads from 0.
func decodeRead(body []byte) (readRequest, error) {
	var w struct {
		Name       string `json:"name"`
		Offset     int64  `json:"offset"`
		MaxEntries int64  `json:"max_entries"`
		MaxBytes   int64  `json:"max_bytes"`
		WaitMs     int64  `json:"wait_ms"`
		Partition  *int64 `json:"partition"`
	}
	if err := unmarshal(body, &w); err != nil {
		return readRequest{}, err
	}
	if err := checkName(w.Name); err != nil {
		return readRequest{}, err
	}
	switch {
	case w.Offset < 0:
		return readRequest{}, invalid("offset %d is negative", w.Offset)
	case w.MaxEntries < 0:
		return readRequest{}, invalid("max_entries %d is negative", w.MaxEntries)
	case w.MaxBytes < 0:
		return readRequest{}, invalid("max_bytes %d is negative", w.MaxBytes)
	case w.WaitMs < 0:
		return readRequest{}, invalid("wait_ms %d is negative", w.WaitMs)
	}
	p, err := checkPartition(w.Partition)
	if err != nil {
		return readRequest{}, err
	}
	const maxInt32 = 1<<31 - 1
	return readRequest{
		Name: w.Name, Offset: w.Offset, Partition: p, WaitMs: w.WaitMs,
		MaxEntries: int(min(w.MaxEntries, maxInt32)), MaxBytes: int(min(w.MaxBytes, maxInt32)),
	}, nil
}

// decodeTrim decodes POST /v1/trim. The offset is required: trimming is
// destructive, so no default stands in for a forgotten field.
func decodeTrim(body []byte) (trimRequest, error) {
	var w struct {
		Name      string `json:"name"`
		Offset    *int64 `json:"offset"`
		Partition *int64 `json:"partition"`
	}
	if err := unmarshal(body, &w); err != nil {
		return trimRequest{}, err
	}
	if err := checkName(w.Name); err != nil {
		return trimRequest{}, err
	}
	if w.Offset == nil {
		return trimRequest{}, invalid("offset is required")
	}
	if *w.Offset < 0 {
		return trimRequest{}, invalid("offset %d is negative", *w.Offset)
	}
	p, err := checkPartition(w.Partition)
	if err != nil {
		return trimRequest{}, err
	}
	return trimRequest{Name: w.Name, Offset: *w.Offset, Partition: p}, nil
}

// defaultListLimit and maxListLimit bound one page of GET /v1/logs.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// decodeList decodes the query of GET /v1/logs.
func decodeList(args *fasthttp.Args) (listQuery, error) {
	q := listQuery{
		Prefix: string(args.Peek("prefix")),
		After:  string(args.Peek("after")),
		Limit:  defaultListLimit,
		Kind:   "wal",
	}
	if v := args.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > maxListLimit {
			return listQuery{}, invalid("limit %q: want an integer from 1 to %d", v, maxListLimit)
		}
		q.Limit = n
	}
	if v := args.Peek("kind"); len(v) > 0 {
		switch string(v) {
		case "wal", "kafka", "all":
			q.Kind = string(v)
		default:
			return listQuery{}, invalid("kind %q: want wal, kafka or all", v)
		}
	}
	return q, nil
}

// decodePartitionQuery reads the optional partition query parameter.
func decodePartitionQuery(args *fasthttp.Args) (int32, error) {
	v := args.Peek("partition")
	if len(v) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 32)
	if err != nil || n < 0 {
		return 0, invalid("partition %q: want a non-negative integer", v)
	}
	return int32(n), nil
}

// decodeTail decodes the query of GET /v1/logs/{name}/tail. Without an
// offset, a Last-Event-ID (what an EventSource sends when it reconnects)
// resumes after that entry; without either the tail starts at the end.
func decodeTail(args *fasthttp.Args, lastEventID []byte) (tailQuery, error) {
	q := tailQuery{Offset: -1}
	var err error
	if q.Partition, err = decodePartitionQuery(args); err != nil {
		return tailQuery{}, err
	}
	if v := args.Peek("offset"); len(v) > 0 {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 {
			return tailQuery{}, invalid("offset %q: want a non-negative integer", v)
		}
		q.Offset = n
		return q, nil
	}
	if len(lastEventID) > 0 {
		n, err := strconv.ParseInt(string(lastEventID), 10, 64)
		if err != nil || n < 0 || n == 1<<63-1 {
			return tailQuery{}, invalid("Last-Event-ID %q: want an entry index", lastEventID)
		}
		q.Offset = n + 1
	}
	return q, nil
}
