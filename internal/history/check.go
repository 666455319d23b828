package history

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Result is the verdict on a history.
type Result struct {
	// Problems are the violations found, each a sentence naming the log,
	// the offset and the operation. Empty means the history is correct.
	Problems []string
	// Linearizable is Porcupine's verdict per log: porcupine.Ok,
	// porcupine.Illegal (also a Problem) or porcupine.Unknown (the search
	// ran out of time; reported, not a Problem).
	Linearizable map[string]porcupine.CheckResult
	// Acked, Entries are how many appends were acknowledged and how many
	// records the final logs hold, for the run's log.
	Acked, Entries int
}

// OK reports whether no problem was found.
func (r Result) OK() bool { return len(r.Problems) == 0 }

func (r *Result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Options bound the linearizability search.
type Options struct {
	// Timeout bounds Porcupine's search per log; 0 means no bound.
	Timeout time.Duration
	// MaxOps, when positive, leaves logs with more operations than this
	// to the direct checks alone (reported as porcupine.Unknown): the
	// search keeps a copy of the set of linearized operations per state
	// it visits, memory quadratic in the operations, which an hour-long
	// soak's logs would exhaust.
	MaxOps int
}

// Check checks h. Every log appended to must have its final contents
// recorded (Recorder.Final): they are what acknowledged appends and reads
// are checked against.
func Check(h History, opts Options) Result {
	res := Result{Linearizable: map[string]porcupine.CheckResult{}}
	byLog := map[string][]Op{}
	for _, o := range h.Ops {
		byLog[o.Log] = append(byLog[o.Log], o)
	}
	logs := h.Logs()
	for _, log := range logs {
		if _, ok := h.Final[log]; !ok {
			res.problem("%s: appended to, but its final contents were never read back", log)
		}
	}
	for log := range h.Final {
		if _, ok := byLog[log]; !ok {
			logs = append(logs, log)
		}
	}
	sort.Strings(logs)
	for _, log := range logs {
		final := h.Final[log]
		res.Entries += len(final)
		ops := byLog[log]
		checkLog(&res, log, ops, final)
		if _, ok := h.Final[log]; ok {
			if opts.MaxOps > 0 && len(ops) > opts.MaxOps {
				res.Linearizable[log] = porcupine.Unknown
				continue
			}
			res.Linearizable[log] = linearizable(&res, log, ops, final, opts.Timeout)
		}
	}
	checkCommits(&res, h)
	return res
}

// checkLog runs the direct checks of one log against its final contents.
func checkLog(res *Result, log string, ops []Op, final []Entry) {
	// Dense from 0: the logs under test are never truncated.
	for i, e := range final {
		if e.Offset != int64(i) {
			res.problem("%s: record %d of the log read back has offset %d: a gap or a reordering (offsets must be dense from 0)", log, i, e.Offset)
			break
		}
	}
	at := map[int64]string{}
	where := map[string]int64{}
	for _, e := range final {
		if prev, dup := where[e.Value]; dup {
			res.problem("%s: value %q at offset %d is also at offset %d: duplicated", log, e.Value, e.Offset, prev)
		} else {
			where[e.Value] = e.Offset
		}
		at[e.Offset] = e.Value
	}
	attempted := map[string]bool{}
	claimed := map[int64]int{} // offset -> id of the acknowledged append that holds it
	for _, o := range ops {
		switch o.Kind {
		case Append:
			for _, v := range o.Values {
				attempted[v] = true
			}
			if o.Outcome != OK {
				if o.Outcome == Failed {
					for _, v := range o.Values {
						if off, ok := where[v]; ok {
							res.problem("%s: %q is at offset %d, but its append was refused (%s): a refusal that took effect", log, v, off, o.Err)
						}
					}
				}
				continue
			}
			res.Acked++
			for i, v := range o.Values {
				off := o.Offset + int64(i)
				if other, ok := claimed[off]; ok {
					res.problem("%s: offset %d acknowledged to two appends (#%d and #%d)", log, off, other, o.ID)
				}
				claimed[off] = o.ID
				got, ok := at[off]
				switch {
				case !ok:
					res.problem("%s: acknowledged %q at offset %d is missing (log read back has %d records): lost acknowledged write", log, v, off, len(final))
				case got != v:
					res.problem("%s: acknowledged %q at offset %d, but the log has %q there", log, v, off, got)
				}
			}
		case Read:
			if len(o.Values) != 1 {
				res.problem("%s: read #%d records %d values", log, o.ID, len(o.Values))
				continue
			}
			got, ok := at[o.Offset]
			switch {
			case !ok:
				res.problem("%s: %q was read at offset %d, which the log read back does not have (%d records): a read of data later lost", log, o.Values[0], o.Offset, len(final))
			case got != o.Values[0]:
				res.problem("%s: %q was read at offset %d, but the log has %q there", log, o.Values[0], o.Offset, got)
			}
		}
	}
	for _, e := range final {
		if !attempted[e.Value] {
			res.problem("%s: %q at offset %d was never appended by any client", log, e.Value, e.Offset)
		}
	}
}

// checkCommits checks that, per group, generation and log, the offsets a
// coordinator acknowledged committing never decrease (in the order the
// acknowledgements came) and never pass the log's end.
func checkCommits(res *Result, h History) {
	type key struct {
		group, log string
		gen        int32
	}
	var commits []Op
	for _, o := range h.Ops {
		if o.Kind == Commit && o.Outcome == OK {
			commits = append(commits, o)
		}
	}
	sort.SliceStable(commits, func(i, j int) bool { return commits[i].Return < commits[j].Return })
	last := map[key]Op{}
	for _, o := range commits {
		k := key{o.Group, o.Log, o.Gen}
		if prev, ok := last[k]; ok && o.Offset < prev.Offset {
			res.problem("group %s generation %d %s: committed offset went back from %d (#%d) to %d (#%d)", o.Group, o.Gen, o.Log, prev.Offset, prev.ID, o.Offset, o.ID)
		}
		last[k] = o
		if final, ok := h.Final[o.Log]; ok && o.Offset > int64(len(final)) {
			res.problem("group %s generation %d %s: committed offset %d is past the log's end %d", o.Group, o.Gen, o.Log, o.Offset, len(final))
		}
	}
}

// The Porcupine model of one append-only log. A state is an immutable
// list, newest record first, so appends share what came before instead of
// copying it.
type logState struct {
	prev  *logState
	value string
	n     int64  // records in the log
	hash  uint64 // of the whole log, so equal logs compare in O(1)
}

func (s *logState) push(v string) *logState {
	h := uint64(14695981039346656037)
	if s != nil {
		h = s.hash
	}
	for i := 0; i < len(v); i++ {
		h = (h ^ uint64(v[i])) * 1099511628211
	}
	h = (h ^ 0xff) * 1099511628211 // separates values
	return &logState{prev: s, value: v, n: s.len() + 1, hash: h}
}

func (s *logState) len() int64 {
	if s == nil {
		return 0
	}
	return s.n
}

func (s *logState) at(off int64) (string, bool) {
	if off < 0 || off >= s.len() {
		return "", false
	}
	for s.n-1 > off {
		s = s.prev
	}
	return s.value, true
}

type appendIn struct{ values []string }
type appendOut struct {
	known  bool // acknowledged; otherwise the outcome is unknown
	offset int64
}
type readIn struct{ offset int64 }
type readOut struct{ value string }
type finalIn struct{ entries []Entry }

var logModel = porcupine.Model{
	Init: func() any { return (*logState)(nil) },
	Step: func(state, input, output any) (bool, any) {
		s := state.(*logState)
		switch in := input.(type) {
		case appendIn:
			out := output.(appendOut)
			if out.known && out.offset != s.len() {
				return false, s
			}
			for _, v := range in.values {
				s = s.push(v)
			}
			return true, s
		case readIn:
			v, ok := s.at(in.offset)
			return ok && v == output.(readOut).value, s
		case finalIn:
			if int64(len(in.entries)) != s.len() {
				return false, s
			}
			for i := len(in.entries) - 1; i >= 0; i-- {
				if s.value != in.entries[i].Value {
					return false, s
				}
				s = s.prev
			}
			return true, state
		}
		return false, s
	},
	Equal: func(a, b any) bool {
		x, y := a.(*logState), b.(*logState)
		return x == y || (x.len() == y.len() && (x == nil || x.hash == y.hash))
	},
	Hash: func(s any) uint64 {
		if st := s.(*logState); st != nil {
			return st.hash
		}
		return 0
	},
}

// linearizable runs Porcupine on one log's appends and reads, ending with
// the final read-back. An append of unknown outcome returns "at infinity":
// it may take effect at any point after its call, or never. One whose
// values are nowhere in the final log is left out, which is the same as
// never taking effect (the final read is the last operation) and spares
// the search.
func linearizable(res *Result, log string, ops []Op, final []Entry, timeout time.Duration) porcupine.CheckResult {
	inFinal := map[string]bool{}
	for _, e := range final {
		inFinal[e.Value] = true
	}
	var end int64
	for _, o := range ops {
		if o.Outcome == OK || o.Outcome == Failed {
			end = max(end, int64(o.Return))
		}
	}
	var hist []porcupine.Operation
	unknown := int64(0)
	for _, o := range ops {
		switch {
		case o.Kind == Append && o.Outcome == OK:
			hist = append(hist, porcupine.Operation{ClientId: o.Client, Input: appendIn{o.Values}, Output: appendOut{known: true, offset: o.Offset},
				Call: int64(o.Call), Return: int64(o.Return)})
		case o.Kind == Append && (o.Outcome == Unknown || o.Outcome == Pending):
			took := false
			for _, v := range o.Values {
				took = took || inFinal[v]
			}
			if !took {
				continue
			}
			unknown++
			hist = append(hist, porcupine.Operation{ClientId: o.Client, Input: appendIn{o.Values}, Output: appendOut{},
				Call: int64(o.Call), Return: math.MaxInt64 - unknown})
		case o.Kind == Read && o.Outcome == OK:
			hist = append(hist, porcupine.Operation{ClientId: o.Client, Input: readIn{o.Offset}, Output: readOut{o.Values[0]},
				Call: int64(o.Call), Return: int64(o.Return)})
		}
	}
	hist = append(hist, porcupine.Operation{ClientId: 0, Input: finalIn{final}, Output: nil, Call: end + 1, Return: end + 2})
	r := porcupine.CheckOperationsTimeout(logModel, hist, timeout)
	if r == porcupine.Illegal {
		res.problem("%s: the history is not linearizable as an append-only log (Porcupine)", log)
	}
	return r
}
