package actors

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/morax-dev/morax/actors/partitionpb"
	"github.com/morax-dev/morax/persistence/meta"
)

// GatewayName is the name of the actor through which a node serves other
// nodes' requests for the partitions it owns (StartRemote spawns it); they
// address it as actor.NewPID(node.RemoteAddr, GatewayName).
const GatewayName = "partitions"

// replyHeadroom is what a reply keeps free under the message limit for the
// envelope around it.
const replyHeadroom = 64 << 10

// gateway receives the partitionpb requests of other nodes. It decodes
// each into the typed request the local path uses and hands it to the
// partition through Broker.Send; the request's Reply sends the protobuf
// reply straight to the requester (a remote future), so the gateway never
// waits: a long poll parks in the partition actor, not here.
//
// It refuses, before acting, a request for a partition this node does not
// own (ErrNotOwner: the sender looks the owner up again and retries, which
// is safe even for an append), and one beyond its in-flight bounds
// (ErrBackpressure). The fields below are owned by its goroutine; replies
// report their end with a gatewayDone message.
type gateway struct {
	b   *Broker
	cfg RemoteConfig

	inflight      int   // requests accepted and not yet answered
	inflightBytes int64 // append bytes they carry
}

// gatewayDone tells the gateway a request it accepted was answered.
type gatewayDone struct{ bytes int64 }

// spawnGateway starts the GatewayName actor on b's actor system.
func spawnGateway(b *Broker, cfg RemoteConfig) (*actor.PID, error) {
	props := actor.PropsFromProducer(func() actor.Actor { return &gateway{b: b, cfg: cfg} })
	pid, err := b.system.Root.SpawnNamed(props, GatewayName)
	if err != nil {
		return nil, fmt.Errorf("start the %s actor (is a remote already running on this broker?): %w", GatewayName, err)
	}
	return pid, nil
}

// Receive implements actor.Actor.
func (g *gateway) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case gatewayDone:
		g.inflight--
		g.inflightBytes -= m.bytes
	case *partitionpb.AppendRequest:
		ref, timeout, a, err := decodeAppend(m)
		var cost int64
		if a != nil {
			cost = int64(len(a.Batches))
		}
		serve(g, c, inbound{ref, timeout, cost, err}, failedAppend, encodeAppendReply, func(t meta.Topic, reply func(AppendResult)) {
			a.Reply = reply
			g.b.Send(t, ref.p, a)
		})
	case *partitionpb.FetchRequest:
		ref, timeout, f, err := decodeFetch(m)
		if f != nil {
			// The answer must fit in one message between nodes; the first
			// batch is returned whole whatever this says.
			f.MaxBytes = min(f.MaxBytes, g.cfg.MaxMessageBytes/2)
		}
		serve(g, c, inbound{ref, timeout, 0, err}, failedFetch, encodeFetchReply, func(t meta.Topic, reply func(FetchResult)) {
			asked := time.Now()
			f.Reply = func(r FetchResult) { reply(g.b.handedOver(t, ref.p, f.MaxWait, asked, r)) }
			g.b.Send(t, ref.p, f)
		})
	case *partitionpb.ListOffsetsRequest:
		ref, timeout, l, err := decodeListOffsets(m)
		serve(g, c, inbound{ref, timeout, 0, err}, failedOffsets, encodeOffsetReply, func(t meta.Topic, reply func(OffsetResult)) {
			l.Reply = reply
			g.b.Send(t, ref.p, l)
		})
	case *partitionpb.TrimRequest:
		ref, timeout, tr, err := decodeTrim(m)
		serve(g, c, inbound{ref, timeout, 0, err}, failedTrim, encodeTrimReply, func(t meta.Topic, reply func(TrimResult)) {
			tr.Reply = reply
			g.b.Send(t, ref.p, tr)
		})
	case *partitionpb.DescribeRequest:
		ref, timeout, d, err := decodeDescribe(m)
		serve(g, c, inbound{ref, timeout, 0, err}, failedDescribe, encodeDescribeReply, func(t meta.Topic, reply func(PartitionState)) {
			d.Reply = reply
			g.b.Send(t, ref.p, d)
		})
	}
}

// inbound is what the gateway knows of a request once decoded: err is the
// decoding error, if any.
type inbound struct {
	ref     remoteRef
	timeout time.Duration
	cost    int64
	err     error
}

// gatewayCall is one accepted request until it is answered.
type gatewayCall struct {
	answered atomic.Bool
	timer    *time.Timer // set before the request is delivered
}

// serve accepts one request, or refuses it, and arranges for exactly one
// reply: the partition's, or a timeout when the request's time is up (the
// sender stops waiting then; a late answer is dropped).
func serve[R any, M proto.Message](g *gateway, c actor.Context, in inbound, failed func(error) R, encode func(R) M, deliver func(meta.Topic, func(R))) {
	sender := c.Sender()
	if sender == nil {
		return // a plain Send: nobody to answer, so nothing to do
	}
	root, self, limit := c.ActorSystem().Root, c.Self(), g.cfg.MaxMessageBytes
	g.inflight++
	g.inflightBytes += in.cost
	call := &gatewayCall{}
	answer := func(r R, fromTimer bool) {
		if !call.answered.CompareAndSwap(false, true) {
			return
		}
		if !fromTimer && call.timer != nil {
			call.timer.Stop()
		}
		var msg proto.Message = encode(r)
		if n := proto.Size(msg); n > limit-replyHeadroom {
			msg = encode(failed(fmt.Errorf("the answer (%d bytes) is too large to pass between nodes; read with a smaller max_bytes", n)))
		}
		// The gateway hears the request is done before the sender hears
		// the answer: a sender that asks again at once must find the slot
		// free, not be refused for a request already answered.
		root.Send(self, gatewayDone{bytes: in.cost})
		root.Send(sender, msg)
	}
	reply := func(r R) { answer(r, false) }
	switch {
	case in.err != nil:
		reply(failed(in.err))
		return
	case g.inflight > g.cfg.MaxInflight || (g.inflight > 1 && g.inflightBytes > g.cfg.MaxInflightBytes):
		reply(failed(fmt.Errorf("%w: node %s serves %d requests (%d bytes) from other nodes", ErrBackpressure, g.b.NodeID(), g.inflight-1, g.inflightBytes-in.cost)))
		return
	}
	call.timer = time.AfterFunc(in.timeout, func() {
		answer(failed(fmt.Errorf("%s on node %s: no answer within %s: %w", in.ref, g.b.NodeID(), in.timeout, context.DeadlineExceeded)), true)
	})
	withTopic(g.b, in.ref, in.timeout, func(t meta.Topic, err error) {
		if err != nil {
			reply(failed(err))
			return
		}
		// Checked before acting, so the refusal is safe to retry elsewhere.
		if p := in.ref.p; p < t.Partitions {
			if _, self := g.b.PartitionOwner(t.ID, p); !self {
				reply(failed(fmt.Errorf("%w: node %s does not own %s", ErrNotOwner, g.b.NodeID(), in.ref)))
				return
			}
		}
		deliver(t, reply)
	})
}

// withTopic calls fn with the topic ref names: at once when the broker has
// it cached, else from a goroutine once it is read from the metadata store,
// so the gateway never waits on I/O.
func withTopic(b *Broker, ref remoteRef, timeout time.Duration, fn func(meta.Topic, error)) {
	if t, ok := b.cachedTopicByID(ref.id); ok {
		fn(t, nil)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		fn(b.TopicByID(ctx, ref.id))
	}()
}

func failedAppend(err error) AppendResult {
	return AppendResult{BaseOffset: -1, EndOffset: -1, LogAppendTime: -1, LogStartOffset: -1, Err: err}
}

func failedFetch(err error) FetchResult {
	return FetchResult{HighWatermark: -1, LogStartOffset: -1, LeaderEpoch: -1, Err: err}
}

func failedOffsets(err error) OffsetResult {
	return OffsetResult{Offset: -1, Timestamp: -1, LeaderEpoch: -1, Err: err}
}

func failedTrim(err error) TrimResult { return TrimResult{LogStartOffset: -1, Err: err} }

func failedDescribe(err error) PartitionState { return PartitionState{Err: err} }
