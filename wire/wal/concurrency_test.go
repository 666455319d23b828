package wal_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/morax-dev/morax/wire/wal/client"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

// TestConcurrentAppends has 32 goroutines append to one log at once. The
// ranges they get back must be disjoint and cover 0..N densely, every
// range must hold exactly the entries of the append it was returned for,
// and reading the log back must return every entry once.
func TestConcurrentAppends(t *testing.T) {
	const (
		writers   = 32
		appends   = 10 // per writer
		perAppend = 5  // entries per append
		total     = writers * appends * perAppend
	)
	waltest.ForEachBackend(t, waltest.Options{}, func(t *testing.T, n *waltest.Node) {
		ctx := t.Context()
		if err := n.Client.Create(ctx, "busy", nil); err != nil {
			t.Fatal(err)
		}
		type result struct {
			r       client.Range
			entries [][]byte
		}
		var mu sync.Mutex
		var results []result
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for a := range appends {
					es := make([][]byte, perAppend)
					for i := range es {
						es[i] = fmt.Appendf(nil, "w%02d-a%02d-e%d", w, a, i)
					}
					r, err := n.Client.Append(ctx, "busy", es)
					if err != nil {
						t.Errorf("writer %d append %d: %v", w, a, err)
						return
					}
					mu.Lock()
					results = append(results, result{r, es})
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}

		// Disjoint and dense.
		slices.SortFunc(results, func(a, b result) int { return int(a.r.Start - b.r.Start) })
		want := make([][]byte, 0, total)
		next := int64(0)
		for _, res := range results {
			if res.r.Start != next || res.r.Len() != perAppend {
				t.Fatalf("range %v after offset %d: ranges overlap, leave a gap or have the wrong size", res.r, next)
			}
			next = res.r.End
			want = append(want, res.entries...)
		}
		if next != total {
			t.Fatalf("ranges cover 0..%d, want 0..%d", next, total)
		}

		// Read back in pages: every entry once, where its append said.
		seen := map[string]bool{}
		off := int64(0)
		for off < total {
			res, err := n.Client.Read(ctx, "busy", off, &client.ReadOptions{MaxEntries: 97})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Entries) == 0 {
				t.Fatalf("read at %d returned nothing, end %d", off, res.EndOffset)
			}
			for _, e := range res.Entries {
				if e.Index != off {
					t.Fatalf("entry index %d, want %d", e.Index, off)
				}
				if string(e.Data) != string(want[off]) {
					t.Fatalf("offset %d holds %q, its append wrote %q", off, e.Data, want[off])
				}
				if seen[string(e.Data)] {
					t.Fatalf("entry %q read twice", e.Data)
				}
				seen[string(e.Data)] = true
				off++
			}
		}
		if len(seen) != total {
			t.Fatalf("read %d distinct entries, want %d", len(seen), total)
		}
	})
}

// TestConcurrentConditionalAppends has writers race with expected_offset:
// at every offset exactly one wins, and the losers learn the new end.
func TestConcurrentConditionalAppends(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	ctx := t.Context()
	if err := n.Client.Create(ctx, "fenced", nil); err != nil {
		t.Fatal(err)
	}
	const writers, rounds = 8, 10
	wins := make([]int, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			expected := int64(0)
			for expected < rounds {
				r, err := n.Client.AppendIf(ctx, "fenced", [][]byte{fmt.Appendf(nil, "w%d@%d", w, expected)}, expected)
				if err == nil {
					wins[w]++
					expected = r.End
					continue
				}
				var ae *client.APIError
				if !errors.As(err, &ae) || ae.Code != client.CodeConflict || ae.EndOffset < expected {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				expected = ae.EndOffset
			}
		})
	}
	wg.Wait()
	sum := 0
	for _, w := range wins {
		sum += w
	}
	res, err := n.Client.Read(ctx, "fenced", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != sum || sum < rounds {
		t.Fatalf("%d wins but %d entries (want at least %d)", sum, len(res.Entries), rounds)
	}
	for i, e := range res.Entries {
		var w, at int
		if _, err := fmt.Sscanf(string(e.Data), "w%d@%d", &w, &at); err != nil || at != i {
			t.Fatalf("entry %d is %q: written by a writer that expected offset %d", i, e.Data, at)
		}
	}
}
