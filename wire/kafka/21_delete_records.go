package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// DeleteRecords: v0-2
//
// Behavior:
//   - Each partition's log start is advanced by its actor (offset -1 means
//     the high watermark); segments wholly below it are deleted. The new
//     log start is returned as the low watermark.
//   - An offset past the high watermark is OFFSET_OUT_OF_RANGE; an offset
//     below the current log start leaves it where it is.
//
// Version notes:
//   - v1: same as v0 (Kafka bumped it for throttling behaviour)
//   - v2: flexible
var deleteRecordsHandler = apiHandler{key: int16(kmsg.DeleteRecords), minVersion: 0, maxVersion: 2, handle: handleDeleteRecords}

func handleDeleteRecords(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	lookup := newTopicLookup(rc.ctx, s)
	type work struct {
		tr     topicResult
		p      int32
		offset int64
		out    *kmsg.DeleteRecordsResponseTopicPartition
	}
	var works []work
	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		*st = kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
		tr := lookup.name(rt.Topic)
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			*sp = kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			if tr.code != 0 {
				sp.ErrorCode = tr.code
				continue
			}
			works = append(works, work{tr: tr, p: rp.Partition, offset: rp.Offset, out: sp})
		}
	}
	g := newGather(len(works), s.replyTimeout(),
		func(i int) { works[i].out.ErrorCode = kerr.RequestTimedOut.Code },
		func() { respond(resp) })
	for i, w := range works {
		s.broker.Send(w.tr.topic, w.p, &actors.Trim{
			Offset: w.offset,
			Reply: func(r actors.TrimResult) {
				g.answer(i, func() {
					if r.Err != nil {
						s.logUnexpected(r.Err, "delete records", "topic", w.tr.topic.Name, "partition", w.p)
						w.out.ErrorCode = errorCode(r.Err)
						return
					}
					w.out.LowWatermark = r.LogStartOffset
				})
			},
		})
	}
}
