package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// ListOffsets: v1-10
//
// Behavior:
//   - Timestamps -1 (latest: the high watermark; also the last stable offset
//     for read_committed, as there are no transactions), -2 (earliest: the
//     log start), -3 (v7+: the record with the largest timestamp) and any
//     timestamp >= 0 (the first offset whose timestamp is at or after it;
//     offset -1 when none) are answered by the partition actor.
//   - -4 (v8+, earliest local) is the log start: every byte is "local" in
//     the sense Kafka means, since there is no tiering. -5 (v9+, latest
//     tiered) answers offset -1 as Kafka does for a topic without tiered
//     storage. Other negative timestamps are INVALID_REQUEST.
//   - CurrentLeaderEpoch (v4+) is checked against the lease epoch.
//
// Version notes:
//   - v0 (old-style offset lists) is not served; Kafka 4 dropped it too.
//   - v2: IsolationLevel
//   - v4: CurrentLeaderEpoch, LeaderEpoch
//   - v6: flexible
//   - v7: max timestamp (-3)
//   - v8: earliest local (-4); v9: latest tiered (-5)
//   - v10: TimeoutMillis (answers never wait, so it is moot)
var listOffsetsHandler = apiHandler{key: int16(kmsg.ListOffsets), minVersion: 1, maxVersion: 10, handle: handleListOffsets}

// Special timestamps beyond the actors' three.
const (
	earliestLocalTimestamp int64 = -4
	latestTieredTimestamp  int64 = -5
)

func handleListOffsets(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	lookup := newTopicLookup(rc.ctx, s)

	type work struct {
		tr    topicResult
		p     int32
		ts    int64
		epoch int32
		out   *kmsg.ListOffsetsResponseTopicPartition
	}
	var works []work
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		*st = kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		tr := lookup.name(rt.Topic)
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			*sp = kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
			ts := rp.Timestamp
			switch {
			case tr.code != 0:
				sp.ErrorCode = tr.code
				continue
			case ts == earliestLocalTimestamp && req.Version >= 8:
				ts = actors.EarliestTimestamp
			case ts == latestTieredTimestamp && req.Version >= 9:
				continue // offset -1: nothing is tiered
			case ts == actors.MaxTimestamp && req.Version >= 7:
			case ts == actors.LatestTimestamp, ts == actors.EarliestTimestamp, ts >= 0:
			default:
				sp.ErrorCode = kerr.InvalidRequest.Code
				continue
			}
			epoch := int32(-1)
			if req.Version >= 4 {
				epoch = rp.CurrentLeaderEpoch
			}
			works = append(works, work{tr: tr, p: rp.Partition, ts: ts, epoch: epoch, out: sp})
		}
	}
	g := newGather(len(works), s.replyTimeout(),
		func(i int) { works[i].out.ErrorCode = kerr.RequestTimedOut.Code },
		func() { respond(resp) })
	for i, w := range works {
		s.broker.Send(w.tr.topic, w.p, &actors.ListOffsets{
			Timestamp: w.ts,
			Reply: func(r actors.OffsetResult) {
				g.answer(i, func() {
					if r.Err != nil {
						s.logUnexpected(r.Err, "list offsets", "topic", w.tr.topic.Name, "partition", w.p)
						w.out.ErrorCode = errorCode(r.Err)
						return
					}
					if code := epochCheck(w.epoch, r.LeaderEpoch); code != 0 {
						w.out.ErrorCode = code
						return
					}
					w.out.Offset, w.out.Timestamp, w.out.LeaderEpoch = r.Offset, r.Timestamp, r.LeaderEpoch
				})
			},
		})
	}
}
