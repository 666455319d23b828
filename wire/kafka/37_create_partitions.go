package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// CreatePartitions: v0-3
//
// Behavior:
//   - Grows a topic to Count partitions. A count not above the current one
//     is INVALID_PARTITIONS, as in Kafka.
//   - An assignment, when given, must name one replica list per new
//     partition (INVALID_REPLICA_ASSIGNMENT otherwise); the replicas
//     themselves are ignored, as object storage replicates.
//   - ValidateOnly checks and changes nothing. A topic named twice is
//     INVALID_REQUEST.
//
// Version notes:
//   - v1: same as v0
//   - v2: flexible
//   - v3: same as v2
var createPartitionsHandler = apiHandler{key: int16(kmsg.CreatePartitions), minVersion: 0, maxVersion: 3, handle: handleCreatePartitions}

func handleCreatePartitions(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
		seen := map[string]int{}
		for _, rt := range req.Topics {
			seen[rt.Topic]++
		}
		for _, rt := range req.Topics {
			st := kmsg.NewCreatePartitionsResponseTopic()
			st.Topic = rt.Topic
			var code int16
			var msg string
			if seen[rt.Topic] > 1 {
				code, msg = kerr.InvalidRequest.Code, "Duplicate topic in the request."
			} else {
				code, msg = s.createPartitions(ctx, rt, req.ValidateOnly)
			}
			if code != 0 {
				st.ErrorCode, st.ErrorMessage = code, &msg
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})
}

func (s *Server) createPartitions(ctx context.Context, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) (int16, string) {
	if !validTopicName(rt.Topic) {
		return kerr.UnknownTopicOrPartition.Code, topicNameError(rt.Topic)
	}
	t, err := s.broker.RefreshTopic(ctx, rt.Topic)
	if err != nil {
		s.logUnexpected(err, "create partitions", "topic", rt.Topic)
		return errorCode(err), *errorMessage(err)
	}
	if rt.Count <= t.Partitions {
		return kerr.InvalidPartitions.Code, fmt.Sprintf("Topic currently has %d partitions, which is higher than the requested %d.", t.Partitions, rt.Count)
	}
	if rt.Assignment != nil && len(rt.Assignment) != int(rt.Count-t.Partitions) {
		return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("Increasing the number of partitions by %d but %d assignments provided.", rt.Count-t.Partitions, len(rt.Assignment))
	}
	if validateOnly {
		return 0, ""
	}
	if err := s.broker.AddPartitions(ctx, rt.Topic, rt.Count); err != nil {
		s.logUnexpected(err, "create partitions", "topic", rt.Topic)
		code := errorCode(err)
		if errors.Is(err, actors.ErrInvalidArgument) {
			code = kerr.InvalidPartitions.Code
		}
		return code, *errorMessage(err)
	}
	s.log.Info("added partitions", "topic", rt.Topic, "partitions", rt.Count, "client", "kafka")
	return 0, ""
}
