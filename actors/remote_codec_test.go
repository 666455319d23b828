package actors

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/morax-dev/morax/actors/partitionpb"
	"github.com/morax-dev/morax/persistence/meta"
)

// TestRemoteErrorsRoundTrip checks that every error an owner may answer
// with comes out of the wire matching the same sentinel with errors.Is,
// with the owner's text, and a conflict with its offsets via errors.As.
func TestRemoteErrorsRoundTrip(t *testing.T) {
	for _, c := range errorCodes {
		sent := fmt.Errorf("orders/0: %w", c.err)
		got := decodeError(encodeError(sent), "node-b")
		if !errors.Is(got, c.err) {
			t.Errorf("%v came back as %v, which does not match it", sent, got)
		}
		if got.Error() != sent.Error() {
			t.Errorf("%v came back reading %q", sent, got.Error())
		}
		for _, other := range errorCodes {
			if other.err != c.err && errors.Is(got, other.err) {
				t.Errorf("%v came back matching %v too", sent, other.err)
			}
		}
	}
	sent := fmt.Errorf("log x: %w", &ConflictError{Expected: 3, End: 7})
	got := decodeError(encodeError(sent), "node-b")
	var ce *ConflictError
	if !errors.Is(got, ErrConflict) || !errors.As(got, &ce) || ce.Expected != 3 || ce.End != 7 {
		t.Fatalf("conflict came back as %#v", got)
	}
	var re *RemoteError
	if !errors.As(got, &re) || re.Node != "node-b" {
		t.Fatalf("conflict came back without its node: %#v", got)
	}
	// An error with no sentinel stays an error, matching none.
	got = decodeError(encodeError(errors.New("disk on fire")), "node-b")
	if got == nil || got.Error() != "disk on fire" || errors.Unwrap(got) != nil {
		t.Fatalf("plain error came back as %#v", got)
	}
	if encodeError(nil) != nil || decodeError(nil, "x") != nil {
		t.Fatal("nil error did not stay nil")
	}
	// A code from a newer node that this one does not know.
	got = decodeError(&partitionpb.Error{Code: 999}, "node-b")
	if got == nil || errors.Unwrap(got) != nil || got.Error() == "" {
		t.Fatalf("unknown code came back as %#v", got)
	}
}

// TestRemoteRepliesRoundTrip checks each result survives encoding.
func TestRemoteRepliesRoundTrip(t *testing.T) {
	id := meta.TopicID{1, 2, 3}
	a := AppendResult{BaseOffset: 5, EndOffset: 9, LogAppendTime: -1, LogStartOffset: 2}
	if got := decodeAppendReply(encodeAppendReply(a), "n"); got != a {
		t.Errorf("append: %+v, want %+v", got, a)
	}
	f := FetchResult{Batches: []byte("xyz"), HighWatermark: 9, LogStartOffset: 2, LeaderEpoch: 4}
	if got := decodeFetchReply(encodeFetchReply(f), "n"); string(got.Batches) != "xyz" || got.HighWatermark != 9 || got.LogStartOffset != 2 || got.LeaderEpoch != 4 || got.Err != nil {
		t.Errorf("fetch: %+v", got)
	}
	o := OffsetResult{Offset: 7, Timestamp: 1234, LeaderEpoch: 2}
	if got := decodeOffsetReply(encodeOffsetReply(o), "n"); got != o {
		t.Errorf("list offsets: %+v, want %+v", got, o)
	}
	tr := TrimResult{LogStartOffset: 3}
	if got := decodeTrimReply(encodeTrimReply(tr), "n"); got != tr {
		t.Errorf("trim: %+v, want %+v", got, tr)
	}
	st := PartitionState{Topic: id, Partition: 1, LogStartOffset: 2, HighWatermark: 9, NextOffset: 10, LeaderEpoch: 4, Bytes: 99,
		Producers: []meta.ProducerState{{ProducerID: 8, ProducerEpoch: 1, LastUpdate: 77, Batches: []meta.ProducerBatch{{FirstSeq: 0, LastSeq: 4, BaseOffset: 5, LastOffset: 9, Timestamp: 66}}}}}
	got := decodeDescribeReply(encodeDescribeReply(st), "n")
	if got.Topic != id || got.HighWatermark != 9 || got.NextOffset != 10 || got.Bytes != 99 || len(got.Producers) != 1 ||
		got.Producers[0].Batches[0] != st.Producers[0].Batches[0] || got.Producers[0].ProducerEpoch != 1 {
		t.Errorf("describe: %+v", got)
	}
	// A success that names no offsets: the append reached the owner, so its
	// outcome is unknown.
	bad := decodeAppendReply(&partitionpb.AppendReply{BaseOffset: 4, EndOffset: 4}, "n")
	if !errors.Is(bad.Err, ErrOutcomeUnknown) || bad.BaseOffset != -1 {
		t.Errorf("append reply with no offsets: %+v", bad)
	}
	if r := decodeFetchReply(&partitionpb.FetchReply{HighWatermark: -5}, "n"); r.Err == nil {
		t.Error("fetch reply with a negative high watermark accepted")
	}
	if r := decodeDescribeReply(&partitionpb.DescribeReply{TopicId: []byte{1}}, "n"); r.Err == nil {
		t.Error("describe reply with a short topic id accepted")
	}
}

// FuzzDecodeRequest feeds arbitrary bytes to every request and reply
// decoder: none may panic, a request is either refused with
// ErrInvalidArgument or yields a request within the domain the gateway
// relies on, and a reply yields a result whose error matches its fields.
func FuzzDecodeRequest(f *testing.F) {
	ref := &partitionpb.PartitionRef{TopicId: make([]byte, 16), Topic: "t", Partition: 2}
	seeds := []proto.Message{
		&partitionpb.AppendRequest{Ref: ref, Batches: []byte("b"), ExpectedOffset: -1, TimeoutNanos: int64(time.Second)},
		&partitionpb.FetchRequest{Ref: ref, Offset: 3, MaxBytes: 1 << 20, MaxWaitNanos: int64(time.Second), TimeoutNanos: int64(time.Second)},
		&partitionpb.ListOffsetsRequest{Ref: ref, Timestamp: -2, TimeoutNanos: 1},
		&partitionpb.TrimRequest{Ref: ref, Offset: -1, TimeoutNanos: 1},
		&partitionpb.DescribeRequest{Ref: ref, TimeoutNanos: 1},
		&partitionpb.AppendReply{BaseOffset: 1, EndOffset: 2, Error: &partitionpb.Error{Code: partitionpb.Code_CONFLICT, End: 4}},
		&partitionpb.DescribeReply{TopicId: make([]byte, 16), Producers: []*partitionpb.ProducerState{{Batches: []*partitionpb.ProducerBatch{{}}}}},
	}
	for _, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(what string, ref remoteRef, timeout time.Duration, err error) bool {
			if err != nil {
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("%s refused with %v, not ErrInvalidArgument", what, err)
				}
				return false
			}
			if ref.p < 0 || timeout <= 0 || timeout > maxRemoteTimeout {
				t.Fatalf("%s accepted with partition %d, timeout %s", what, ref.p, timeout)
			}
			return true
		}
		var am partitionpb.AppendRequest
		if proto.Unmarshal(data, &am) == nil {
			ref, timeout, a, err := decodeAppend(&am)
			if check("append", ref, timeout, err) && (len(a.Batches) == 0 || a.ExpectedOffset < -1) {
				t.Fatalf("append accepted: %+v", a)
			}
		}
		var fm partitionpb.FetchRequest
		if proto.Unmarshal(data, &fm) == nil {
			ref, timeout, fe, err := decodeFetch(&fm)
			if check("fetch", ref, timeout, err) && (fe.MaxBytes < 0 || fe.MaxWait < 0 || fe.MaxWait > timeout) {
				t.Fatalf("fetch accepted: %+v", fe)
			}
		}
		var lm partitionpb.ListOffsetsRequest
		if proto.Unmarshal(data, &lm) == nil {
			ref, timeout, _, err := decodeListOffsets(&lm)
			check("list offsets", ref, timeout, err)
		}
		var tm partitionpb.TrimRequest
		if proto.Unmarshal(data, &tm) == nil {
			ref, timeout, _, err := decodeTrim(&tm)
			check("trim", ref, timeout, err)
		}
		var dm partitionpb.DescribeRequest
		if proto.Unmarshal(data, &dm) == nil {
			ref, timeout, _, err := decodeDescribe(&dm)
			check("describe", ref, timeout, err)
		}
		var ar partitionpb.AppendReply
		if proto.Unmarshal(data, &ar) == nil {
			if r := decodeAppendReply(&ar, "n"); r.Err == nil && (r.BaseOffset < 0 || r.EndOffset <= r.BaseOffset) {
				t.Fatalf("append reply accepted: %+v", r)
			}
		}
		var fr partitionpb.FetchReply
		if proto.Unmarshal(data, &fr) == nil {
			if r := decodeFetchReply(&fr, "n"); r.Err == nil && (r.HighWatermark < 0 || r.LogStartOffset > r.HighWatermark) {
				t.Fatalf("fetch reply accepted: %+v", r)
			}
		}
		var or partitionpb.OffsetReply
		if proto.Unmarshal(data, &or) == nil {
			_ = decodeOffsetReply(&or, "n")
		}
		var trr partitionpb.TrimReply
		if proto.Unmarshal(data, &trr) == nil {
			if r := decodeTrimReply(&trr, "n"); r.Err == nil && r.LogStartOffset < 0 {
				t.Fatalf("trim reply accepted: %+v", r)
			}
		}
		var dr partitionpb.DescribeReply
		if proto.Unmarshal(data, &dr) == nil {
			_ = decodeDescribeReply(&dr, "n")
		}
		var e partitionpb.Error
		if proto.Unmarshal(data, &e) == nil {
			if err := decodeError(&e, "n"); err == nil || (e.GetCode() == partitionpb.Code_DEADLINE_EXCEEDED && !errors.Is(err, context.DeadlineExceeded)) {
				t.Fatalf("error %v decoded as %v", &e, err)
			}
		}
	})
}
