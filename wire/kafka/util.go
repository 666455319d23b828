package kafka

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
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

// gather collects the partition answers of one request and finishes it
// once: when every partition answered, or when its timeout passes, in which
// case the partitions still waiting get expire's answer and their late
// answers are ignored. Partitions are numbered 0..n-1; each answer writes
// only its own slot of the response, under the lock that also orders those
// writes before finish reads them.
//
// The timeout is also the guard against an answer that never comes (a
// partition actor that fails while holding a request): a response is owed
// to the client, and the connection writes responses in order, so one lost
// answer would stall everything behind it.
type gather struct {
	mu       sync.Mutex
	pending  int
	answered []bool
	done     bool
	timer    *time.Timer
	expire   func(i int)
	finish   func()
}

// newGather expects n answers within timeout; with none it finishes at once.
func newGather(n int, timeout time.Duration, expire func(i int), finish func()) *gather {
	g := &gather{pending: n, answered: make([]bool, n), expire: expire, finish: finish}
	if n == 0 {
		g.done = true
		finish()
		return g
	}
	g.mu.Lock()
	g.timer = time.AfterFunc(max(timeout, 0), g.timeout)
	g.mu.Unlock()
	return g
}

// answer fills partition i with fill, unless it was answered (or expired).
func (g *gather) answer(i int, fill func()) {
	g.mu.Lock()
	if g.done || g.answered[i] {
		g.mu.Unlock()
		return
	}
	g.answered[i] = true
	fill()
	g.pending--
	finished := g.pending == 0
	if finished {
		g.done = true
		g.timer.Stop()
	}
	g.mu.Unlock()
	if finished {
		g.finish()
	}
}

func (g *gather) timeout() {
	g.mu.Lock()
	if g.done {
		g.mu.Unlock()
		return
	}
	g.done = true
	for i, ok := range g.answered {
		if !ok {
			g.expire(i)
		}
	}
	g.mu.Unlock()
	g.finish()
}

// replyTimeout bounds the wait for a partition actor's answer: actors bound
// their own I/O by the broker's IOTimeout, so an answer later than that
// plus a margin is not coming.
func (s *Server) replyTimeout() time.Duration {
	return s.broker.Options().IOTimeout + 5*time.Second
}

// topicLookup resolves the topics of one request, each name at most once.
type topicLookup struct {
	s      *Server
	ctx    context.Context
	byName map[string]topicResult
	byID   map[actors.TopicID]topicResult
}

type topicResult struct {
	topic actors.Topic
	// code is the Kafka error for the topic (0 when it exists); err is the
	// cause, for error messages.
	code int16
	err  error
}

func newTopicLookup(ctx context.Context, s *Server) *topicLookup {
	return &topicLookup{s: s, ctx: ctx, byName: map[string]topicResult{}, byID: map[actors.TopicID]topicResult{}}
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
	tid := actors.TopicID(id)
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
