package actors

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/morax-dev/morax/config"
)

// Limits bound what clients may make the cluster create and what this node
// serves (the [limits] section of the configuration). Without them one
// request for a million partitions is accepted and the node then spends
// everything trying to start them (issue #12). Zero fields take the values
// of DefaultLimits.
type Limits struct {
	// MaxPartitionsPerTopic bounds one topic's partition count, at creation
	// and when it grows (ErrTooManyPartitions).
	MaxPartitionsPerTopic int32
	// MaxClusterPartitions bounds the partitions of all topics together,
	// as the metadata store counts them (ErrLimitReached).
	MaxClusterPartitions int64
	// MaxNodePartitions bounds the partition actors this node runs: past
	// it, it starts no more, and reports how many partitions it should
	// own but refuses (Health, morax_partitions_refused).
	MaxNodePartitions int
	// MaxTopicsPerRequest bounds the topics one create request may name
	// (CheckCreateRequest).
	MaxTopicsPerRequest int
	// MaxAutoCreatePerRequest bounds the topics one Metadata request may
	// auto-create (AutoCreateAllowance).
	MaxAutoCreatePerRequest int
	// CreateRate is the creations per second the node admits: a topic
	// created, or a topic grown (ErrThrottled past the burst).
	CreateRate float64
	// CreateBurst is the size of the creation token bucket.
	CreateBurst int
	// StartsPerPoll bounds the partitions the ownership loop starts per
	// poll, so their lease takes and state reads do not crowd out the
	// node's lease renewals.
	StartsPerPoll int
}

// DefaultLimits are the values used for zero fields of Limits, read from
// config.Default().
func DefaultLimits() Limits {
	l := config.Default().Limits
	return Limits{
		MaxPartitionsPerTopic:   l.MaxPartitionsPerTopic,
		MaxClusterPartitions:    l.MaxClusterPartitions,
		MaxNodePartitions:       int(l.MaxNodePartitions),
		MaxTopicsPerRequest:     int(l.MaxTopicsPerRequest),
		MaxAutoCreatePerRequest: int(l.MaxAutoCreatePerRequest),
		CreateRate:              float64(l.CreateRate),
		CreateBurst:             int(l.CreateBurst),
		StartsPerPoll:           int(l.PartitionStartsPerPoll),
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxPartitionsPerTopic <= 0 {
		l.MaxPartitionsPerTopic = d.MaxPartitionsPerTopic
	}
	if l.MaxClusterPartitions <= 0 {
		l.MaxClusterPartitions = d.MaxClusterPartitions
	}
	if l.MaxNodePartitions <= 0 {
		l.MaxNodePartitions = d.MaxNodePartitions
	}
	if l.MaxTopicsPerRequest <= 0 {
		l.MaxTopicsPerRequest = d.MaxTopicsPerRequest
	}
	if l.MaxAutoCreatePerRequest <= 0 {
		l.MaxAutoCreatePerRequest = d.MaxAutoCreatePerRequest
	}
	if l.CreateRate <= 0 {
		l.CreateRate = d.CreateRate
	}
	if l.CreateBurst <= 0 {
		l.CreateBurst = d.CreateBurst
	}
	if l.StartsPerPoll <= 0 {
		l.StartsPerPoll = d.StartsPerPoll
	}
	return l
}

// Reasons a limit refused a request: the reason label of
// morax_limit_refusals_total.
const (
	// LimitTopicPartitions: a topic would have more partitions than
	// Limits.MaxPartitionsPerTopic.
	LimitTopicPartitions = "topic_partitions"
	// LimitClusterPartitions: the cluster would hold more partitions than
	// Limits.MaxClusterPartitions.
	LimitClusterPartitions = "cluster_partitions"
	// LimitNodePartitions: starting the partition would take the node past
	// Limits.MaxNodePartitions.
	LimitNodePartitions = "node_partitions"
	// LimitRequestTopics: a create request named more topics than
	// Limits.MaxTopicsPerRequest.
	LimitRequestTopics = "request_topics"
	// LimitAutoCreate: a Metadata request asked to auto-create more topics
	// than Limits.MaxAutoCreatePerRequest.
	LimitAutoCreate = "auto_create_per_request"
	// LimitCreateRate: the node's creation token bucket was empty.
	LimitCreateRate = "create_rate"
)

// Errors of the limits. The protocol layers map them: ErrTooManyPartitions
// to INVALID_PARTITIONS (HTTP 400), ErrLimitReached to POLICY_VIOLATION
// (HTTP 403), ErrThrottled to THROTTLING_QUOTA_EXCEEDED (HTTP 429).
var (
	// ErrTooManyPartitions means a topic would have more partitions than a
	// topic may have. Not retriable.
	ErrTooManyPartitions = errors.New("too many partitions for one topic")
	// ErrLimitReached means a configured cap (the cluster's partitions,
	// the topics of one request) refuses the request; retrying does not
	// help until something is deleted or the cap raised.
	ErrLimitReached = errors.New("limit reached")
	// ErrThrottled is the kind of ThrottleError: the node's creation rate
	// is used up. Retriable after the wait.
	ErrThrottled = errors.New("creation rate exceeded")
)

// ThrottleError refuses a creation for the node's creation rate. It
// matches ErrThrottled with errors.Is.
type ThrottleError struct {
	// Wait is how long until the bucket holds a token again.
	Wait time.Duration
}

func (e *ThrottleError) Error() string {
	return fmt.Sprintf("%v: this node admits a limited number of topic and log creations per second; retry in %s", ErrThrottled, e.Wait.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottleError) Is(target error) bool { return target == ErrThrottled }

// ThrottleWait is how long err asks its sender to wait before retrying: a
// ThrottleError's wait, else zero.
func ThrottleWait(err error) time.Duration {
	var te *ThrottleError
	if errors.As(err, &te) {
		return te.Wait
	}
	return 0
}

// tokenBucket admits a steady rate with a burst (KIP-599's algorithm: a
// bucket of burst tokens refilled at rate per second). It is not safe for
// concurrent use: the catalog guards it.
type tokenBucket struct {
	rate, burst float64
	tokens      float64
	at          time.Time // when tokens was last brought up to date
}

func newTokenBucket(rate float64, burst int, now time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), at: now}
}

// take takes one token at now, or says how long until one is there.
func (tb *tokenBucket) take(now time.Time) (wait time.Duration, ok bool) {
	if d := now.Sub(tb.at); d > 0 {
		tb.tokens = math.Min(tb.burst, tb.tokens+d.Seconds()*tb.rate)
		tb.at = now
	}
	if tb.tokens >= 1 {
		tb.tokens--
		return 0, true
	}
	wait = time.Duration((1 - tb.tokens) / tb.rate * float64(time.Second))
	return max(wait, time.Millisecond), false
}

// refuseLimit counts a refusal by a limit and returns err, for one-line
// refusals.
func (b *Broker) refuseLimit(reason string, err error) error {
	b.metrics.limitRefusals.WithLabelValues(reason).Inc()
	return err
}

// Limits returns the limits the broker enforces.
func (b *Broker) Limits() Limits { return b.opts.Limits }

// CheckCreateRequest refuses (ErrLimitReached, counted) a create request
// that names more topics than Limits.MaxTopicsPerRequest.
func (b *Broker) CheckCreateRequest(topics int) error {
	if limit := b.opts.Limits.MaxTopicsPerRequest; topics > limit {
		return b.refuseLimit(LimitRequestTopics, fmt.Errorf("%w: the request names %d topics; this node accepts at most %d per request (limits.max_topics_per_request)", ErrLimitReached, topics, limit))
	}
	return nil
}

// CheckTopicPartitions refuses (ErrTooManyPartitions, counted) a topic of
// n partitions when that is more than a topic may have. Creation checks
// it itself; this is for requests that only validate.
func (b *Broker) CheckTopicPartitions(n int32) error {
	if limit := b.opts.Limits.MaxPartitionsPerTopic; n > limit {
		return b.refuseLimit(LimitTopicPartitions, fmt.Errorf("%w: %d partitions asked; a topic may have at most %d (limits.max_partitions_per_topic)", ErrTooManyPartitions, n, limit))
	}
	return nil
}

// AutoCreateAllowance is how many topics one Metadata request may create.
func (b *Broker) AutoCreateAllowance() int { return b.opts.Limits.MaxAutoCreatePerRequest }

// RefuseAutoCreate counts a topic a Metadata request did not auto-create
// because the request had used its allowance, or had one of its creations
// refused by a limit (counted under that limit's reason).
func (b *Broker) RefuseAutoCreate() { b.metrics.limitRefusals.WithLabelValues(LimitAutoCreate).Inc() }
