package kafka

import (
	"context"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// DescribeConfigs: v0-4
//
// Behavior:
//   - TOPIC resources list every topic config Morax understands: overrides
//     with source DYNAMIC_TOPIC_CONFIG, the rest with their defaults and
//     source DEFAULT_CONFIG. ConfigNames filters (unknown names are left
//     out, as in Kafka); synonyms and documentation are sent when asked.
//   - BROKER resources (name "" or this broker's id) list the read-only
//     broker settings clients and tools look for.
//   - Other resource types are INVALID_REQUEST.
//
// Version notes:
//   - v0 is served although Kafka 4 dropped it: IsDefault stands in for
//     Source, and both are always filled in.
//   - v1: IncludeSynonyms, Source
//   - v3: IncludeDocumentation, ConfigType
//   - v4: flexible
var describeConfigsHandler = apiHandler{key: int16(kmsg.DescribeConfigs), minVersion: 0, maxVersion: 4, handle: handleDescribeConfigs}

// configInfo describes a config key for DescribeConfigs.
type configInfo struct {
	typ kmsg.ConfigType
	doc string
}

// topicConfigInfo describes the topic configs the broker understands; an
// unknown key is a plain string.
func topicConfigInfo(key string) configInfo {
	switch key {
	case actors.ConfigRetentionMs:
		return configInfo{kmsg.ConfigTypeLong, "The longest time a record is kept before its segment may be deleted; -1 keeps records forever."}
	case actors.ConfigRetentionBytes:
		return configInfo{kmsg.ConfigTypeLong, "The largest size a partition may grow to before its oldest segments are deleted; -1 means no size limit."}
	case actors.ConfigMaxMessageBytes:
		return configInfo{kmsg.ConfigTypeInt, "The largest record batch the topic accepts."}
	case actors.ConfigCleanupPolicy:
		return configInfo{kmsg.ConfigTypeList, "The retention policy of old segments; only \"delete\" is supported."}
	case actors.ConfigTimestampType:
		return configInfo{kmsg.ConfigTypeString, "CreateTime keeps the producer's timestamps; LogAppendTime stamps records with the broker's time when they are appended."}
	case actors.ConfigFlushMs:
		return configInfo{kmsg.ConfigTypeLong, "How long an append may wait for others to share its segment object before it is uploaded."}
	default:
		return configInfo{typ: kmsg.ConfigTypeString}
	}
}

func handleDescribeConfigs(s *Server, rc *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	goRespond(rc, respond, func(ctx context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, r := range req.Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			switch r.ResourceType {
			case kmsg.ConfigResourceTypeTopic:
				s.describeTopicConfigs(ctx, req, r, &rr)
			case kmsg.ConfigResourceTypeBroker:
				if r.ResourceName != "" && r.ResourceName != strconv.Itoa(int(s.brokerID())) {
					rr.ErrorCode = kerr.InvalidRequest.Code
					rr.ErrorMessage = strPtr("Unexpected broker id, expected " + strconv.Itoa(int(s.brokerID())) + " or empty string, but received " + r.ResourceName)
					break
				}
				rr.Configs = filterConfigs(s.brokerConfigs(), r.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
			default:
				rr.ErrorCode = kerr.InvalidRequest.Code
				rr.ErrorMessage = strPtr("Describing configs of this resource type is not supported.")
			}
			resp.Resources = append(resp.Resources, rr)
		}
		return resp
	})
}

func (s *Server) describeTopicConfigs(ctx context.Context, req *kmsg.DescribeConfigsRequest, r kmsg.DescribeConfigsRequestResource, rr *kmsg.DescribeConfigsResponseResource) {
	if !validTopicName(r.ResourceName) {
		rr.ErrorCode = kerr.InvalidTopicException.Code
		rr.ErrorMessage = strPtr(topicNameError(r.ResourceName))
		return
	}
	t, err := s.broker.RefreshTopic(ctx, r.ResourceName)
	if err != nil {
		s.logUnexpected(err, "describe configs", "topic", r.ResourceName)
		rr.ErrorCode = errorCode(err)
		rr.ErrorMessage = errorMessage(err)
		return
	}
	rr.Configs = s.topicConfigs(t, r.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
}

// topicConfigs lists a topic's effective configs in name order, limited to
// names when it is non-nil.
func (s *Server) topicConfigs(t actors.Topic, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	defaults := s.broker.ConfigDefaults(t.Kind)
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range keys {
		if names != nil && !slices.Contains(names, k) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name = k
		info := topicConfigInfo(k)
		c.ConfigType = info.typ
		if docs && info.doc != "" {
			c.Documentation = strPtr(info.doc)
		}
		def := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		def.Name, def.Value, def.Source = k, strPtr(defaults[k]), kmsg.ConfigSourceDefaultConfig
		if v, ok := t.Config[k]; ok {
			c.Value, c.Source, c.IsDefault = strPtr(v), kmsg.ConfigSourceDynamicTopicConfig, false
			if synonyms {
				over := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				over.Name, over.Value, over.Source = k, strPtr(v), kmsg.ConfigSourceDynamicTopicConfig
				c.ConfigSynonyms = append(c.ConfigSynonyms, over, def)
			}
		} else {
			c.Value, c.Source, c.IsDefault = strPtr(defaults[k]), kmsg.ConfigSourceDefaultConfig, true
			if synonyms {
				c.ConfigSynonyms = append(c.ConfigSynonyms, def)
			}
		}
		out = append(out, c)
	}
	return out
}

// brokerConfigs are the broker settings DescribeConfigs reports, all
// read-only: they come from the node's config file, not from clients.
func (s *Server) brokerConfigs() []kmsg.DescribeConfigsResponseResourceConfig {
	opts := s.broker.Options()
	defaults := s.broker.ConfigDefaults(actors.KindKafka)
	entries := []struct {
		name, value string
		typ         kmsg.ConfigType
		doc         string
	}{
		{"auto.create.topics.enable", strconv.FormatBool(s.cfg.AutoCreateTopics), kmsg.ConfigTypeBoolean, "Whether Metadata requests create the topics they name."},
		{"connections.max.idle.ms", strconv.FormatInt(s.cfg.IdleTimeout.Milliseconds(), 10), kmsg.ConfigTypeLong, "Idle connections are closed after this long."},
		{"default.replication.factor", "1", kmsg.ConfigTypeInt, "Replication is object storage's; every partition has one replica."},
		{"log.cleanup.policy", defaults[actors.ConfigCleanupPolicy], kmsg.ConfigTypeList, "The default cleanup.policy of topics."},
		{"log.retention.bytes", defaults[actors.ConfigRetentionBytes], kmsg.ConfigTypeLong, "The default retention.bytes of topics."},
		{"log.retention.ms", defaults[actors.ConfigRetentionMs], kmsg.ConfigTypeLong, "The default retention.ms of topics."},
		{"message.max.bytes", strconv.Itoa(opts.MaxMessageBytes), kmsg.ConfigTypeInt, "The default max.message.bytes of topics."},
		{"num.partitions", strconv.Itoa(int(s.cfg.DefaultPartitions)), kmsg.ConfigTypeInt, "The partition count of auto-created topics."},
		{"socket.request.max.bytes", strconv.Itoa(int(s.cfg.MaxFrameBytes)), kmsg.ConfigTypeInt, "The largest request the server reads."},
	}
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(entries))
	for _, e := range entries {
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.ReadOnly = e.name, strPtr(e.value), true
		c.Source, c.ConfigType = kmsg.ConfigSourceStaticBrokerConfig, e.typ
		c.Documentation = strPtr(e.doc)
		syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		syn.Name, syn.Value, syn.Source = e.name, strPtr(e.value), kmsg.ConfigSourceStaticBrokerConfig
		c.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{syn}
		out = append(out, c)
	}
	return out
}

// filterConfigs keeps the configs named (all when names is nil) and drops
// synonyms and documentation unless asked for.
func filterConfigs(cs []kmsg.DescribeConfigsResponseResourceConfig, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	out := cs[:0]
	for _, c := range cs {
		if names != nil && !slices.Contains(names, c.Name) {
			continue
		}
		if !synonyms {
			c.ConfigSynonyms = nil
		}
		if !docs {
			c.Documentation = nil
		}
		out = append(out, c)
	}
	return out
}
