package kafka

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/morax-dev/morax/actors"
)

// backpressureThrottle is the throttle time sent with a produce refused for
// backpressure: clients that honour KIP-219 hold off this long before
// sending to the node again, instead of retrying at once.
const backpressureThrottle = 100 * time.Millisecond

// errorCode maps an actor or metadata error to the Kafka error code Kafka
// would send for the same condition. Callers override the ambiguous cases
// (ErrInvalidArgument is INVALID_CONFIG for config changes).
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, actors.ErrUnknownTopic), errors.Is(err, actors.ErrUnknownPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, actors.ErrNotOwner):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, actors.ErrShuttingDown):
		// The node is handing its partitions over: clients refresh
		// metadata and retry on the new owner, as after a Kafka
		// controlled shutdown.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, actors.ErrOutcomeUnknown):
		// "Maybe written": clients retry, idempotent producers without
		// duplicating.
		return kerr.RequestTimedOut.Code
	case errors.Is(err, actors.ErrStorage):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, actors.ErrBackpressure):
		// NOT_ENOUGH_REPLICAS is the retriable produce error that every
		// client reads as "not written, retry": safe for idempotent
		// producers, unlike REQUEST_TIMED_OUT ("maybe written").
		return kerr.NotEnoughReplicas.Code
	case errors.Is(err, actors.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, actors.ErrCorruptRecord):
		return kerr.CorruptMessage.Code
	case errors.Is(err, actors.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, actors.ErrMessageTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, actors.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, actors.ErrProducerFenced):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, actors.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, actors.ErrTooManyPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, actors.ErrLimitReached):
		return kerr.PolicyViolation.Code
	case errors.Is(err, actors.ErrThrottled):
		// Only for the versions that know it (KIP-599); handlers answer
		// older ones with createErrorCode.
		return kerr.ThrottlingQuotaExceeded.Code
	case errors.Is(err, actors.ErrInvalidArgument):
		return kerr.InvalidRequest.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	default:
		return kerr.UnknownServerError.Code
	}
}

// errorMessage is the message sent with an error code in versions that
// carry one. Storage and unknown errors get a generic text: their details
// (endpoints, SQL) are for the broker's log, not for clients.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	var msg string
	switch code := errorCode(err); code {
	case kerr.KafkaStorageError.Code, kerr.UnknownServerError.Code, kerr.RequestTimedOut.Code:
		msg = kerr.TypedErrorForCode(code).Description
	default:
		msg = err.Error()
	}
	return &msg
}

// createErrorCode is errorCode for CreateTopics and CreatePartitions at
// version v: THROTTLING_QUOTA_EXCEEDED exists from CreateTopics v6 and
// CreatePartitions v3 (throttledFrom, per KIP-599); older clients would
// not know it, so a throttled creation is a POLICY_VIOLATION to them, with
// the same throttle time in the response. KIP-599 instead accepts old
// clients' creations and delays them; refusing keeps the node's creation
// rate a limit for every client.
func createErrorCode(err error, v, throttledFrom int16) int16 {
	if errors.Is(err, actors.ErrThrottled) && v < throttledFrom {
		return kerr.PolicyViolation.Code
	}
	return errorCode(err)
}

// throttleMillis is a throttle time for a response: the longer of ms and
// d, in milliseconds.
func throttleMillis(ms int32, d time.Duration) int32 {
	return max(ms, int32(min(d.Milliseconds(), math.MaxInt32)))
}

// strPtr returns a pointer to a copy of s.
func strPtr(s string) *string { return &s }

// validTopicName reports whether Kafka would accept name as a topic name:
// 1 to 249 characters of [a-zA-Z0-9._-], and not "." or "..".
func validTopicName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// topicNameError explains why validTopicName refused name, in Kafka's words.
func topicNameError(name string) string {
	switch {
	case name == "":
		return "Topic name is illegal, it can't be empty"
	case name == "." || name == "..":
		return "Topic name cannot be \".\" or \"..\""
	case len(name) > 249:
		return "Topic name is illegal, it can't be longer than 249 characters"
	default:
		return "Topic name \"" + name + "\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
	}
}
