package kafka

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs: v0-2
//
// Behavior:
//   - TOPIC resources have their overrides replaced by exactly the configs
//     given (configs not named return to their defaults), after the broker
//     validated them (INVALID_CONFIG with its message otherwise). A null
//     value is INVALID_REQUEST, as in Kafka.
//   - ValidateOnly validates and changes nothing.
//   - BROKER configs are read-only (they come from the node's config file):
//     INVALID_CONFIG. Other resource types are INVALID_REQUEST.
//   - A resource named twice is INVALID_REQUEST for each.
//
// Version notes:
//   - v1: same as v0
//   - v2: flexible
var alterConfigsHandler = apiHandler{key: int16(kmsg.AlterConfigs), minVersion: 0, maxVersion: 2, handle: handleAlterConfigs}

// configResourceKey identifies a config resource within one request.
type configResourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

func handleAlterConfigs(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
		seen := map[configResourceKey]int{}
		for _, r := range req.Resources {
			seen[configResourceKey{r.ResourceType, r.ResourceName}]++
		}
		for _, r := range req.Resources {
			rr := kmsg.NewAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			var code int16
			var msg string
			if seen[configResourceKey{r.ResourceType, r.ResourceName}] > 1 {
				code, msg = kerr.InvalidRequest.Code, "Duplicate resource in the request."
			} else {
				code, msg = s.alterConfigs(ctx, r, req.ValidateOnly)
			}
			if code != 0 {
				rr.ErrorCode, rr.ErrorMessage = code, &msg
			}
			resp.Resources = append(resp.Resources, rr)
		}
		return resp
	})
}

func (s *Server) alterConfigs(ctx context.Context, r kmsg.AlterConfigsRequestResource, validateOnly bool) (int16, string) {
	switch r.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		return s.brokerConfigsReadOnly(r.ResourceName)
	default:
		return kerr.InvalidRequest.Code, "Altering configs of this resource type is not supported."
	}
	config := make(map[string]string, len(r.Configs))
	for _, c := range r.Configs {
		if c.Value == nil {
			return kerr.InvalidRequest.Code, fmt.Sprintf("Null value not supported for : %s", c.Name)
		}
		config[c.Name] = *c.Value
	}
	return s.setTopicConfig(ctx, r.ResourceName, config, validateOnly)
}

// brokerConfigsReadOnly refuses a broker config change.
func (s *Server) brokerConfigsReadOnly(name string) (int16, string) {
	if name != "" && name != strconv.Itoa(int(s.brokerID())) {
		return kerr.InvalidRequest.Code, "Unexpected broker id " + name
	}
	return kerr.InvalidConfig.Code, "Broker configs are read-only: set them in the node's config file."
}

// setTopicConfig validates config as a topic's complete set of overrides
// and, unless validateOnly, stores it.
func (s *Server) setTopicConfig(ctx context.Context, topic string, config map[string]string, validateOnly bool) (int16, string) {
	if !validTopicName(topic) {
		return kerr.InvalidTopicException.Code, topicNameError(topic)
	}
	t, err := s.broker.RefreshTopic(ctx, topic)
	if err != nil {
		s.logUnexpected(err, "alter configs", "topic", topic)
		return errorCode(err), *errorMessage(err)
	}
	if err := s.broker.ValidateTopicConfig(t.Kind, config); err != nil {
		return configErrorCode(err), err.Error()
	}
	if validateOnly {
		return 0, ""
	}
	if err := s.broker.SetTopicConfig(ctx, topic, config); err != nil {
		s.logUnexpected(err, "alter configs", "topic", topic)
		return configErrorCode(err), *errorMessage(err)
	}
	s.log.Info("changed topic config", "topic", topic, "config", config, "client", "kafka")
	return 0, ""
}
