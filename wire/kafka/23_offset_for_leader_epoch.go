package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// OffsetForLeaderEpoch: v0-4
//
// Behavior:
//   - Consumers ask for the end offset of the last leader epoch they read,
//     to detect log truncation after a leader change (KIP-320). A Morax log
//     is never truncated (offsets are committed before they are readable
//     and never change), so the answer is the requested epoch with the high
//     watermark as its end: never below anything a consumer has read, so
//     truncation is never reported. An epoch newer than the partition's, or
//     -1, gets epoch -1 and offset -1, as Kafka answers an unknown epoch.
//   - CurrentLeaderEpoch is checked against the lease epoch
//     (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
//
// Version notes:
//   - v0-1 are served although Kafka 4 dropped them: older consumers send
//     them, and they only lack fields (the answer's epoch before v1).
//   - v1: LeaderEpoch in the response
//   - v2: CurrentLeaderEpoch, ThrottleMillis
//   - v3: ReplicaID
//   - v4: flexible
var offsetForLeaderEpochHandler = apiHandler{key: int16(kmsg.OffsetForLeaderEpoch), minVersion: 0, maxVersion: 4, handle: handleOffsetForLeaderEpoch}

func handleOffsetForLeaderEpoch(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	lookup := newTopicLookup(rc.ctx, s)
	type work struct {
		tr             topicResult
		p              int32
		current, asked int32
		out            *kmsg.OffsetForLeaderEpochResponseTopicPartition
	}
	var works []work
	resp.Topics = make([]kmsg.OffsetForLeaderEpochResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		*st = kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, len(rt.Partitions))
		tr := lookup.name(rt.Topic)
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			*sp = kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, -1, -1
			if tr.code != 0 {
				sp.ErrorCode = tr.code
				continue
			}
			works = append(works, work{tr: tr, p: rp.Partition, current: rp.CurrentLeaderEpoch, asked: rp.LeaderEpoch, out: sp})
		}
	}
	g := newGather(len(works), s.replyTimeout(),
		func(i int) { works[i].out.ErrorCode = kerr.RequestTimedOut.Code },
		func() { respond(resp) })
	for i, w := range works {
		s.broker.Send(w.tr.topic, w.p, &actors.Describe{
			Reply: func(st actors.PartitionState) {
				g.answer(i, func() {
					if st.Err != nil {
						s.logUnexpected(st.Err, "offset for leader epoch", "topic", w.tr.topic.Name, "partition", w.p)
						w.out.ErrorCode = errorCode(st.Err)
						return
					}
					if code := epochCheck(w.current, st.LeaderEpoch); code != 0 {
						w.out.ErrorCode = code
						return
					}
					if w.asked < 0 || w.asked > st.LeaderEpoch {
						return // unknown epoch: -1, -1
					}
					w.out.LeaderEpoch, w.out.EndOffset = w.asked, st.HighWatermark
				})
			},
		})
	}
}
