package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

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
//   - The limits of CreateTopics apply (actors.Limits): a request naming
//     more than max_topics_per_request topics is POLICY_VIOLATION for
//     each; a count over max_partitions_per_topic is INVALID_PARTITIONS; a
//     cluster that would hold more than max_cluster_partitions is
//     POLICY_VIOLATION; each growth takes one creation from the node's
//     rate, past which it is THROTTLING_QUOTA_EXCEEDED (v3; POLICY_VIOLATION
//     before) with ThrottleMillis set (KIP-599).
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
		tooMany := s.broker.CheckCreateRequest(len(req.Topics))
		for _, rt := range req.Topics {
			st := kmsg.NewCreatePartitionsResponseTopic()
			st.Topic = rt.Topic
			var code int16
			var msg string
			switch {
			case tooMany != nil:
				code, msg = kerr.PolicyViolation.Code, tooMany.Error()
			case seen[rt.Topic] > 1:
				code, msg = kerr.InvalidRequest.Code, "Duplicate topic in the request."
			default:
				var wait time.Duration
				code, msg, wait = s.createPartitions(ctx, rt, req.ValidateOnly, req.Version)
				resp.ThrottleMillis = throttleMillis(resp.ThrottleMillis, wait)
			}
			if code != 0 {
				st.ErrorCode, st.ErrorMessage = code, &msg
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})
}

// createPartitions grows (or validates growing) one topic. wait is how
// long the client should hold off creating again, when the node's creation
// rate refused it.
func (s *Server) createPartitions(ctx context.Context, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool, version int16) (code int16, msg string, wait time.Duration) {
	if !validTopicName(rt.Topic) {
		return kerr.UnknownTopicOrPartition.Code, topicNameError(rt.Topic), 0
	}
	t, err := s.broker.RefreshTopic(ctx, rt.Topic)
	if err != nil {
		s.logUnexpected(err, "create partitions", "topic", rt.Topic)
		return errorCode(err), *errorMessage(err), 0
	}
	if rt.Count <= t.Partitions {
		return kerr.InvalidPartitions.Code, fmt.Sprintf("Topic currently has %d partitions, which is higher than the requested %d.", t.Partitions, rt.Count), 0
	}
	if err := s.broker.CheckTopicPartitions(rt.Count); err != nil {
		return kerr.InvalidPartitions.Code, err.Error(), 0
	}
	if rt.Assignment != nil && len(rt.Assignment) != int(rt.Count-t.Partitions) {
		return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("Increasing the number of partitions by %d but %d assignments provided.", rt.Count-t.Partitions, len(rt.Assignment)), 0
	}
	if validateOnly {
		return 0, "", 0
	}
	if err := s.broker.AddPartitions(ctx, rt.Topic, rt.Count); err != nil {
		s.logUnexpected(err, "create partitions", "topic", rt.Topic)
		code := createErrorCode(err, version, 3)
		if errors.Is(err, actors.ErrInvalidArgument) {
			code = kerr.InvalidPartitions.Code
		}
		return code, *errorMessage(err), actors.ThrottleWait(err)
	}
	s.log.Info("added partitions", "topic", rt.Topic, "partitions", rt.Count, "client", "kafka")
	return 0, "", 0
}
