package metatest

import (
	"slices"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
)

func testNodes(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	started := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	must(t, s.Heartbeat(ctx, meta.Node{ID: "n2", KafkaAddr: "k2:9092", WALAddr: "w2:8080", RemoteAddr: "r2:8090"}), "heartbeat n2")
	must(t, s.Heartbeat(ctx, meta.Node{ID: "n1", KafkaAddr: "k1:9092", WALAddr: "w1:8080", RemoteAddr: "r1:8090", StartedAt: started}), "heartbeat n1")
	ns, err := s.LiveNodes(ctx, time.Minute)
	must(t, err, "live")
	if len(ns) != 2 || ns[0].ID != "n1" || ns[1].ID != "n2" {
		t.Fatalf("live nodes: %+v", ns)
	}
	n1 := ns[0]
	if n1.KafkaAddr != "k1:9092" || n1.WALAddr != "w1:8080" || n1.RemoteAddr != "r1:8090" || !n1.StartedAt.Equal(started) ||
		n1.HeartbeatAt.IsZero() {
		t.Fatalf("n1: %+v", n1)
	}
	if ns[1].StartedAt.IsZero() {
		t.Fatalf("n2 start not stamped: %+v", ns[1])
	}

	// A refresh moves the heartbeat and the addresses, keeps the start.
	time.Sleep(10 * time.Millisecond)
	must(t, s.Heartbeat(ctx, meta.Node{ID: "n1", KafkaAddr: "k1:9093", WALAddr: "w1:8080", RemoteAddr: "r1:8090"}), "refresh n1")
	ns, err = s.LiveNodes(ctx, time.Minute)
	must(t, err, "live")
	if got := ns[0]; got.KafkaAddr != "k1:9093" || !got.StartedAt.Equal(started) || !got.HeartbeatAt.After(n1.HeartbeatAt) {
		t.Fatalf("refreshed n1: %+v (was %+v)", got, n1)
	}

	must(t, s.RemoveNode(ctx, "n2"), "remove")
	must(t, s.RemoveNode(ctx, "n2"), "remove again")
	ns, err = s.LiveNodes(ctx, time.Minute)
	must(t, err, "live")
	if len(ns) != 1 || ns[0].ID != "n1" {
		t.Fatalf("after remove: %+v", ns)
	}
	wantErr(t, s.Heartbeat(ctx, meta.Node{}), meta.ErrInvalid, "heartbeat without id")
}

func testNodesExpire(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	const within = 2 * time.Second
	live := func() []string {
		t.Helper()
		ns, err := s.LiveNodes(ctx, within)
		must(t, err, "live")
		var ids []string
		for _, n := range ns {
			ids = append(ids, n.ID)
		}
		return ids
	}
	// beat heartbeats id and returns a time no later than the heartbeat's
	// database timestamp. The checks below compare elapsed times on the
	// test's clock with ages on the database clock, which holds as long as
	// both clocks run at the same rate (the offset between them cancels).
	beat := func(id string) time.Time {
		t.Helper()
		before := time.Now()
		must(t, s.Heartbeat(ctx, meta.Node{ID: id}), "heartbeat "+id)
		return before
	}
	// mustBeLive fails if id, whose last beat began at since, is missing
	// although less than within has passed. (If more has passed, a stalled
	// machine delayed the test, and the node is rightly gone.)
	mustBeLive := func(got []string, id string, since time.Time) {
		t.Helper()
		if !slices.Contains(got, id) && time.Since(since) < within {
			t.Fatalf("%s is not live %v after its last beat: %q", id, time.Since(since), got)
		}
	}
	lastB := beat("b")
	lastA := beat("a")
	got := live()
	mustBeLive(got, "a", lastA)
	mustBeLive(got, "b", lastB)
	// a keeps beating, b stops: b drops out once its last beat is older than
	// within by the database clock, and not before.
	eventually(t, 15*time.Second, "b drops out", func() bool {
		lastA = beat("a")
		got := live()
		mustBeLive(got, "a", lastA)
		if slices.Contains(got, "b") {
			return false
		}
		if el := time.Since(lastB); el < within {
			t.Fatalf("b dropped out %v after its last beat, within is %v", el, within)
		}
		return true
	})
	// A beat brings b back.
	lastB = beat("b")
	got = live()
	mustBeLive(got, "b", lastB)
	mustBeLive(got, "a", lastA)
}
