package actors

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// probe is a request that records how often it was answered.
type probe struct {
	answers atomic.Int32
	err     atomic.Pointer[error]
}

func (r *probe) fail(err error) {
	r.err.Store(&err)
	r.answers.Add(1)
}
func (r *probe) size() int { return 0 }
func (r *probe) ok() {
	r.answers.Add(1)
}

// closeNow asks the test owner to close its mailbox.
type closeNow struct{}

// testOwner answers probes until told to close; hold, when set, blocks
// its goroutine on every probe until closed.
type testOwner struct {
	mb   *mailbox
	hold chan struct{}
	done chan struct{} // closed when the actor stopped
}

func (o *testOwner) Receive(ctx actor.Context) {
	if !o.mb.receive(ctx) {
		return
	}
	switch m := ctx.Message().(type) {
	case *probe:
		if o.hold != nil {
			<-o.hold
		}
		m.ok()
	case closeNow:
		o.mb.close(ctx)
	case *actor.Stopped:
		close(o.done)
	}
}

func spawnTestOwner(t *testing.T, limit int64, hold chan struct{}) (*mailbox, *testOwner, *metrics) {
	t.Helper()
	return spawnTestOwnerHandingBack(t, limit, hold, nil)
}

// spawnTestOwnerHandingBack is spawnTestOwner for a kind whose closed
// mailboxes hand requests to handBack.
func spawnTestOwnerHandingBack(t *testing.T, limit int64, hold chan struct{}, handBack func(Request)) (*mailbox, *testOwner, *metrics) {
	t.Helper()
	system := actor.NewActorSystem()
	t.Cleanup(system.Shutdown)
	m := newMetrics(prometheus.NewRegistry(), &budget{})
	kind := newMailboxKind(m, "test", limit, ErrNotOwner)
	kind.handBack = handBack
	owner := &testOwner{hold: hold, done: make(chan struct{})}
	mb, err := spawnOwner(system.Root, system.Root, kind, "owner", func(mb *mailbox) actor.Actor {
		owner.mb = mb
		return owner
	})
	if err != nil {
		t.Fatal(err)
	}
	return mb, owner, m
}

// floodAcrossClose sends 8×200 probes from 8 goroutines, one of which
// tells the owner to close its mailbox halfway, and waits for the owner
// to stop.
func floodAcrossClose(t *testing.T, mb *mailbox, owner *testOwner, round int) []*probe {
	t.Helper()
	const senders, each = 8, 200
	probes := make([]*probe, senders*each)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := &probe{}
				probes[s*each+i] = p
				mb.request(p)
				if s == 0 && i == each/2 {
					mb.tell(closeNow{})
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-owner.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("round %d: the owner did not stop after closing its mailbox", round)
	}
	return probes
}

// TestMailboxAnswersEveryRequestAcrossClose sends requests from many
// goroutines while the owner closes its mailbox: every request is
// answered exactly once (served before the close, refused with the kind's
// error after it), and the actor stops by itself once nothing is in
// flight, with no grace timer and no dead-letter subscription.
func TestMailboxAnswersEveryRequestAcrossClose(t *testing.T) {
	for round := range 20 {
		mb, owner, m := spawnTestOwner(t, 0, nil)
		probes := floodAcrossClose(t, mb, owner, round)
		refused := 0
		for i, p := range probes {
			if n := p.answers.Load(); n != 1 {
				t.Fatalf("round %d: request %d answered %d times", round, i, n)
			}
			if e := p.err.Load(); e != nil {
				if !errors.Is(*e, ErrNotOwner) {
					t.Fatalf("round %d: request %d refused with %v, want ErrNotOwner", round, i, *e)
				}
				refused++
			}
		}
		if refused == 0 {
			t.Fatalf("round %d: no request was refused although the mailbox closed midway", round)
		}
		if d := testutil.ToFloat64(m.mailboxDepth.WithLabelValues("test")); d != 0 {
			t.Fatalf("round %d: mailbox depth %v after the owner stopped, want 0", round, d)
		}
	}
}

// TestMailboxRefusesPastItsLimit blocks the owner on its first request:
// the mailbox queues up to its limit, refuses the rest with
// ErrBackpressure, and shows its depth.
func TestMailboxRefusesPastItsLimit(t *testing.T) {
	hold := make(chan struct{})
	mb, _, m := spawnTestOwner(t, 4, hold)
	first := &probe{}
	mb.request(first)
	// The first is taken by the owner (blocked in its handler) once the
	// depth drops back to zero.
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.mailboxDepth.WithLabelValues("test")) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the owner never took its first request")
		}
		time.Sleep(time.Millisecond)
	}
	queued := make([]*probe, 4)
	for i := range queued {
		queued[i] = &probe{}
		mb.request(queued[i])
	}
	over := &probe{}
	mb.request(over)
	if e := over.err.Load(); e == nil || !errors.Is(*e, ErrBackpressure) {
		t.Fatalf("request past the limit: answers %d, err %v; want ErrBackpressure at once", over.answers.Load(), e)
	}
	if d := testutil.ToFloat64(m.mailboxDepth.WithLabelValues("test")); d != 4 {
		t.Fatalf("mailbox depth %v, want 4", d)
	}
	if n := testutil.ToFloat64(m.mailboxRefused.WithLabelValues("test")); n != 1 {
		t.Fatalf("refused counter %v, want 1", n)
	}
	close(hold)
	for _, p := range append(queued, first) {
		deadline := time.Now().Add(5 * time.Second)
		for p.answers.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("a queued request was never served")
			}
			time.Sleep(time.Millisecond)
		}
		if e := p.err.Load(); e != nil {
			t.Fatalf("queued request refused: %v", *e)
		}
	}
}

// TestMailboxHandsBackAfterClose is TestMailboxAnswersEveryRequestAcrossClose
// for a kind that hands requests back once closed: every request is either
// served or handed back, exactly once, and none is refused.
func TestMailboxHandsBackAfterClose(t *testing.T) {
	for round := range 20 {
		var handed sync.Map // *probe -> *atomic.Int32
		handBack := func(r Request) {
			n, _ := handed.LoadOrStore(r, &atomic.Int32{})
			n.(*atomic.Int32).Add(1)
		}
		mb, owner, _ := spawnTestOwnerHandingBack(t, 0, nil, handBack)
		probes := floodAcrossClose(t, mb, owner, round)
		back := 0
		for i, p := range probes {
			served := p.answers.Load()
			var returned int32
			if n, ok := handed.Load(p); ok {
				returned = n.(*atomic.Int32).Load()
			}
			if p.err.Load() != nil || served+returned != 1 {
				t.Fatalf("round %d: request %d served %d times, handed back %d times, err %v", round, i, served, returned, p.err.Load())
			}
			back += int(returned)
		}
		if back == 0 {
			t.Fatalf("round %d: no request was handed back although the mailbox closed midway", round)
		}
	}
}
