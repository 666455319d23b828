package history

import (
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Hand-made histories: the correct ones must pass, and each kind of
// violation must be caught, or the checker proves nothing.

const ms = time.Millisecond

func app(id, client int, log string, call, ret int, out Outcome, off int64, vals ...string) Op {
	return Op{ID: id, Client: client, Kind: Append, Log: log, Values: vals, Offset: off, Outcome: out,
		Call: time.Duration(call) * ms, Return: time.Duration(ret) * ms}
}

func read(id int, log string, call, ret int, off int64, v string) Op {
	return Op{ID: id, Kind: Read, Log: log, Values: []string{v}, Offset: off, Outcome: OK,
		Call: time.Duration(call) * ms, Return: time.Duration(ret) * ms}
}

func commit(id int, group string, gen int32, log string, ret int, off int64) Op {
	return Op{ID: id, Kind: Commit, Group: group, Gen: gen, Log: log, Offset: off, Outcome: OK,
		Call: time.Duration(ret-1) * ms, Return: time.Duration(ret) * ms}
}

func entries(vals ...string) []Entry {
	out := make([]Entry, len(vals))
	for i, v := range vals {
		out[i] = Entry{Offset: int64(i), Value: v}
	}
	return out
}

func check(t *testing.T, h History) Result {
	t.Helper()
	r := Check(h, Options{Timeout: 10 * time.Second})
	for _, p := range r.Problems {
		t.Logf("problem: %s", p)
	}
	return r
}

func wantProblem(t *testing.T, r Result, substr string) {
	t.Helper()
	for _, p := range r.Problems {
		if strings.Contains(p, substr) {
			return
		}
	}
	t.Errorf("no problem mentioning %q among %d", substr, len(r.Problems))
}

func TestCheckAcceptsCorrectHistories(t *testing.T) {
	h := History{
		Ops: []Op{
			// Two clients appending concurrently: either order is fine
			// as long as the offsets match the log.
			app(0, 1, "t/0", 0, 10, OK, 1, "b"),
			app(1, 2, "t/0", 1, 9, OK, 0, "a"),
			// A batch of three.
			app(2, 1, "t/0", 11, 20, OK, 2, "c", "d", "e"),
			// Unknown outcome that did take effect, and one that did not.
			app(3, 2, "t/0", 21, 30, Unknown, 0, "f"),
			app(4, 2, "t/0", 31, 40, Unknown, 0, "g"),
			// Refused by its condition: not in the log.
			app(5, 1, "t/0", 41, 42, Failed, 0, "h"),
			app(6, 1, "t/0", 43, 50, OK, 6, "i"),
			// Reads, one concurrent with the append it sees.
			read(7, "t/0", 44, 49, 6, "i"),
			read(8, "t/0", 51, 52, 0, "a"),
			// Commits going forward within generations; a new
			// generation may start lower.
			commit(9, "g", 1, "t/0", 60, 2),
			commit(10, "g", 1, "t/0", 61, 5),
			commit(11, "g", 2, "t/0", 62, 3),
			commit(12, "g", 2, "t/0", 63, 7),
			// Another log.
			app(13, 3, "wal/x", 0, 5, OK, 0, "x0", "x1"),
		},
		Final: map[string][]Entry{
			"t/0":   entries("a", "b", "c", "d", "e", "f", "i"),
			"wal/x": entries("x0", "x1"),
		},
	}
	r := check(t, h)
	if !r.OK() {
		t.Fatalf("a correct history was refused: %v", r.Problems)
	}
	if r.Linearizable["t/0"] != porcupine.Ok || r.Linearizable["wal/x"] != porcupine.Ok {
		t.Fatalf("porcupine: %v", r.Linearizable)
	}
	if r.Acked != 5 || r.Entries != 9 {
		t.Fatalf("acked %d entries %d, want 5 and 9", r.Acked, r.Entries)
	}
}

func TestCheckLostAck(t *testing.T) {
	r := check(t, History{
		Ops:   []Op{app(0, 1, "t/0", 0, 1, OK, 0, "a"), app(1, 1, "t/0", 2, 3, OK, 1, "b")},
		Final: map[string][]Entry{"t/0": entries("a")},
	})
	wantProblem(t, r, "lost acknowledged write")
	if r.Linearizable["t/0"] != porcupine.Illegal {
		t.Errorf("porcupine accepted a lost acknowledgement: %v", r.Linearizable)
	}
}

func TestCheckAckAtWrongOffset(t *testing.T) {
	// The log has everything, but b was acknowledged at 0 where a is.
	r := check(t, History{
		Ops:   []Op{app(0, 1, "t/0", 0, 1, OK, 0, "a"), app(1, 2, "t/0", 2, 3, OK, 0, "b")},
		Final: map[string][]Entry{"t/0": entries("a", "b")},
	})
	wantProblem(t, r, "offset 0 acknowledged to two appends")
	wantProblem(t, r, `acknowledged "b" at offset 0, but the log has "a"`)
	if r.Linearizable["t/0"] != porcupine.Illegal {
		t.Errorf("porcupine: %v", r.Linearizable)
	}
}

func TestCheckDuplicate(t *testing.T) {
	// A retried append written twice.
	r := check(t, History{
		Ops:   []Op{app(0, 1, "t/0", 0, 5, OK, 0, "a"), app(1, 1, "t/0", 6, 7, OK, 2, "b")},
		Final: map[string][]Entry{"t/0": entries("a", "a", "b")},
	})
	wantProblem(t, r, "duplicated")
	if r.Linearizable["t/0"] != porcupine.Illegal {
		t.Errorf("porcupine accepted a duplicate: %v", r.Linearizable)
	}
}

func TestCheckGap(t *testing.T) {
	r := check(t, History{
		Ops: []Op{app(0, 1, "t/0", 0, 1, OK, 0, "a"), app(1, 1, "t/0", 2, 3, OK, 2, "b")},
		Final: map[string][]Entry{"t/0": {
			{Offset: 0, Value: "a"}, {Offset: 2, Value: "b"},
		}},
	})
	wantProblem(t, r, "gap")
}

func TestCheckPhantomAndRefusedWrite(t *testing.T) {
	r := check(t, History{
		Ops:   []Op{app(0, 1, "t/0", 0, 1, OK, 0, "a"), app(1, 1, "t/0", 2, 3, Failed, 0, "b")},
		Final: map[string][]Entry{"t/0": entries("a", "b", "zz")},
	})
	wantProblem(t, r, "never appended")
	wantProblem(t, r, "a refusal that took effect")
}

func TestCheckStaleRead(t *testing.T) {
	// A read after b was acknowledged at 1 sees something else there.
	r := check(t, History{
		Ops: []Op{
			app(0, 1, "t/0", 0, 1, OK, 0, "a"), app(1, 1, "t/0", 2, 3, OK, 1, "b"),
			read(2, "t/0", 4, 5, 1, "c"),
		},
		Final: map[string][]Entry{"t/0": entries("a", "b")},
	})
	wantProblem(t, r, `"c" was read at offset 1`)
}

func TestCheckReadBeforeAppendIsNotLinearizable(t *testing.T) {
	// Every direct check passes: the value read is at that offset in
	// the end. But it was read before its append was even called, which
	// only the linearizability check can see.
	r := check(t, History{
		Ops: []Op{
			read(0, "t/0", 0, 1, 0, "a"),
			app(1, 1, "t/0", 2, 3, OK, 0, "a"),
		},
		Final: map[string][]Entry{"t/0": entries("a")},
	})
	if r.Linearizable["t/0"] != porcupine.Illegal {
		t.Fatalf("porcupine accepted a read from the future: %v", r.Linearizable)
	}
	wantProblem(t, r, "not linearizable")
}

func TestCheckCommitRegress(t *testing.T) {
	r := check(t, History{
		Ops: []Op{
			app(0, 1, "t/0", 0, 1, OK, 0, "a", "b", "c"),
			commit(1, "g", 4, "t/0", 10, 3),
			commit(2, "g", 4, "t/0", 11, 1),
		},
		Final: map[string][]Entry{"t/0": entries("a", "b", "c")},
	})
	wantProblem(t, r, "committed offset went back from 3")
}

func TestCheckCommitPastEnd(t *testing.T) {
	r := check(t, History{
		Ops: []Op{
			app(0, 1, "t/0", 0, 1, OK, 0, "a"),
			commit(1, "g", 1, "t/0", 10, 5),
		},
		Final: map[string][]Entry{"t/0": entries("a")},
	})
	wantProblem(t, r, "past the log's end")
}

func TestCheckMissingFinal(t *testing.T) {
	r := check(t, History{Ops: []Op{app(0, 1, "t/0", 0, 1, OK, 0, "a")}})
	wantProblem(t, r, "never read back")
}

func TestSucceededWithin(t *testing.T) {
	h := History{Ops: []Op{
		app(0, 1, "t/0", 0, 5, OK, 0, "a"),   // called before the outage
		app(1, 1, "t/0", 11, 15, OK, 1, "b"), // inside: a false success
		app(2, 1, "t/0", 12, 16, Unknown, 0, "c"),
		app(3, 1, "t/0", 18, 25, OK, 2, "d"), // answered after
	}}
	h.Ops = append(h.Ops, commit(4, "g", 1, "t/0", 14, 1))
	if got := h.SucceededWithin(10*ms, 20*ms, Append, Commit); len(got) != 2 {
		t.Fatalf("appends and commits inside: %v", got)
	}
	got := h.SucceededWithin(10*ms, 20*ms, Append)
	if len(got) != 1 || got[0].ID != 1 {
		t.Fatalf("got %v, want only #1", got)
	}
	first := h.FirstAckAfter(16 * ms)
	if first["t/0"] != 25*ms {
		t.Fatalf("first ack after 16ms: %v", first)
	}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder()
	a := r.Begin(Op{Client: 1, Kind: Append, Log: "t/0", Values: []string{"a"}})
	b := r.Begin(Op{Client: 2, Kind: Append, Log: "t/0", Values: []string{"b"}})
	b.Unknown(nil)
	a.OK(0)
	r.Read(3, "t/0", 0, "a", r.Now(), r.Now())
	r.Final("t/0", entries("a"))
	if first := r.FirstAckAfter(0); len(first) != 1 || first["t/0"] == 0 {
		t.Fatalf("recorder's first ack: %v", first)
	}
	h := r.History()
	if got := h.FirstAckAfter(0); got["t/0"] != r.FirstAckAfter(0)["t/0"] {
		t.Fatalf("history and recorder disagree on the first ack: %v", got)
	}
	if len(h.Ops) != 3 || h.Ops[0].Outcome != OK || h.Ops[1].Outcome != Unknown {
		t.Fatalf("ops: %v", h.Ops)
	}
	if res := Check(h, Options{Timeout: 10 * time.Second}); !res.OK() {
		t.Fatalf("problems: %v", res.Problems)
	}
}

func TestCheckMaxOpsKeepsDirectChecks(t *testing.T) {
	r := Check(History{
		Ops:   []Op{app(0, 1, "t/0", 0, 1, OK, 0, "a"), app(1, 1, "t/0", 2, 3, OK, 1, "b")},
		Final: map[string][]Entry{"t/0": entries("a")},
	}, Options{MaxOps: 1})
	if r.Linearizable["t/0"] != porcupine.Unknown {
		t.Errorf("porcupine ran on a log over MaxOps: %v", r.Linearizable)
	}
	wantProblem(t, r, "lost acknowledged write")
}
