package kafka

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs: v0-1
//
// Behavior:
//   - TOPIC resources: SET and DELETE change one override each; APPEND and
//     SUBTRACT add or remove items of a list config (cleanup.policy) and are
//     INVALID_CONFIG for other configs, as in Kafka. The result is validated
//     as a whole (INVALID_CONFIG with the broker's message) and stored unless
//     ValidateOnly.
//   - A config named twice in one resource, or a resource named twice, is
//     INVALID_REQUEST.
//   - BROKER configs are read-only: INVALID_CONFIG. Other resource types
//     are INVALID_REQUEST.
//
// Version notes:
//   - v1: flexible
var incrementalAlterConfigsHandler = apiHandler{key: int16(kmsg.IncrementalAlterConfigs), minVersion: 0, maxVersion: 1, handle: handleIncrementalAlterConfigs}

func handleIncrementalAlterConfigs(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
		seen := map[configResourceKey]int{}
		for _, r := range req.Resources {
			seen[configResourceKey{r.ResourceType, r.ResourceName}]++
		}
		for _, r := range req.Resources {
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			var code int16
			var msg string
			if seen[configResourceKey{r.ResourceType, r.ResourceName}] > 1 {
				code, msg = kerr.InvalidRequest.Code, "Duplicate resource in the request."
			} else {
				code, msg = s.incrementalAlterConfigs(ctx, r, req.ValidateOnly)
			}
			if code != 0 {
				rr.ErrorCode, rr.ErrorMessage = code, &msg
			}
			resp.Resources = append(resp.Resources, rr)
		}
		return resp
	})
}

func (s *Server) incrementalAlterConfigs(ctx context.Context, r kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) (int16, string) {
	switch r.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		return s.brokerConfigsReadOnly(r.ResourceName)
	default:
		return kerr.InvalidRequest.Code, "Altering configs of this resource type is not supported."
	}
	if !validTopicName(r.ResourceName) {
		return kerr.InvalidTopicException.Code, topicNameError(r.ResourceName)
	}
	names := map[string]bool{}
	for _, c := range r.Configs {
		if names[c.Name] {
			return kerr.InvalidRequest.Code, "Error due to duplicate config keys: " + c.Name
		}
		names[c.Name] = true
	}
	t, err := s.broker.RefreshTopic(ctx, r.ResourceName)
	if err != nil {
		s.logUnexpected(err, "incremental alter configs", "topic", r.ResourceName)
		return errorCode(err), *errorMessage(err)
	}
	defaults := s.broker.ConfigDefaults(t.Kind)
	config := maps.Clone(t.Config)
	if config == nil {
		config = map[string]string{}
	}
	for _, c := range r.Configs {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return kerr.InvalidRequest.Code, "Null value not supported for : " + c.Name
			}
			config[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(config, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if topicConfigInfo(c.Name).typ != kmsg.ConfigTypeList {
				return kerr.InvalidConfig.Code, "Config value append is not allowed for config key: " + c.Name
			}
			cur, ok := config[c.Name]
			if !ok {
				cur = defaults[c.Name]
			}
			var add []string
			if c.Value != nil {
				add = splitList(*c.Value)
			}
			items := splitList(cur)
			if c.Op == kmsg.IncrementalAlterConfigOpAppend {
				for _, v := range add {
					if !slices.Contains(items, v) {
						items = append(items, v)
					}
				}
			} else {
				items = slices.DeleteFunc(items, func(v string) bool { return slices.Contains(add, v) })
			}
			config[c.Name] = strings.Join(items, ",")
		default:
			return kerr.InvalidRequest.Code, "Unknown config operation."
		}
	}
	return s.setTopicConfig(ctx, r.ResourceName, config, validateOnly)
}

// splitList splits a list config value ("a,b") into trimmed, non-empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
