package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// OffsetDelete: v0
//
// Behavior:
//   - An empty group's offsets can all be deleted; a "consumer" group with
//     members keeps the offsets of topics a member subscribes to
//     (GROUP_SUBSCRIBED_TO_TOPIC); a group of another protocol type with
//     members is NON_EMPTY_GROUP; an unknown group GROUP_ID_NOT_FOUND.
//   - A topic or partition that does not exist is
//     UNKNOWN_TOPIC_OR_PARTITION, as in Kafka.
var offsetDeleteHandler = apiHandler{key: int16(kmsg.OffsetDelete), minVersion: 0, maxVersion: 0, handle: handleOffsetDelete}

func handleOffsetDelete(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		return s.offsetDelete(ctx, req)
	})
}

func (s *Server) offsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g := s.groups()
	if g == nil {
		resp.ErrorCode = groupErrorCode(errNoCoordinator)
		return resp
	}
	lookup := newTopicLookup(ctx, s)
	codes := make([][]int16, len(req.Topics))
	dr := actors.DeleteOffsetsRequest{Group: req.Group}
	// sent[i] is the index in dr.Topics of req.Topics[i]'s valid
	// partitions, with their positions in the request.
	type sentTopic struct {
		at    int
		parts []int
	}
	sent := make([]sentTopic, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		sent[i].at = -1
		tr := lookup.name(t.Topic)
		tp := actors.TopicPartitions{Topic: t.Topic}
		for j, p := range t.Partitions {
			switch {
			case tr.code != 0:
				codes[i][j] = tr.code
			case p.Partition < 0 || p.Partition >= tr.topic.Partitions:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			default:
				tp.Partitions = append(tp.Partitions, p.Partition)
				sent[i].parts = append(sent[i].parts, j)
			}
		}
		if len(tp.Partitions) > 0 {
			sent[i].at = len(dr.Topics)
			dr.Topics = append(dr.Topics, tp)
		}
	}
	res, err := actors.Call(ctx, "group coordinator", func(reply func(actors.DeleteOffsetsResult)) { g.DeleteOffsets(dr, reply) })
	if err != nil {
		res.Err = err
	}
	if res.Err != nil {
		resp.ErrorCode = groupErrorCode(res.Err)
		return resp
	}
	for i, t := range req.Topics {
		if at := sent[i].at; at >= 0 && at < len(res.Topics) {
			for k, j := range sent[i].parts {
				if k < len(res.Topics[at]) {
					codes[i][j] = groupErrorCode(res.Topics[at][k])
				}
			}
		}
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
