// Package history records what clients asked of a Morax cluster and what
// they were told, and checks afterwards that the answers are ones a set of
// append-only logs could have given: every acknowledged append present
// exactly once at its acknowledged offset, offsets dense, nothing in a log
// that nobody appended, reads agreeing with the log, group offset commits
// never going back within a generation, and the whole history
// linearizable (checked with Porcupine, one log at a time).
//
// An append whose outcome the client does not know (a timeout, a dropped
// connection, a retriable error) may or may not have happened; the checker
// allows both.
package history

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// Kind is what an operation did.
type Kind int

// The kinds of operations.
const (
	// Append adds Values to the end of Log; on success Offset is where
	// the first landed.
	Append Kind = iota
	// Read saw Values[0] at Offset of Log.
	Read
	// Commit committed Offset as the next offset to consume of Log for
	// Group in Generation.
	Commit
)

func (k Kind) String() string {
	switch k {
	case Append:
		return "append"
	case Read:
		return "read"
	case Commit:
		return "commit"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Outcome is what the client learnt of an operation.
type Outcome int

// The outcomes.
const (
	// Pending: no answer yet. A history checked with pending operations
	// treats them as Unknown.
	Pending Outcome = iota
	// OK: the operation succeeded (for an append: acknowledged).
	OK
	// Failed: the operation certainly did not take effect (a WAL append
	// refused by its offset condition, a record the client never sent).
	Failed
	// Unknown: the operation failed in a way that leaves open whether it
	// took effect (a timeout, a lost connection, a retriable error).
	Unknown
)

func (o Outcome) String() string {
	return [...]string{"pending", "ok", "failed", "unknown"}[o]
}

// Op is one recorded operation.
type Op struct {
	ID      int
	Client  int
	Kind    Kind
	Log     string   // the log: "topic/partition" or "wal/name"
	Values  []string // Append: the values, in order; Read: the one value read
	Offset  int64    // Append (OK): the first value's offset; Read: the offset read; Commit: the offset committed
	Group   string   // Commit
	Gen     int32    // Commit: the group generation the member was in
	Outcome Outcome
	Err     string
	// Call and Return are when the client asked and when it learnt the
	// outcome, on the recorder's monotonic clock.
	Call, Return time.Duration
}

func (o Op) String() string {
	switch o.Kind {
	case Append:
		return fmt.Sprintf("#%d client %d append %v to %s -> %s at %d [%s, %s] %s", o.ID, o.Client, o.Values, o.Log, o.Outcome, o.Offset, o.Call, o.Return, o.Err)
	case Read:
		return fmt.Sprintf("#%d client %d read %s@%d = %v [%s, %s]", o.ID, o.Client, o.Log, o.Offset, o.Values, o.Call, o.Return)
	default:
		return fmt.Sprintf("#%d client %d commit %s gen %d %s = %d -> %s [%s, %s] %s", o.ID, o.Client, o.Group, o.Gen, o.Log, o.Offset, o.Outcome, o.Call, o.Return, o.Err)
	}
}

// Recorder collects the operations of many concurrent clients. Its zero
// value is not usable; use NewRecorder.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []*Op
	final map[string][]Entry
	// acks are, per log, the times appends were acknowledged, ascending
	// (they are taken under mu): FirstAckAfter answers from them without
	// copying the history, which a soak polls for hours.
	acks map[string][]time.Duration
	// logs interns log names: a soak records millions of operations on a
	// few logs.
	logs map[string]string
	// commits counts successful group commits, for warm-up polling.
	commits int
}

// Entry is one record of a log as read back at the end: its offset and
// value.
type Entry struct {
	Offset int64
	Value  string
}

// NewRecorder returns an empty recorder whose clock starts now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now(), final: map[string][]Entry{}, acks: map[string][]time.Duration{}, logs: map[string]string{}}
}

// Since is the recorder's clock at t: durations since the recorder was
// made, on the monotonic clock, so wall-clock steps cannot reorder
// operations.
func (r *Recorder) Since(t time.Time) time.Duration { return t.Sub(r.start) }

// Now is the recorder's clock now.
func (r *Recorder) Now() time.Duration { return time.Since(r.start) }

// Handle is an operation in flight; exactly one of its completion methods
// is called when the client learns the outcome.
type Handle struct {
	r  *Recorder
	op *Op
}

// Begin records the call of an operation and returns its handle. op's
// Kind, Client, Log, Values (and Group, Gen, Offset for a commit) describe
// it; the recorder sets ID, Call and Outcome.
func (r *Recorder) Begin(op Op) *Handle {
	o := op
	o.Values = append([]string(nil), op.Values...)
	o.Outcome = Pending
	r.mu.Lock()
	o.Log = r.intern(o.Log)
	o.ID = len(r.ops)
	o.Call = r.Now()
	r.ops = append(r.ops, &o)
	r.mu.Unlock()
	return &Handle{r: r, op: &o}
}

func (r *Recorder) intern(log string) string {
	if l, ok := r.logs[log]; ok {
		return l
	}
	r.logs[log] = log
	return log
}

func (h *Handle) end(out Outcome, offset int64, err error) {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	h.op.Return = h.r.Now()
	if out == OK && h.op.Kind == Commit {
		h.r.commits++
	}
	if out == OK && h.op.Kind == Append {
		h.r.acks[h.op.Log] = append(h.r.acks[h.op.Log], h.op.Return)
	}
	h.op.Outcome = out
	if offset >= 0 {
		h.op.Offset = offset
	}
	if err != nil {
		h.op.Err = err.Error()
	}
}

// OK records success; for an append, offset is where its first value was
// acknowledged (pass -1 for kinds that carry their offset already).
func (h *Handle) OK(offset int64) { h.end(OK, offset, nil) }

// Fail records that the operation certainly did not take effect.
func (h *Handle) Fail(err error) { h.end(Failed, -1, err) }

// Unknown records a failure that leaves open whether the operation took
// effect.
func (h *Handle) Unknown(err error) { h.end(Unknown, -1, err) }

// Read records a successful read that completed already (call and return
// given), of value at offset of log.
func (r *Recorder) Read(client int, log string, offset int64, value string, call, ret time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, &Op{ID: len(r.ops), Client: client, Kind: Read, Log: r.intern(log), Offset: offset,
		Values: []string{value}, Outcome: OK, Call: call, Return: ret})
}

// Final records the whole of log as read back after the run, the
// reference the other operations are checked against.
func (r *Recorder) Final(log string, entries []Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.final[log] = append([]Entry(nil), entries...)
}

// Ops returns a copy of every operation recorded so far, in call order.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Op, len(r.ops))
	for i, o := range r.ops {
		out[i] = *o
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Call < out[j].Call })
	return out
}

// History is everything recorded: the operations and the final contents of
// the logs.
type History struct {
	Ops   []Op
	Final map[string][]Entry
}

// History returns a copy of what was recorded.
func (r *Recorder) History() History {
	ops := r.Ops()
	r.mu.Lock()
	defer r.mu.Unlock()
	final := make(map[string][]Entry, len(r.final))
	for k, v := range r.final {
		final[k] = append([]Entry(nil), v...)
	}
	return History{Ops: ops, Final: final}
}

// SucceededWithin returns the operations of the given kinds that were
// both called and answered with success inside [from, to]: while a
// backend they need is away none can be, so any is a false success.
// (Appends need object storage and the metadata store; group commits only
// the metadata store.)
func (h History) SucceededWithin(from, to time.Duration, kinds ...Kind) []Op {
	var out []Op
	for _, o := range h.Ops {
		if slices.Contains(kinds, o.Kind) && o.Outcome == OK && o.Call >= from && o.Return <= to {
			out = append(out, o)
		}
	}
	return out
}

// Commits is how many group offset commits succeeded so far.
func (r *Recorder) Commits() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.commits
}

// FirstAckAfter returns, per log, the first time an append was
// acknowledged at or after t; a log with none is absent. It reads an
// index kept as the acknowledgements come, so polling it is cheap.
func (r *Recorder) FirstAckAfter(t time.Duration) map[string]time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]time.Duration{}
	for log, times := range r.acks {
		i := sort.Search(len(times), func(i int) bool { return times[i] >= t })
		if i < len(times) {
			out[log] = times[i]
		}
	}
	return out
}

// FirstAckAfter returns, per log that had appends, the first time an
// append was acknowledged at or after t (zero and false for a log that had
// none).
func (h History) FirstAckAfter(t time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, o := range h.Ops {
		if o.Kind != Append || o.Outcome != OK || o.Return < t {
			continue
		}
		if cur, ok := out[o.Log]; !ok || o.Return < cur {
			out[o.Log] = o.Return
		}
	}
	return out
}

// Logs lists the logs appended to, sorted.
func (h History) Logs() []string {
	seen := map[string]bool{}
	for _, o := range h.Ops {
		if o.Kind == Append {
			seen[o.Log] = true
		}
	}
	out := make([]string, 0, len(seen))
	for l := range seen {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Counts tallies the operations by kind and outcome, for the run's log.
func (h History) Counts() string {
	n := map[string]int{}
	for _, o := range h.Ops {
		n[o.Kind.String()+" "+o.Outcome.String()]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf("%s=%d ", k, n[k])
	}
	return s
}
