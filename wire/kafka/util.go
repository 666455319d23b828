package kafka

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
)

// goRespond runs fn on its own goroutine and responds with its result. It
// is for handlers whose work is metadata I/O, which must not hold up the
// connection's read loop. A panic in fn closes the connection instead of
// the process.
func goRespond(rc *requestContext, respond func(kmsg.Response), fn func(ctx context.Context) kmsg.Response) {
	go func() {
		defer func() {
			if p := recover(); p != nil {
				rc.log.Error("kafka request handler panicked; closing connection", "panic", p)
				if rc.abort != nil {
					rc.abort()
				}
			}
		}()
		respond(fn(rc.ctx))
	}()
}

// fanout calls done once every partition it was sized for has answered.
// Each answer writes only its own, preallocated slot of the response, and
// the atomic countdown orders those writes before done reads them.
type fanout struct {
	left atomic.Int64
	done func()
}

// newFanout expects n answers; with none it calls done at once.
func newFanout(n int, done func()) *fanout {
	f := &fanout{done: done}
	f.left.Store(int64(n))
	if n == 0 {
		done()
	}
	return f
}

// one records an answer.
func (f *fanout) one() {
	if f.left.Add(-1) == 0 {
		f.done()
	}
}

// topicLookup resolves the topics of one request, each name at most once.
type topicLookup struct {
	s      *Server
	ctx    context.Context
	byName map[string]topicResult
	byID   map[meta.TopicID]topicResult
}

type topicResult struct {
	topic meta.Topic
	// code is the Kafka error for the topic (0 when it exists); err is the
	// cause, for error messages.
	code int16
	err  error
}

func newTopicLookup(ctx context.Context, s *Server) *topicLookup {
	return &topicLookup{s: s, ctx: ctx, byName: map[string]topicResult{}, byID: map[meta.TopicID]topicResult{}}
}

// name resolves a topic by name. An illegal name cannot exist, so it is
// UNKNOWN_TOPIC_OR_PARTITION without asking the store, as in Kafka.
func (l *topicLookup) name(name string) topicResult {
	if r, ok := l.byName[name]; ok {
		return r
	}
	var r topicResult
	if !validTopicName(name) {
		r = topicResult{code: kerr.UnknownTopicOrPartition.Code, err: fmt.Errorf("%w: %s", actors.ErrUnknownTopic, topicNameError(name))}
	} else {
		t, err := l.s.broker.Topic(l.ctx, name)
		r = topicResult{topic: t, code: errorCode(err), err: err}
		if err != nil {
			l.s.logUnexpected(err, "look up topic", "topic", name)
		}
	}
	l.byName[name] = r
	return r
}

// id resolves a topic by id (requests at versions that address topics by
// id); an unknown id is UNKNOWN_TOPIC_ID.
func (l *topicLookup) id(id [16]byte) topicResult {
	tid := meta.TopicID(id)
	if r, ok := l.byID[tid]; ok {
		return r
	}
	t, err := l.s.broker.TopicByID(l.ctx, tid)
	r := topicResult{topic: t, code: errorCode(err), err: err}
	if err != nil {
		l.s.logUnexpected(err, "look up topic by id", "topic_id", tid.String())
		if r.code == kerr.UnknownTopicOrPartition.Code {
			r.code = kerr.UnknownTopicID.Code
		}
	}
	l.byID[tid] = r
	return r
}

// logUnexpected logs errors that are not the client's doing (storage,
// unknown); expected ones (unknown topic) would only be noise.
func (s *Server) logUnexpected(err error, what string, args ...any) {
	switch errorCode(err) {
	case kerr.UnknownServerError.Code, kerr.KafkaStorageError.Code:
		s.log.Warn("kafka: "+what+" failed", append(args, "err", err)...)
	}
}
