// Package metasql holds what the two SQL implementations of meta.Store
// (pgmeta on PostgreSQL, litemeta on SQLite) share besides their schema
// names: argument validation, the byte encodings of columns whose layout is
// ours (producer batches, topic config, segment index), and the loading of
// numbered migration files.
//
// Keeping these in one place means both stores reject the same inputs with
// the same errors and a row written by one is decoded the same way by the
// other, so the contract suite tests one behaviour, not two.
package metasql

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/segment"
)

// ValidateTopic checks a topic before it is created.
func ValidateTopic(t meta.Topic) error {
	if t.Name == "" {
		return fmt.Errorf("create topic: empty name: %w", meta.ErrInvalid)
	}
	if t.Partitions < 1 {
		return fmt.Errorf("create topic %s: %d partitions: %w", t.Name, t.Partitions, meta.ErrInvalid)
	}
	if t.Kind != meta.KindKafka && t.Kind != meta.KindWAL {
		return fmt.Errorf("create topic %s: unknown kind %q: %w", t.Name, t.Kind, meta.ErrInvalid)
	}
	return nil
}

// ValidateCommit checks the parts of a flush commit that do not depend on
// stored state, so a malformed commit is refused before it reaches the
// database (where it could otherwise corrupt the dense offset range).
func ValidateCommit(c meta.FlushCommit) error {
	s := c.Segment
	switch {
	case c.Owner == "":
		return fmt.Errorf("commit flush %s/%d: empty owner: %w", s.TopicID, s.Partition, meta.ErrInvalid)
	case s.BaseOffset < 0 || s.EndOffset <= s.BaseOffset:
		return fmt.Errorf("commit flush %s/%d: empty or negative range [%d, %d): %w",
			s.TopicID, s.Partition, s.BaseOffset, s.EndOffset, meta.ErrInvalid)
	case s.ObjectKey == "":
		return fmt.Errorf("commit flush %s/%d: empty object key: %w", s.TopicID, s.Partition, meta.ErrInvalid)
	case s.Size < 0:
		return fmt.Errorf("commit flush %s/%d: negative size %d: %w", s.TopicID, s.Partition, s.Size, meta.ErrInvalid)
	case s.Position < 0:
		return fmt.Errorf("commit flush %s/%d: negative position %d: %w", s.TopicID, s.Partition, s.Position, meta.ErrInvalid)
	case s.Position > math.MaxInt64-s.Size:
		// The segment's end in its object would overflow: no reader could
		// ever address it.
		return fmt.Errorf("commit flush %s/%d: position %d + size %d overflows: %w",
			s.TopicID, s.Partition, s.Position, s.Size, meta.ErrInvalid)
	}
	return nil
}

// objectSlice names where a segment's bytes are: the unit that must be
// unique across all segments.
type objectSlice struct {
	key string
	pos int64
}

// ValidateCommits checks the arguments of a CommitFlushes call: cs must not
// be empty, each commit must pass ValidateCommit, and no two commits may
// name the same (ObjectKey, Position), since both could never be stored.
// Any failure is ErrInvalid, and the whole call must then store nothing.
func ValidateCommits(cs []meta.FlushCommit) error {
	if len(cs) == 0 {
		return fmt.Errorf("commit flushes: no flushes: %w", meta.ErrInvalid)
	}
	for _, c := range cs {
		if err := ValidateCommit(c); err != nil {
			return err
		}
	}
	if len(cs) == 1 {
		return nil
	}
	seen := make(map[objectSlice]struct{}, len(cs))
	for _, c := range cs {
		k := objectSlice{c.Segment.ObjectKey, c.Segment.Position}
		if _, dup := seen[k]; dup {
			return fmt.Errorf("commit flushes: object %s position %d named twice: %w", k.key, k.pos, meta.ErrInvalid)
		}
		seen[k] = struct{}{}
	}
	return nil
}

// UniqueKeys returns keys without repeats, in order of first appearance.
// Consecutive segments packed into one object return its key once per
// segment when deleted, and a caller must be told of each object once.
func UniqueKeys(keys []string) []string {
	if len(keys) < 2 {
		return keys
	}
	seen := make(map[string]struct{}, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

// ValidateLease checks the arguments of AcquireLease and RenewLease.
func ValidateLease(op, resource, owner string, ttl time.Duration) error {
	switch {
	case resource == "":
		return fmt.Errorf("%s: empty resource: %w", op, meta.ErrInvalid)
	case owner == "":
		// An empty owner is how a released lease is marked vacant.
		return fmt.Errorf("%s %s: empty owner: %w", op, resource, meta.ErrInvalid)
	case ttl <= 0:
		return fmt.Errorf("%s %s: ttl %v: %w", op, resource, ttl, meta.ErrInvalid)
	}
	return nil
}

// DedupeProducers keeps the last state of each producer id. A commit naming
// a producer twice would otherwise make one SQL upsert touch a row twice,
// which PostgreSQL refuses; the last state is the newest by construction.
func DedupeProducers(ps []meta.ProducerState) []meta.ProducerState {
	if len(ps) < 2 {
		return ps
	}
	last := make(map[int64]int, len(ps))
	for i, p := range ps {
		last[p.ProducerID] = i
	}
	if len(last) == len(ps) {
		return ps
	}
	out := make([]meta.ProducerState, 0, len(last))
	for i, p := range ps {
		if last[p.ProducerID] == i {
			out = append(out, p)
		}
	}
	return out
}

// batchesVersion leads an encoded producer window, so the layout can change
// without misreading rows written by an older broker.
const batchesVersion = 1

// batchSize is the encoded size of one ProducerBatch: two int32 sequence
// numbers and three int64s.
const batchSize = 4 + 4 + 8 + 8 + 8

// EncodeBatches encodes a producer's batch window as a version byte followed
// by fixed-size big-endian records. It is written on every flush, so it is a
// flat binary layout rather than JSON.
func EncodeBatches(bs []meta.ProducerBatch) []byte {
	b := make([]byte, 1, 1+len(bs)*batchSize)
	b[0] = batchesVersion
	for _, x := range bs {
		b = binary.BigEndian.AppendUint32(b, uint32(x.FirstSeq))
		b = binary.BigEndian.AppendUint32(b, uint32(x.LastSeq))
		b = binary.BigEndian.AppendUint64(b, uint64(x.BaseOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(x.LastOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(x.Timestamp))
	}
	return b
}

// DecodeBatches decodes what EncodeBatches wrote.
func DecodeBatches(b []byte) ([]meta.ProducerBatch, error) {
	if len(b) == 0 || b[0] != batchesVersion {
		return nil, fmt.Errorf("decode producer batches: unknown encoding (%d bytes)", len(b))
	}
	b = b[1:]
	if len(b)%batchSize != 0 {
		return nil, fmt.Errorf("decode producer batches: %d bytes is not a whole number of batches", len(b))
	}
	out := make([]meta.ProducerBatch, 0, len(b)/batchSize)
	for ; len(b) > 0; b = b[batchSize:] {
		out = append(out, meta.ProducerBatch{
			FirstSeq:   int32(binary.BigEndian.Uint32(b[0:])),
			LastSeq:    int32(binary.BigEndian.Uint32(b[4:])),
			BaseOffset: int64(binary.BigEndian.Uint64(b[8:])),
			LastOffset: int64(binary.BigEndian.Uint64(b[16:])),
			Timestamp:  int64(binary.BigEndian.Uint64(b[24:])),
		})
	}
	return out, nil
}

// EncodeConfig encodes topic config overrides as a JSON object (jsonb in
// PostgreSQL, text in SQLite), so operators can read them with plain SQL.
// A nil map is stored as {}.
func EncodeConfig(c map[string]string) ([]byte, error) {
	if c == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode topic config: %w", err)
	}
	return b, nil
}

// DecodeConfig decodes a topic's config column. It always returns a non-nil
// map so callers can index it without a nil check.
func DecodeConfig(b []byte) (map[string]string, error) {
	c := map[string]string{}
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode topic config: %w", err)
	}
	return c, nil
}

// EncodeIndex encodes a segment's sparse index for the offset_index column
// with segment.EncodeIndex. It refuses (ErrInvalid) an index that
// segment.DecodeIndex would reject, or whose offsets fall outside the
// segment: a committed row that cannot be read back would make its offsets
// unreadable for good, so the mistake is caught while the writer can still
// fail the flush.
func EncodeIndex(sg meta.Segment) ([]byte, error) {
	b := segment.EncodeIndex(sg.Index)
	if _, err := segment.DecodeIndex(b); err != nil {
		return nil, fmt.Errorf("commit flush %s/%d: index: %v: %w", sg.TopicID, sg.Partition, err, meta.ErrInvalid)
	}
	for _, e := range sg.Index {
		if e.Offset < sg.BaseOffset || e.Offset >= sg.EndOffset {
			return nil, fmt.Errorf("commit flush %s/%d: index entry %+v outside [%d, %d): %w",
				sg.TopicID, sg.Partition, e, sg.BaseOffset, sg.EndOffset, meta.ErrInvalid)
		}
	}
	return b, nil
}

// DecodeIndex decodes the offset_index column.
func DecodeIndex(b []byte) ([]segment.IndexEntry, error) {
	idx, err := segment.DecodeIndex(b)
	if err != nil {
		return nil, fmt.Errorf("decode segment index: %w", err)
	}
	return idx, nil
}

// PrefixEnd returns the smallest string greater than every string that
// starts with prefix, in byte order, so a prefix match can be written as the
// index-friendly range [prefix, end). ok is false when there is no upper
// bound (an empty prefix, or one made only of 0xff bytes).
func PrefixEnd(prefix string) (end string, ok bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// Micros converts a duration to whole microseconds, the resolution both
// databases keep timestamps at, rounding up so a positive ttl never becomes
// zero.
func Micros(d time.Duration) int64 {
	return int64((d + time.Microsecond - 1) / time.Microsecond)
}

// DedupeOffsets keeps the last offset of each (topic, partition), for the
// same reason as DedupeProducers: the last one is what the client meant.
func DedupeOffsets(os []meta.OffsetCommit) []meta.OffsetCommit {
	if len(os) < 2 {
		return os
	}
	type key struct {
		topic     string
		partition int32
	}
	last := make(map[key]int, len(os))
	for i, o := range os {
		last[key{o.Topic, o.Partition}] = i
	}
	if len(last) == len(os) {
		return os
	}
	out := make([]meta.OffsetCommit, 0, len(last))
	for i, o := range os {
		if last[key{o.Topic, o.Partition}] == i {
			out = append(out, o)
		}
	}
	return out
}

// CopyConfig returns a non-nil copy of c, so a stored topic never aliases a
// caller's map and an absent config reads the same as an empty one.
func CopyConfig(c map[string]string) map[string]string {
	out := make(map[string]string, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}
