package kafka

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
)

// Fetch: v4-18
//
// Behavior:
//   - Partitions are read from their actors at once, each with a share of
//     the response's MaxBytes in request order (capped at PartitionMaxBytes);
//     partitions past the budget are only described (offsets, no data) and,
//     if budget is left because earlier partitions were empty, read in a
//     second round. The first batch of a partition is always whole (KIP-74),
//     so a response can exceed MaxBytes by at most that batch.
//   - When fewer than MinBytes came back, no partition failed and MaxWait is
//     not over, the empty partitions park in their actors for the rest of
//     MaxWait; the response goes out when enough bytes arrived, every parked
//     read answered, or the wait passed. Answers that come later are dropped.
//   - Any partition error answers at once, as a Kafka fetch purgatory does.
//   - Fetch sessions (KIP-227) are not kept: a request for a new session is
//     answered with session id 0, which tells the client to send full
//     fetches; an incremental fetch gets FETCH_SESSION_ID_NOT_FOUND.
//   - read_committed equals read_uncommitted: there are no transactions, so
//     the last stable offset is the high watermark.
//   - CurrentLeaderEpoch (v9+) is checked against the partition's lease
//     epoch: FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH when newer.
//
// Version notes:
//   - v4: RecordBatch v2, IsolationLevel, LastStableOffset
//   - v5: LogStartOffset
//   - v7: sessions (answered sessionless)
//   - v9: CurrentLeaderEpoch
//   - v11: Rack (ignored: one broker, no preferred replica)
//   - v12: flexible, LastFetchedEpoch (not checked: the log never diverges)
//   - v13: topics addressed by TopicID
//   - v15-18: replica-only fields (ignored)
var fetchHandler = apiHandler{key: int16(kmsg.Fetch), minVersion: 4, maxVersion: 18, handle: handleFetch}

// maxFetchResponseBytes caps a fetch response whatever the client asks;
// Kafka's fetch.max.bytes default.
const maxFetchResponseBytes = 55 << 20

// fetchItem is one partition of a fetch request.
type fetchItem struct {
	topic     meta.Topic
	partition int32
	offset    int64
	partMax   int
	epoch     int32 // the client's current leader epoch; -1 for none
	out       *kmsg.FetchResponseTopicPartition
	// final is set once the partition has data or an error: nothing more
	// is asked of it.
	final bool
	// hasData is set when a describe showed data past offset.
	hasData bool
}

// fetchReply is an actor's answer for item idx.
type fetchReply struct {
	idx   int
	fetch *actors.FetchResult
	desc  *actors.PartitionState
}

type fetchOp struct {
	s        *Server
	rc       *requestContext
	req      *kmsg.FetchRequest
	resp     *kmsg.FetchResponse
	respond  func(kmsg.Response)
	items    []*fetchItem
	maxBytes int // the response's byte budget
	bytes    int // record bytes gathered
	failed   bool
	deadline time.Time
}

func handleFetch(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	wait := time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond
	if req.SessionEpoch > 0 {
		// We never hand out session ids, so there is no session to continue.
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		respond(resp)
		return
	}
	resp.SessionID = 0

	op := &fetchOp{s: s, rc: rc, req: req, resp: resp, respond: respond, deadline: rc.received.Add(wait)}
	op.maxBytes = maxFetchResponseBytes
	if req.MaxBytes > 0 {
		op.maxBytes = min(int(req.MaxBytes), maxFetchResponseBytes)
	}
	lookup := newTopicLookup(rc.ctx, s)
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		*st = kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		var tr topicResult
		if req.Version >= 13 {
			tr = lookup.id(rt.TopicID)
		} else {
			tr = lookup.name(rt.Topic)
		}
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			// An empty, non-null record set: librdkafka reads a null one
			// as a bad message set size.
			sp.RecordBatches = []byte{}
			if tr.code != 0 {
				setFetchError(sp, tr.code)
				op.failed = true
				continue
			}
			epoch := int32(-1)
			if req.Version >= 9 {
				epoch = rp.CurrentLeaderEpoch
			}
			op.items = append(op.items, &fetchItem{
				topic: tr.topic, partition: rp.Partition, offset: rp.FetchOffset,
				partMax: int(max(rp.PartitionMaxBytes, 0)), epoch: epoch, out: sp,
			})
		}
	}
	if len(req.Topics) == 0 && wait > 0 {
		// Nothing to read: a sessionless client polling with an empty
		// request still waits, so it does not spin.
		time.AfterFunc(wait, func() { respond(resp) })
		return
	}
	go op.run()
}

func setFetchError(p *kmsg.FetchResponseTopicPartition, code int16) {
	p.ErrorCode = code
	p.HighWatermark, p.LastStableOffset, p.LogStartOffset = -1, -1, -1
	p.RecordBatches = []byte{}
}

// left is the response budget not yet used by record bytes.
func (op *fetchOp) left() int { return max(op.maxBytes-op.bytes, 0) }

// run reads, waits if it must, and responds.
func (op *fetchOp) run() {
	defer func() {
		if p := recover(); p != nil {
			op.rc.log.Error("kafka fetch panicked; closing connection", "panic", p)
			op.rc.abort()
		}
	}()
	// Round 1: read every partition within the budget, describe the rest.
	var read, describe []int
	budget := op.left()
	for i := range op.items {
		if budget > 0 {
			read = append(read, i)
			budget -= min(op.items[i].partMax, budget)
		} else {
			describe = append(describe, i)
		}
	}
	ch, n := op.send(read, describe, 0)
	op.collect(ch, n, time.Time{})

	// Round 2: budget left over by empty partitions goes to described
	// partitions that have data, in request order.
	if !op.failed && op.left() > 0 {
		var more []int
		for i, it := range op.items {
			if it.hasData && !it.final {
				more = append(more, i)
			}
		}
		if len(more) > 0 {
			ch, n := op.send(more, nil, 0)
			op.collect(ch, n, time.Time{})
		}
	}

	// Round 3: park the partitions at their end until data or MaxWait.
	wait := time.Until(op.deadline)
	if !op.failed && op.bytes < int(op.req.MinBytes) && wait > 0 && op.rc.ctx.Err() == nil {
		var park []int
		for i, it := range op.items {
			if !it.final && !it.hasData {
				park = append(park, i)
			}
		}
		if len(park) > 0 {
			ch, n := op.send(park, nil, wait)
			op.collect(ch, n, op.deadline)
		}
	}
	op.respond(op.resp)
}

// send asks the actors of the read items for data (parking up to wait),
// each with its share of the budget left, in order, and the describe items
// for their state. Read items past the budget are skipped. Replies go to a
// channel sized for all of them, so an actor never blocks on a reply nobody
// reads any more. It returns the channel and how many replies will come.
func (op *fetchOp) send(read, describe []int, wait time.Duration) (chan fetchReply, int) {
	ch := make(chan fetchReply, len(read)+len(describe))
	sent := 0
	budget := op.left()
	for _, i := range read {
		if budget <= 0 {
			break
		}
		it := op.items[i]
		share := min(it.partMax, budget)
		budget -= share
		sent++
		op.s.broker.Send(it.topic, it.partition, &actors.Fetch{
			Offset:   it.offset,
			MaxBytes: share,
			MaxWait:  wait,
			Reply:    func(r actors.FetchResult) { ch <- fetchReply{idx: i, fetch: &r} },
		})
	}
	for _, i := range describe {
		it := op.items[i]
		sent++
		op.s.broker.Send(it.topic, it.partition, &actors.Describe{
			Reply: func(r actors.PartitionState) { ch <- fetchReply{idx: i, desc: &r} },
		})
	}
	return ch, sent
}

// collect applies n replies from ch. With a deadline it returns early once
// MinBytes are gathered, a partition failed, or the deadline passed.
func (op *fetchOp) collect(ch chan fetchReply, n int, deadline time.Time) {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	for ; n > 0; n-- {
		select {
		case r := <-ch:
			op.apply(r)
			if !deadline.IsZero() && (op.failed || op.bytes >= int(op.req.MinBytes)) {
				return
			}
		case <-timeout:
			return
		case <-op.rc.closing:
			if !deadline.IsZero() {
				return // answer what we have: the server is going away
			}
		case <-op.rc.ctx.Done():
			return
		}
	}
}

// apply records one reply in the response.
func (op *fetchOp) apply(r fetchReply) {
	it := op.items[r.idx]
	p := it.out
	if r.desc != nil {
		d := r.desc
		if d.Err != nil {
			op.fail(it, d.Err)
			return
		}
		if code := epochCheck(it.epoch, d.LeaderEpoch); code != 0 {
			op.failCode(it, code)
			return
		}
		if it.offset < d.LogStartOffset || it.offset > d.HighWatermark {
			op.failCode(it, kerr.OffsetOutOfRange.Code)
			return
		}
		p.HighWatermark, p.LastStableOffset, p.LogStartOffset = d.HighWatermark, d.HighWatermark, d.LogStartOffset
		it.hasData = it.offset < d.HighWatermark
		return
	}
	f := r.fetch
	if f.Err != nil {
		op.fail(it, f.Err)
		return
	}
	if code := epochCheck(it.epoch, f.LeaderEpoch); code != 0 {
		op.failCode(it, code)
		return
	}
	p.HighWatermark, p.LastStableOffset, p.LogStartOffset = f.HighWatermark, f.HighWatermark, f.LogStartOffset
	if len(f.Batches) > 0 {
		p.RecordBatches = f.Batches
		op.bytes += len(f.Batches)
		it.final = true
	}
	it.hasData = false
}

func (op *fetchOp) fail(it *fetchItem, err error) {
	op.s.logUnexpected(err, "fetch", "topic", it.topic.Name, "partition", it.partition)
	op.failCode(it, errorCode(err))
}

func (op *fetchOp) failCode(it *fetchItem, code int16) {
	setFetchError(it.out, code)
	it.final = true
	op.failed = true
}

// epochCheck compares the leader epoch a client believes current with the
// partition's (KIP-320); -1 from the client skips the check.
func epochCheck(client, current int32) int16 {
	switch {
	case client < 0 || current < 0 || client == current:
		return 0
	case client < current:
		return kerr.FencedLeaderEpoch.Code
	default:
		return kerr.UnknownLeaderEpoch.Code
	}
}
