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

// CreateTopics: v0-7
//
// Behavior:
//   - Names are checked as Kafka checks them (INVALID_TOPIC_EXCEPTION); a
//     name given twice in one request is INVALID_REQUEST for each.
//   - NumPartitions -1 (v4+) takes the server's default partition count;
//     0 or below -1 is INVALID_PARTITIONS. With a manual replica assignment
//     the partition count is the assignment's length (replicas are ignored:
//     object storage replicates).
//   - Any replication factor of 1 or more (or -1) is accepted, since
//     durability comes from object storage; topics report factor 1, as
//     Metadata lists one replica per partition.
//   - Configs are validated by the broker (unknown keys, ranges,
//     cleanup.policy=compact refused until compaction exists): INVALID_CONFIG
//     with the broker's message.
//   - ValidateOnly checks everything, existence included, and creates
//     nothing.
//   - Limits (actors.Limits, config [limits]): a request naming more than
//     max_topics_per_request topics is refused whole, POLICY_VIOLATION for
//     each; more partitions than max_partitions_per_topic is
//     INVALID_PARTITIONS; a cluster that would hold more than
//     max_cluster_partitions is POLICY_VIOLATION; past the node's creation
//     rate, topics are refused with THROTTLING_QUOTA_EXCEEDED (v6+;
//     POLICY_VIOLATION before) and ThrottleMillis says when to retry
//     (KIP-599).
//
// Version notes:
//   - v0-1 are served although Kafka 4 dropped them: kafka-go's Conn still
//     sends them, and they differ from v2 only in fields left out.
//   - v1: ValidateOnly, ErrorMessage
//   - v2: ThrottleMillis
//   - v4: NumPartitions and ReplicationFactor may be -1
//   - v5: flexible; the response carries the partition count, replication
//     factor and configs of the created topic
//   - v7: TopicID
var createTopicsHandler = apiHandler{key: int16(kmsg.CreateTopics), minVersion: 0, maxVersion: 7, handle: handleCreateTopics}

func handleCreateTopics(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		seen := map[string]int{}
		for _, rt := range req.Topics {
			seen[rt.Topic]++
		}
		tooMany := s.broker.CheckCreateRequest(len(req.Topics))
		if tooMany != nil {
			s.log.Info("refused a CreateTopics request naming too many topics", "topics", len(req.Topics), "limit", s.broker.Limits().MaxTopicsPerRequest)
		}
		for _, rt := range req.Topics {
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic = rt.Topic
			switch {
			case tooMany != nil:
				st.ErrorCode, st.ErrorMessage = kerr.PolicyViolation.Code, strPtr(tooMany.Error())
			case seen[rt.Topic] > 1:
				st.ErrorCode = kerr.InvalidRequest.Code
				st.ErrorMessage = strPtr("Duplicate topic name " + rt.Topic + " in the request.")
			default:
				wait := s.createTopic(ctx, req, rt, &st)
				resp.ThrottleMillis = throttleMillis(resp.ThrottleMillis, wait)
			}
			if st.ErrorCode != 0 {
				st.NumPartitions, st.ReplicationFactor = -1, -1
				st.Configs = nil
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})
}

// createTopic creates (or validates) one topic and fills its response. It
// returns how long the client should wait before creating again, when the
// node's creation rate refused the topic.
func (s *Server) createTopic(ctx context.Context, req *kmsg.CreateTopicsRequest, rt kmsg.CreateTopicsRequestTopic, st *kmsg.CreateTopicsResponseTopic) (throttle time.Duration) {
	fail := func(code int16, msg string) {
		st.ErrorCode = code
		st.ErrorMessage = &msg
	}
	if !validTopicName(rt.Topic) {
		fail(kerr.InvalidTopicException.Code, topicNameError(rt.Topic))
		return
	}
	partitions := rt.NumPartitions
	switch {
	case len(rt.ReplicaAssignment) > 0:
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			fail(kerr.InvalidRequest.Code, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.")
			return
		}
		partitions = int32(len(rt.ReplicaAssignment))
	case partitions == -1:
		partitions = s.cfg.DefaultPartitions
	case partitions <= 0:
		fail(kerr.InvalidPartitions.Code, "Number of partitions must be larger than 0.")
		return
	}
	if err := s.broker.CheckTopicPartitions(partitions); err != nil {
		fail(kerr.InvalidPartitions.Code, err.Error())
		return
	}
	if rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1 {
		fail(kerr.InvalidReplicationFactor.Code, "Replication factor must be larger than 0, or -1 to use the default value.")
		return
	}
	config := make(map[string]string, len(rt.Configs))
	for _, c := range rt.Configs {
		if c.Value == nil {
			fail(kerr.InvalidConfig.Code, fmt.Sprintf("Null value not supported for topic configs: %s", c.Name))
			return
		}
		config[c.Name] = *c.Value
	}
	if err := s.broker.ValidateTopicConfig(actors.KindKafka, config); err != nil {
		fail(configErrorCode(err), err.Error())
		return
	}
	t := actors.Topic{Name: rt.Topic, Kind: actors.KindKafka, Partitions: partitions, Config: config}
	if req.ValidateOnly {
		_, err := s.broker.RefreshTopic(ctx, rt.Topic)
		switch {
		case err == nil:
			fail(kerr.TopicAlreadyExists.Code, fmt.Sprintf("Topic '%s' already exists.", rt.Topic))
			return
		case !errors.Is(err, actors.ErrUnknownTopic):
			s.logUnexpected(err, "create topic (validate only)", "topic", rt.Topic)
			fail(errorCode(err), *errorMessage(err))
			return
		}
	} else {
		created, err := s.broker.CreateTopic(ctx, t)
		if err != nil {
			s.logUnexpected(err, "create topic", "topic", rt.Topic)
			code := createErrorCode(err, req.Version, 6)
			if errors.Is(err, actors.ErrInvalidArgument) {
				code = kerr.InvalidConfig.Code
			}
			if errors.Is(err, actors.ErrTopicExists) {
				fail(code, fmt.Sprintf("Topic '%s' already exists.", rt.Topic))
			} else {
				fail(code, *errorMessage(err))
			}
			return actors.ThrottleWait(err)
		}
		t = created
		s.log.Info("created topic", "topic", t.Name, "partitions", t.Partitions, "client", "kafka")
	}
	st.TopicID = t.ID
	st.NumPartitions = t.Partitions
	st.ReplicationFactor = 1
	for _, c := range s.topicConfigs(t, nil, false, false) {
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		rc.Name, rc.Value, rc.ReadOnly, rc.IsSensitive = c.Name, c.Value, c.ReadOnly, c.IsSensitive
		rc.Source = int8(c.Source)
		st.Configs = append(st.Configs, rc)
	}
	return 0
}

// configErrorCode is the code for a rejected topic config.
func configErrorCode(err error) int16 {
	if errors.Is(err, actors.ErrInvalidArgument) {
		return kerr.InvalidConfig.Code
	}
	return errorCode(err)
}
