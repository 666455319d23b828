package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// DeleteTopics: v0-6
//
// Behavior:
//   - Each topic is deleted through the broker, which stops its partition
//     actors, removes its metadata and then its objects.
//   - An unknown name is UNKNOWN_TOPIC_OR_PARTITION, an unknown id (v6+)
//     UNKNOWN_TOPIC_ID; a v6 entry with both a name and an id is
//     INVALID_REQUEST, as in Kafka.
//
// Version notes:
//   - v0 is served although Kafka 4 dropped it: older clients send it, and
//     it lacks only ThrottleMillis.
//   - v1: ThrottleMillis
//   - v4: flexible
//   - v5: ErrorMessage
//   - v6: topics by name or id
var deleteTopicsHandler = apiHandler{key: int16(kmsg.DeleteTopics), minVersion: 0, maxVersion: 6, handle: handleDeleteTopics}

func handleDeleteTopics(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
		topics := req.Topics
		if req.Version < 6 {
			topics = make([]kmsg.DeleteTopicsRequestTopic, 0, len(req.TopicNames))
			for _, name := range req.TopicNames {
				t := kmsg.NewDeleteTopicsRequestTopic()
				t.Topic = strPtr(name)
				topics = append(topics, t)
			}
		}
		for _, rt := range topics {
			st := kmsg.NewDeleteTopicsResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			code, msg := s.deleteTopic(ctx, rt)
			st.ErrorCode = code
			if code != 0 && req.Version >= 5 {
				st.ErrorMessage = msg
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})
}

func (s *Server) deleteTopic(ctx context.Context, rt kmsg.DeleteTopicsRequestTopic) (int16, *string) {
	hasID := rt.TopicID != [16]byte{}
	var name string
	switch {
	case rt.Topic != nil && hasID:
		return kerr.InvalidRequest.Code, strPtr("Topic name and topic id cannot both be set.")
	case hasID:
		t, err := s.broker.TopicByID(ctx, actors.TopicID(rt.TopicID))
		if err != nil {
			code := errorCode(err)
			if code == kerr.UnknownTopicOrPartition.Code {
				code = kerr.UnknownTopicID.Code
			}
			s.logUnexpected(err, "delete topic by id")
			return code, errorMessage(err)
		}
		name = t.Name
	case rt.Topic != nil:
		name = *rt.Topic
	default:
		return kerr.InvalidRequest.Code, strPtr("A topic name or id is required.")
	}
	if !validTopicName(name) {
		return kerr.UnknownTopicOrPartition.Code, strPtr(topicNameError(name))
	}
	if err := s.broker.DeleteTopic(ctx, name); err != nil {
		s.logUnexpected(err, "delete topic", "topic", name)
		return errorCode(err), errorMessage(err)
	}
	s.log.Info("deleted topic", "topic", name, "client", "kafka")
	return 0, nil
}
