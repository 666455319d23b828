package metatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
)

func testLeaseAcquireRenewRelease(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	const r = "p/test/0"
	l, err := s.AcquireLease(ctx, r, "n1", longTTL)
	must(t, err, "acquire vacant")
	if l.Resource != r || l.Owner != "n1" || l.Epoch != 1 {
		t.Fatalf("first grant: %+v", l)
	}
	if time.Until(l.ExpiresAt) < longTTL/2 {
		t.Fatalf("expires at %v, ttl %v", l.ExpiresAt, longTTL)
	}

	again, err := s.AcquireLease(ctx, r, "n1", longTTL)
	must(t, err, "acquire by owner")
	if again.Epoch != 1 || again.ExpiresAt.Before(l.ExpiresAt) {
		t.Fatalf("re-acquire by owner: %+v (was %+v)", again, l)
	}
	renewed, err := s.RenewLease(ctx, r, "n1", 1, 2*longTTL)
	must(t, err, "renew")
	if renewed.Epoch != 1 || renewed.Owner != "n1" || !renewed.ExpiresAt.After(again.ExpiresAt) {
		t.Fatalf("renew: %+v (was %+v)", renewed, again)
	}

	_, err = s.AcquireLease(ctx, r, "n2", longTTL)
	wantErr(t, err, meta.ErrLeaseHeld, "acquire held lease")
	_, err = s.RenewLease(ctx, r, "n2", 1, longTTL)
	wantErr(t, err, meta.ErrFenced, "renew by non-owner")
	_, err = s.RenewLease(ctx, r, "n1", 2, longTTL)
	wantErr(t, err, meta.ErrFenced, "renew at wrong epoch")
	_, err = s.RenewLease(ctx, "p/none/0", "n1", 1, longTTL)
	wantErr(t, err, meta.ErrFenced, "renew missing lease")

	// Releasing what one does not hold changes nothing.
	must(t, s.ReleaseLease(ctx, r, "n2", 1), "release by non-owner")
	must(t, s.ReleaseLease(ctx, r, "n1", 7), "release at wrong epoch")
	must(t, s.ReleaseLease(ctx, "p/none/0", "n1", 1), "release missing")
	_, err = s.AcquireLease(ctx, r, "n2", longTTL)
	wantErr(t, err, meta.ErrLeaseHeld, "acquire after no-op releases")

	must(t, s.ReleaseLease(ctx, r, "n1", 1), "release")
	ls, err := s.Leases(ctx, r)
	must(t, err, "leases")
	if len(ls) != 1 || ls[0].Owner != "" || ls[0].Epoch != 1 {
		t.Fatalf("released lease: %+v", ls)
	}
	_, err = s.RenewLease(ctx, r, "n1", 1, longTTL)
	wantErr(t, err, meta.ErrFenced, "renew released lease")

	l2, err := s.AcquireLease(ctx, r, "n2", longTTL)
	must(t, err, "acquire released")
	if l2.Owner != "n2" || l2.Epoch != 2 {
		t.Fatalf("grant after release: %+v", l2)
	}
	_, err = s.RenewLease(ctx, r, "n1", 1, longTTL)
	wantErr(t, err, meta.ErrFenced, "renew by previous owner")

	// The previous owner coming back after a release gets a new epoch too.
	must(t, s.ReleaseLease(ctx, r, "n2", 2), "release by n2")
	l3, err := s.AcquireLease(ctx, r, "n1", longTTL)
	must(t, err, "acquire by first owner again")
	if l3.Epoch != 3 {
		t.Fatalf("grant back to n1: %+v", l3)
	}

	for _, bad := range []struct {
		r, o string
		ttl  time.Duration
	}{{"", "n1", time.Second}, {r, "", time.Second}, {r, "n1", 0}} {
		_, err := s.AcquireLease(ctx, bad.r, bad.o, bad.ttl)
		wantErr(t, err, meta.ErrInvalid, fmt.Sprintf("acquire %+v", bad))
	}
}

func testLeaseExpiry(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	const r, ttl = "g/7", 300 * time.Millisecond
	start := time.Now()
	l, err := s.AcquireLease(ctx, r, "n1", ttl)
	must(t, err, "acquire")
	if l.Epoch != 1 {
		t.Fatalf("first grant: %+v", l)
	}
	var took meta.Lease
	eventually(t, 10*time.Second, "takeover after expiry", func() bool {
		got, err := s.AcquireLease(ctx, r, "n2", longTTL)
		if errors.Is(err, meta.ErrLeaseHeld) {
			return false
		}
		must(t, err, "acquire expired")
		// The lease expires ttl after the grant by the database clock, and
		// the grant happened after start.
		if el := time.Since(start); el < ttl {
			t.Fatalf("taken over after %v, before the ttl %v", el, ttl)
		}
		took = got
		return true
	})
	if took.Owner != "n2" || took.Epoch != 2 {
		t.Fatalf("takeover: %+v", took)
	}
	_, err = s.RenewLease(ctx, r, "n1", 1, ttl)
	wantErr(t, err, meta.ErrFenced, "renew after takeover")

	// An expired lease cannot be renewed even if nobody took it: the owner
	// must acquire again and gets a new epoch.
	const r2 = "g/8"
	l, err = s.AcquireLease(ctx, r2, "n1", ttl)
	must(t, err, "acquire")
	time.Sleep(ttl + 100*time.Millisecond)
	_, err = s.RenewLease(ctx, r2, "n1", l.Epoch, ttl)
	wantErr(t, err, meta.ErrFenced, "renew expired")
	l, err = s.AcquireLease(ctx, r2, "n1", longTTL)
	must(t, err, "re-acquire expired")
	if l.Epoch != 2 {
		t.Fatalf("re-acquire after expiry: %+v", l)
	}
}

func testLeaseList(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	for _, r := range []string{"p/b/1", "p/a/0", "g/1", "p/a/1", "p_x"} {
		_, err := s.AcquireLease(ctx, r, "n1", longTTL)
		must(t, err, "acquire "+r)
	}
	names := func(prefix string) []string {
		ls, err := s.Leases(ctx, prefix)
		must(t, err, "leases")
		var out []string
		for _, l := range ls {
			if l.Owner != "n1" || l.Epoch != 1 {
				t.Fatalf("lease %+v", l)
			}
			out = append(out, l.Resource)
		}
		return out
	}
	for prefix, want := range map[string][]string{
		"":      {"g/1", "p/a/0", "p/a/1", "p/b/1", "p_x"},
		"p/":    {"p/a/0", "p/a/1", "p/b/1"},
		"p/a/":  {"p/a/0", "p/a/1"},
		"p_":    {"p_x"},
		"g/1":   {"g/1"},
		"zzz":   nil,
		"p/a/0": {"p/a/0"},
	} {
		if got := names(prefix); !slices.Equal(got, want) {
			t.Errorf("Leases(%q) = %q, want %q", prefix, got, want)
		}
	}
}

func testLeaseConcurrentAcquire(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	const r, n = "p/race/0", 8
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		owners []string
	)
	gate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-gate
			owner := fmt.Sprintf("n%d", i)
			l, err := s.AcquireLease(ctx, r, owner, longTTL)
			if errors.Is(err, meta.ErrLeaseHeld) {
				return
			}
			if err != nil {
				t.Errorf("acquire: %v", err)
				return
			}
			if l.Epoch != 1 {
				t.Errorf("winner got epoch %d", l.Epoch)
			}
			mu.Lock()
			owners = append(owners, owner)
			mu.Unlock()
		})
	}
	close(gate)
	wg.Wait()
	if len(owners) != 1 {
		t.Fatalf("%d nodes acquired the same lease: %q", len(owners), owners)
	}
}

// testLeaseRenewAll checks that RenewLeases extends exactly the unexpired
// leases of one owner: not another owner's, not a released one, not an
// expired one (which another node may have been promised).
func testLeaseRenewAll(t *testing.T, s meta.Store) {
	ctx := context.Background()
	for _, r := range []string{"p/a/0", "p/a/1", "g/3"} {
		_, err := s.AcquireLease(ctx, r, "n1@x", time.Second)
		must(t, err, "acquire "+r)
	}
	_, err := s.AcquireLease(ctx, "p/b/0", "n2@y", time.Second)
	must(t, err, "acquire other")
	rel, err := s.AcquireLease(ctx, "p/a/2", "n1@x", time.Second)
	must(t, err, "acquire released")
	must(t, s.ReleaseLease(ctx, "p/a/2", "n1@x", rel.Epoch), "release")
	_, err = s.AcquireLease(ctx, "p/a/3", "n1@x", time.Millisecond)
	must(t, err, "acquire short")
	time.Sleep(20 * time.Millisecond) // p/a/3 expires

	ls, err := s.RenewLeases(ctx, "n1@x", time.Minute)
	must(t, err, "renew all")
	got := map[string]meta.Lease{}
	for _, l := range ls {
		got[l.Resource] = l
	}
	if len(got) != 3 || got["p/a/0"].Owner != "n1@x" || got["p/a/1"].Epoch < 1 || got["g/3"].Resource == "" {
		t.Fatalf("renewed %+v, want p/a/0, p/a/1 and g/3", ls)
	}
	after, err := s.Leases(ctx, "")
	must(t, err, "list")
	for _, l := range after {
		long := time.Until(l.ExpiresAt) > 30*time.Second
		if _, renewed := got[l.Resource]; renewed != long {
			t.Fatalf("lease %+v: renewed %v but expires in %v", l, renewed, time.Until(l.ExpiresAt))
		}
	}
	if ls, err := s.RenewLeases(ctx, "nobody@z", time.Minute); err != nil || len(ls) != 0 {
		t.Fatalf("renewing an owner with no leases: %v, %v", ls, err)
	}
	if _, err := s.RenewLeases(ctx, "", time.Minute); !errors.Is(err, meta.ErrInvalid) {
		t.Fatalf("renewing for no owner: %v, want ErrInvalid", err)
	}
}

// testLeaseReleaseStale checks that a node's dead incarnations' leases are
// vacated, keeping their epochs, and nothing else: not the current
// incarnation's, not another node's, not a node whose id merely starts
// with the same letters.
func testLeaseReleaseStale(t *testing.T, s meta.Store) {
	ctx := context.Background()
	held := map[string]string{"p/a/0": "n1@old", "p/a/1": "n1@older", "p/a/2": "n1@new", "p/a/3": "n10@x", "g/1": "n2@y"}
	epochs := map[string]int64{}
	for r, o := range held {
		l, err := s.AcquireLease(ctx, r, o, time.Minute)
		must(t, err, "acquire "+r)
		epochs[r] = l.Epoch
	}
	n, err := s.ReleaseStaleLeases(ctx, "n1", "n1@new")
	must(t, err, "release stale")
	if n != 2 {
		t.Fatalf("released %d leases, want 2", n)
	}
	ls, err := s.Leases(ctx, "")
	must(t, err, "list")
	for _, l := range ls {
		want := held[l.Resource]
		if l.Resource == "p/a/0" || l.Resource == "p/a/1" {
			want = ""
		}
		if l.Owner != want || l.Epoch != epochs[l.Resource] {
			t.Fatalf("lease %+v: want owner %q at epoch %d", l, want, epochs[l.Resource])
		}
	}
	// The next owner gets a new epoch at once, without waiting for expiry.
	l, err := s.AcquireLease(ctx, "p/a/0", "n1@new", time.Minute)
	must(t, err, "acquire released")
	if l.Epoch <= epochs["p/a/0"] {
		t.Fatalf("epoch %d after release, was %d", l.Epoch, epochs["p/a/0"])
	}
	if _, err := s.ReleaseStaleLeases(ctx, "n1", "n2@z"); !errors.Is(err, meta.ErrInvalid) {
		t.Fatalf("current incarnation of another node: %v, want ErrInvalid", err)
	}
}
