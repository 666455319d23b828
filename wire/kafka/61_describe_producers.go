package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// DescribeProducers: v0
//
// Behavior:
//   - Lists the idempotent producers each partition actor tracks, with the
//     last sequence and timestamp of each one's newest batch. There are no
//     transactions, so coordinator epoch and transaction start are -1.
var describeProducersHandler = apiHandler{key: int16(kmsg.DescribeProducers), minVersion: 0, maxVersion: 0, handle: handleDescribeProducers}

func handleDescribeProducers(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	lookup := newTopicLookup(rc.ctx, s)
	type work struct {
		tr  topicResult
		p   int32
		out *kmsg.DescribeProducersResponseTopicPartition
	}
	var works []work
	resp.Topics = make([]kmsg.DescribeProducersResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		*st = kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DescribeProducersResponseTopicPartition, len(rt.Partitions))
		tr := lookup.name(rt.Topic)
		for pi, p := range rt.Partitions {
			sp := &st.Partitions[pi]
			*sp = kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = p
			if tr.code != 0 {
				sp.ErrorCode = tr.code
				continue
			}
			works = append(works, work{tr: tr, p: p, out: sp})
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
						s.logUnexpected(st.Err, "describe producers", "topic", w.tr.topic.Name, "partition", w.p)
						w.out.ErrorCode = errorCode(st.Err)
						w.out.ErrorMessage = errorMessage(st.Err)
						return
					}
					for _, ps := range st.Producers {
						ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
						ap.ProducerID, ap.ProducerEpoch = ps.ProducerID, int32(ps.ProducerEpoch)
						ap.LastSequence, ap.LastTimestamp = -1, ps.LastUpdate
						if n := len(ps.Batches); n > 0 {
							last := ps.Batches[n-1]
							ap.LastSequence, ap.LastTimestamp = last.LastSeq, last.Timestamp
						}
						ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1
						w.out.ActiveProducers = append(w.out.ActiveProducers, ap)
					}
				})
			},
		})
	}
}
