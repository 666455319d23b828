package actors_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/actors/partitionpb"
	"github.com/morax-dev/morax/persistence/meta"
)

// The gateway is tested here from its own broker's actor system: the
// requests are the protobuf messages another node sends, delivered
// locally. The path between nodes is tested with one node per process in
// wire/wal (remote_test.go) and cmd/morax (cluster tests).

// ask sends m to the gateway and returns its reply.
func ask(t *testing.T, b *actors.Broker, gw *actor.PID, m proto.Message) proto.Message {
	t.Helper()
	got, err := b.ActorSystem().Root.RequestFuture(gw, m, 10*time.Second).Result()
	if err != nil {
		t.Fatalf("ask the gateway %T: %v", m, err)
	}
	reply, ok := got.(proto.Message)
	if !ok {
		t.Fatalf("gateway answered %T", got)
	}
	return reply
}

func refOf(tp meta.Topic, p int32) *partitionpb.PartitionRef {
	return &partitionpb.PartitionRef{TopicId: tp.ID[:], Topic: tp.Name, Partition: p}
}

// TestGatewayServesTypedRequests runs each request through the gateway of
// a node that owns everything (no cluster) and checks the replies.
func TestGatewayServesTypedRequests(t *testing.T) {
	opts := testOptions("gw")
	b := startBroker(t, embedded(t), opts)
	gw, err := actors.SpawnGateway(b, actors.RemoteConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tp := createTopic(t, b, "gw-topic", 2, nil)
	sec := int64(5 * time.Second)

	ar := ask(t, b, gw, &partitionpb.AppendRequest{Ref: refOf(tp, 1), Batches: batchOf(t, "a", "b", "c"), ExpectedOffset: -1, TimeoutNanos: sec}).(*partitionpb.AppendReply)
	if ar.Error != nil || ar.BaseOffset != 0 || ar.EndOffset != 3 {
		t.Fatalf("append: %v", ar)
	}
	ar = ask(t, b, gw, &partitionpb.AppendRequest{Ref: refOf(tp, 1), Batches: batchOf(t, "x"), ExpectedOffset: 1, TimeoutNanos: sec}).(*partitionpb.AppendReply)
	if ar.GetError().GetCode() != partitionpb.Code_CONFLICT || ar.GetError().GetEnd() != 3 {
		t.Fatalf("conditional append at a stale offset: %v", ar)
	}
	fr := ask(t, b, gw, &partitionpb.FetchRequest{Ref: refOf(tp, 1), Offset: 0, MaxBytes: 1 << 20, TimeoutNanos: sec}).(*partitionpb.FetchReply)
	if fr.Error != nil || fr.HighWatermark != 3 || len(fr.Batches) == 0 {
		t.Fatalf("fetch: %v", fr)
	}
	fr = ask(t, b, gw, &partitionpb.FetchRequest{Ref: refOf(tp, 1), Offset: 99, MaxBytes: 1 << 20, TimeoutNanos: sec}).(*partitionpb.FetchReply)
	if fr.GetError().GetCode() != partitionpb.Code_OFFSET_OUT_OF_RANGE {
		t.Fatalf("fetch past the end: %v", fr)
	}
	or := ask(t, b, gw, &partitionpb.ListOffsetsRequest{Ref: refOf(tp, 1), Timestamp: actors.LatestTimestamp, TimeoutNanos: sec}).(*partitionpb.OffsetReply)
	if or.Error != nil || or.Offset != 3 {
		t.Fatalf("list offsets: %v", or)
	}
	tr := ask(t, b, gw, &partitionpb.TrimRequest{Ref: refOf(tp, 1), Offset: 2, TimeoutNanos: sec}).(*partitionpb.TrimReply)
	if tr.Error != nil || tr.LogStartOffset != 2 {
		t.Fatalf("trim: %v", tr)
	}
	dr := ask(t, b, gw, &partitionpb.DescribeRequest{Ref: refOf(tp, 1), TimeoutNanos: sec}).(*partitionpb.DescribeReply)
	if dr.Error != nil || dr.LogStartOffset != 2 || dr.HighWatermark != 3 || dr.Partition != 1 {
		t.Fatalf("describe: %v", dr)
	}

	// A long poll parks in the partition and wakes on an append.
	poll := make(chan *partitionpb.FetchReply, 1)
	go func() {
		poll <- ask(t, b, gw, &partitionpb.FetchRequest{Ref: refOf(tp, 0), Offset: 0, MaxBytes: 1 << 20, MaxWaitNanos: int64(5 * time.Second), TimeoutNanos: int64(8 * time.Second)}).(*partitionpb.FetchReply)
	}()
	waitGauge(t, opts, "morax_parked_readers", 1)
	appendOK(t, b, tp, 0, batchOf(t, "late"))
	select {
	case fr := <-poll:
		if fr.Error != nil || len(fr.Batches) == 0 {
			t.Fatalf("long poll: %v", fr)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("long poll not woken by the append")
	}

	// A request that runs out of time is answered at its deadline.
	asked := time.Now()
	fr = ask(t, b, gw, &partitionpb.FetchRequest{Ref: refOf(tp, 0), Offset: 1, MaxBytes: 1 << 20, MaxWaitNanos: int64(5 * time.Second), TimeoutNanos: int64(200 * time.Millisecond)}).(*partitionpb.FetchReply)
	if (fr.Error != nil && fr.Error.Code != partitionpb.Code_DEADLINE_EXCEEDED) || time.Since(asked) > 2*time.Second {
		t.Fatalf("fetch with a short timeout: %v after %s", fr, time.Since(asked))
	}

	// Bad input is refused without acting.
	bad := []proto.Message{
		&partitionpb.AppendRequest{Ref: refOf(tp, 0), Batches: batchOf(t, "x"), TimeoutNanos: 0},
		&partitionpb.AppendRequest{Ref: &partitionpb.PartitionRef{TopicId: []byte{1, 2}}, Batches: batchOf(t, "x"), TimeoutNanos: sec},
		&partitionpb.AppendRequest{Ref: refOf(tp, 0), TimeoutNanos: sec},
		&partitionpb.FetchRequest{Ref: refOf(tp, 0), MaxBytes: -1, TimeoutNanos: sec},
		&partitionpb.DescribeRequest{TimeoutNanos: sec},
	}
	for _, m := range bad {
		reply := ask(t, b, gw, m)
		e := reply.ProtoReflect().Get(reply.ProtoReflect().Descriptor().Fields().ByName("error")).Message().Interface().(*partitionpb.Error)
		if e.GetCode() != partitionpb.Code_INVALID_ARGUMENT {
			t.Errorf("%T %v: answered %v, want INVALID_ARGUMENT", m, m, reply)
		}
	}
	unknown := meta.Topic{ID: meta.TopicID{9}, Name: "gone", Partitions: 1}
	if dr := ask(t, b, gw, &partitionpb.DescribeRequest{Ref: refOf(unknown, 0), TimeoutNanos: sec}).(*partitionpb.DescribeReply); dr.GetError().GetCode() != partitionpb.Code_UNKNOWN_TOPIC {
		t.Fatalf("describe of an unknown topic: %v", dr)
	}
	if dr := ask(t, b, gw, &partitionpb.DescribeRequest{Ref: refOf(tp, 7), TimeoutNanos: sec}).(*partitionpb.DescribeReply); dr.GetError().GetCode() != partitionpb.Code_UNKNOWN_PARTITION {
		t.Fatalf("describe of an unknown partition: %v", dr)
	}
	if got := readAll(t, b, tp, 0, 0); len(got) != 1 {
		t.Fatalf("partition 0 holds %d records, want only the one appended directly", len(got))
	}
}

// TestGatewayBackpressure fills a gateway bounded to one request with a
// parked long poll and checks the next request is refused, unacted.
func TestGatewayBackpressure(t *testing.T) {
	opts := testOptions("gw")
	b := startBroker(t, embedded(t), opts)
	gw, err := actors.SpawnGateway(b, actors.RemoteConfig{MaxInflight: 1})
	if err != nil {
		t.Fatal(err)
	}
	tp := createTopic(t, b, "gw-bp", 1, nil)
	root := b.ActorSystem().Root
	parked := root.RequestFuture(gw, &partitionpb.FetchRequest{Ref: refOf(tp, 0), MaxBytes: 1 << 20, MaxWaitNanos: int64(2 * time.Second), TimeoutNanos: int64(5 * time.Second)}, 10*time.Second)
	// Parked in the partition, so the gateway holds it.
	waitGauge(t, opts, "morax_parked_readers", 1)
	ar := ask(t, b, gw, &partitionpb.AppendRequest{Ref: refOf(tp, 0), Batches: batchOf(t, "x"), ExpectedOffset: -1, TimeoutNanos: int64(time.Second)}).(*partitionpb.AppendReply)
	err = actors.RemoteErrorForTest(ar.GetError())
	if !errors.Is(err, actors.ErrBackpressure) {
		t.Fatalf("append beyond the gateway's bound: %v", ar)
	}
	if _, err := parked.Result(); err != nil {
		t.Fatal(err)
	}
	// The long poll answered, the bound frees up.
	ar = ask(t, b, gw, &partitionpb.AppendRequest{Ref: refOf(tp, 0), Batches: batchOf(t, "y"), ExpectedOffset: -1, TimeoutNanos: int64(5 * time.Second)}).(*partitionpb.AppendReply)
	if ar.Error != nil || ar.BaseOffset != 0 {
		t.Fatalf("append once the gateway is free: %v", ar)
	}
}

// TestGatewayRefusesNotOwned runs two nodes of an in-process cluster and
// sends requests to the gateway of the one that does not own the
// partition: it refuses them with NOT_OWNER before acting, appends
// included, and never sends them on. Then the caller's side: a Broker
// call for a partition another node owns, on a node with no remote to
// reach it, is refused at once with ErrNotOwner, as Broker.Send is.
func TestGatewayRefusesNotOwned(t *testing.T) {
	be := pgMinio(t)
	a := startClusterNode(t, be, "node-a", 0)
	b := startClusterNode(t, be, "node-b", 0)
	tp := createTopic(t, a.b, "gw-owned", 1, nil)
	var owner, other *clusterNode
	waitFor(t, 15*time.Second, "an owner", func() bool {
		for _, n := range []*clusterNode{a, b} {
			if _, ok := n.b.LocalLeader(tp.ID, 0); ok {
				owner = n
			}
		}
		return owner != nil
	})
	other = a
	if owner == a {
		other = b
	}
	waitFor(t, 5*time.Second, "the other node to see the owner", func() bool {
		n, self := other.b.PartitionOwner(tp.ID, 0)
		return !self && n.ID == owner.id
	})
	gw, err := actors.SpawnGateway(other.b, actors.RemoteConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.b.TopicByID(context.Background(), tp.ID); err != nil {
		t.Fatal(err)
	}
	ar := ask(t, other.b, gw, &partitionpb.AppendRequest{Ref: refOf(tp, 0), Batches: batchOf(t, "x"), ExpectedOffset: -1, TimeoutNanos: int64(5 * time.Second)}).(*partitionpb.AppendReply)
	if !errors.Is(actors.RemoteErrorForTest(ar.GetError()), actors.ErrNotOwner) {
		t.Fatalf("append to the non-owner's gateway: %v", ar)
	}
	dr := ask(t, other.b, gw, &partitionpb.DescribeRequest{Ref: refOf(tp, 0), TimeoutNanos: int64(5 * time.Second)}).(*partitionpb.DescribeReply)
	if dr.GetError().GetCode() != partitionpb.Code_NOT_OWNER {
		t.Fatalf("describe on the non-owner's gateway: %v", dr)
	}
	if st, err := owner.b.Describe(context.Background(), tp, 0); err != nil || st.NextOffset != 0 {
		t.Fatalf("the owner's partition after the refusals: %+v %v", st, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	asked := time.Now()
	_, err = other.b.Append(ctx, tp, 0, batchOf(t, "y"), -1)
	if !errors.Is(err, actors.ErrNotOwner) || time.Since(asked) > time.Second {
		t.Fatalf("append through a node without remote: %v after %s, want ErrNotOwner at once", err, time.Since(asked))
	}
}
