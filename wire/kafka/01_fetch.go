package kafka

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/segment"
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
//     not over, every partition with budget left parks in its actor at the
//     offset after what it returned; a parked read that wakes with data
//     parks again after it. The response goes out once MinBytes arrived,
//     MaxWait passed, or the server starts closing. Answers that come later
//     are dropped.
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
	topic     actors.Topic
	partition int32
	offset    int64
	partMax   int
	epoch     int32 // the client's current leader epoch; -1 for none
	out       *kmsg.FetchResponseTopicPartition
	// failed is set once the partition has an error: nothing more is asked
	// of it.
	failed bool
	// got is the record bytes gathered for the partition, and next the
	// offset after them (where a parked read continues).
	got  int
	next int64
	// waiting is set when a describe showed data past offset that the
	// budget did not cover yet.
	waiting bool
}

// share is how many more bytes the partition may take, within both its own
// limit and what is left of the response's.
func (op *fetchOp) share(it *fetchItem, budget int) int {
	return max(min(it.partMax-it.got, budget), 0)
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
				topic: tr.topic, partition: rp.Partition, offset: rp.FetchOffset, next: rp.FetchOffset,
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
	for i, it := range op.items {
		if budget > 0 {
			read = append(read, i)
			budget -= op.share(it, budget)
		} else {
			describe = append(describe, i)
		}
	}
	op.collect(op.send(read, describe))

	// Round 2: budget left over by empty partitions goes to described
	// partitions that have data, in request order.
	if !op.failed && op.left() > 0 {
		var more []int
		for i, it := range op.items {
			if it.waiting && !it.failed {
				more = append(more, i)
			}
		}
		if len(more) > 0 {
			op.collect(op.send(more, nil))
		}
	}

	if !op.failed && op.bytes < int(op.req.MinBytes) && time.Until(op.deadline) > 0 && op.rc.ctx.Err() == nil {
		op.park()
	}
	op.respond(op.resp)
}

// send asks the actors of the read items for data, each with its share of
// the budget left, in order, and the describe items for their state. Read
// items past the budget are skipped. Replies go to a channel sized for all
// of them, so an actor never blocks on a reply nobody reads any more. It
// returns the channel and the items asked.
func (op *fetchOp) send(read, describe []int) (chan fetchReply, []int) {
	ch := make(chan fetchReply, len(read)+len(describe))
	var sent []int
	budget := op.left()
	for _, i := range read {
		it := op.items[i]
		share := op.share(it, budget)
		if budget <= 0 {
			break
		}
		budget -= share
		sent = append(sent, i)
		op.s.broker.Send(it.topic, it.partition, &actors.Fetch{
			Offset:   it.next,
			MaxBytes: share,
			Reply:    func(r actors.FetchResult) { ch <- fetchReply{idx: i, fetch: &r} },
		})
	}
	for _, i := range describe {
		it := op.items[i]
		sent = append(sent, i)
		op.s.broker.Send(it.topic, it.partition, &actors.Describe{
			Reply: func(r actors.PartitionState) { ch <- fetchReply{idx: i, desc: &r} },
		})
	}
	return ch, sent
}

// collect applies the replies of the items asked. An actor answers a read
// that does not park at once, so only a lost answer makes it wait long:
// past replyTimeout those items get REQUEST_TIMED_OUT (retriable) rather
// than holding up every response behind this one.
func (op *fetchOp) collect(ch chan fetchReply, asked []int) {
	t := time.NewTimer(op.s.replyTimeout())
	defer t.Stop()
	answered := make(map[int]bool, len(asked))
	for len(answered) < len(asked) {
		select {
		case r := <-ch:
			answered[r.idx] = true
			op.apply(r)
		case <-t.C:
			for _, i := range asked {
				if !answered[i] {
					op.failCode(op.items[i], kerr.RequestTimedOut.Code)
				}
			}
			return
		case <-op.rc.ctx.Done():
			return
		}
	}
}

// park waits for MinBytes: every partition with budget left parks in its
// actor at the offset after what it returned, until MaxWait. A partition
// whose read comes back with data parks again after it, so bytes keep
// accumulating until MinBytes, MaxWait, an error, or the server closing.
//
// Each partition has at most one read out at a time, so a channel with a
// slot per partition never blocks an actor, even for answers that arrive
// after the response went out (they are dropped with the channel).
func (op *fetchOp) park() {
	ch := make(chan fetchReply, len(op.items))
	out := map[int]bool{}
	parkOne := func(i int) {
		it := op.items[i]
		wait := time.Until(op.deadline)
		share := op.share(it, op.left())
		if it.failed || share <= 0 || wait <= 0 {
			return
		}
		out[i] = true
		op.s.broker.Send(it.topic, it.partition, &actors.Fetch{
			Offset:   it.next,
			MaxBytes: share,
			MaxWait:  wait,
			Reply:    func(r actors.FetchResult) { ch <- fetchReply{idx: i, fetch: &r} },
		})
	}
	for i := range op.items {
		parkOne(i)
	}
	// The actors end each parked read at MaxWait; the timer is the backstop
	// for an answer that never comes.
	t := time.NewTimer(time.Until(op.deadline) + 100*time.Millisecond)
	defer t.Stop()
	for len(out) > 0 {
		select {
		case r := <-ch:
			delete(out, r.idx)
			before := op.items[r.idx].got
			op.apply(r)
			if op.failed || op.bytes >= int(op.req.MinBytes) {
				return
			}
			if op.items[r.idx].got > before {
				parkOne(r.idx)
			}
		case <-t.C:
			return
		case <-op.rc.closing:
			return // answer what we have: the server is going away
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
		it.waiting = it.offset < d.HighWatermark
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
	it.waiting = false
	if len(f.Batches) == 0 {
		return
	}
	next, ok := nextOffset(f.Batches)
	if !ok {
		// Not whole batches: hand them over as they are (the client
		// reports the corruption) but read no further after them.
		next = -1
	}
	if len(p.RecordBatches) == 0 {
		p.RecordBatches = f.Batches
	} else {
		// Clip: the first answer may share a partition actor's cached,
		// immutable bytes, which an append must not write into.
		p.RecordBatches = append(slices.Clip(p.RecordBatches), f.Batches...)
	}
	op.bytes += len(f.Batches)
	it.got += len(f.Batches)
	if next < 0 {
		it.got = it.partMax // no budget: never asked again
	} else {
		it.next = next
	}
}

// nextOffset returns the offset after the last batch in b.
func nextOffset(b []byte) (int64, bool) {
	var last segment.BatchHeader
	n := 0
	for batch, err := range segment.Batches(b) {
		if err != nil {
			return 0, false
		}
		h, err := segment.ParseHeader(batch)
		if err != nil {
			return 0, false
		}
		last, n = h, n+1
	}
	return last.LastOffset() + 1, n > 0
}

func (op *fetchOp) fail(it *fetchItem, err error) {
	op.s.logUnexpected(err, "fetch", "topic", it.topic.Name, "partition", it.partition)
	op.failCode(it, errorCode(err))
}

func (op *fetchOp) failCode(it *fetchItem, code int16) {
	if it.got > 0 {
		op.bytes -= it.got
		it.got = 0
	}
	setFetchError(it.out, code)
	it.failed = true
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
