package actors

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
)

// Topic config keys Morax understands, with Kafka's names and meanings.
const (
	ConfigRetentionMs     = "retention.ms"
	ConfigRetentionBytes  = "retention.bytes"
	ConfigMaxMessageBytes = "max.message.bytes"
	ConfigCleanupPolicy   = "cleanup.policy"
	ConfigTimestampType   = "message.timestamp.type"
	// ConfigFlushMs overrides the node's linger for one topic: how long an
	// append may wait for others to share its segment object.
	ConfigFlushMs = "flush.ms"
)

// TopicSettings are a topic's effective settings: its overrides on top of
// the node's defaults.
type TopicSettings struct {
	// RetentionMs and RetentionBytes are -1 for unlimited.
	RetentionMs     int64
	RetentionBytes  int64
	MaxMessageBytes int
	LogAppendTime   bool
	Linger          time.Duration
}

// ConfigDefaults returns the default value of every supported topic config
// for a topic of kind k, as DescribeConfigs reports them.
func (b *Broker) ConfigDefaults(k meta.TopicKind) map[string]string {
	retention := "604800000" // Kafka's default: 7 days
	if k == meta.KindWAL {
		retention = "-1" // a write-ahead log never drops entries on its own
	}
	return map[string]string{
		ConfigRetentionMs:     retention,
		ConfigRetentionBytes:  "-1",
		ConfigMaxMessageBytes: strconv.Itoa(b.opts.MaxMessageBytes),
		ConfigCleanupPolicy:   "delete",
		ConfigTimestampType:   "CreateTime",
		ConfigFlushMs:         strconv.FormatInt(b.opts.Linger.Milliseconds(), 10),
	}
}

// TopicSettings resolves a topic's config; a value that does not parse
// returns an error naming the key.
func (b *Broker) TopicSettings(t meta.Topic) (TopicSettings, error) {
	merged := b.ConfigDefaults(t.Kind)
	for k, v := range t.Config {
		merged[k] = v
	}
	return parseSettings(merged, b.opts.MaxBufferBytes)
}

// ValidateTopicConfig checks overrides as CreateTopics and AlterConfigs
// must: every key known, every value in range. All problems are reported.
func (b *Broker) ValidateTopicConfig(k meta.TopicKind, config map[string]string) error {
	defaults := b.ConfigDefaults(k)
	var errs []error
	for key := range config {
		if _, ok := defaults[key]; !ok {
			errs = append(errs, fmt.Errorf("%w: unknown topic config %q", ErrInvalidArgument, key))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	merged := defaults
	for k, v := range config {
		merged[k] = v
	}
	_, err := parseSettings(merged, b.opts.MaxBufferBytes)
	return err
}

func parseSettings(c map[string]string, maxBuffer int64) (TopicSettings, error) {
	var s TopicSettings
	var errs []error
	num := func(key string, min int64) int64 {
		v, err := strconv.ParseInt(c[key], 10, 64)
		if err != nil || v < min {
			errs = append(errs, fmt.Errorf("%w: %s=%q: want an integer >= %d", ErrInvalidArgument, key, c[key], min))
		}
		return v
	}
	s.RetentionMs = num(ConfigRetentionMs, -1)
	s.RetentionBytes = num(ConfigRetentionBytes, -1)
	mmb := num(ConfigMaxMessageBytes, 0)
	if mmb > maxBuffer {
		errs = append(errs, fmt.Errorf("%w: %s=%d exceeds the partition buffer limit %d", ErrInvalidArgument, ConfigMaxMessageBytes, mmb, maxBuffer))
	}
	s.MaxMessageBytes = int(mmb)
	s.Linger = time.Duration(num(ConfigFlushMs, 0)) * time.Millisecond
	if s.Linger == 0 {
		s.Linger = time.Millisecond
	}
	switch c[ConfigCleanupPolicy] {
	case "delete":
	case "compact", "compact,delete", "delete,compact":
		errs = append(errs, fmt.Errorf("%w: %s=%q: compaction is not supported yet; use \"delete\"", ErrInvalidArgument, ConfigCleanupPolicy, c[ConfigCleanupPolicy]))
	default:
		errs = append(errs, fmt.Errorf("%w: %s=%q: want \"delete\"", ErrInvalidArgument, ConfigCleanupPolicy, c[ConfigCleanupPolicy]))
	}
	switch c[ConfigTimestampType] {
	case "CreateTime":
	case "LogAppendTime":
		s.LogAppendTime = true
	default:
		errs = append(errs, fmt.Errorf("%w: %s=%q: want CreateTime or LogAppendTime", ErrInvalidArgument, ConfigTimestampType, c[ConfigTimestampType]))
	}
	return s, errors.Join(errs...)
}
