// Package objstoretest is test support for object stores: the acceptance
// suite every objstore.Store implementation must pass, so that the broker
// can rely on one set of semantics (create-only Put, ranged Get, ordered
// List) whatever the backend, and Faulty, a wrapper that makes a real store
// slow or failing. Production code never imports it.
package objstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/objstore"
)

// Run runs the suite. newStore must return a fresh, empty store for each
// call; Run closes it when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	t.Helper()
	open := func(t *testing.T) objstore.Store {
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, open(t)) })
	t.Run("PutTwice", func(t *testing.T) { testPutTwice(t, open(t)) })
	t.Run("ConcurrentPut", func(t *testing.T) { testConcurrentPut(t, open(t)) })
	t.Run("RangedGet", func(t *testing.T) { testRangedGet(t, open(t)) })
	t.Run("GetMissing", func(t *testing.T) { testGetMissing(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open(t)) })
	t.Run("List", func(t *testing.T) { testList(t, open(t)) })
	t.Run("NestedKeys", func(t *testing.T) { testNestedKeys(t, open(t)) })
	t.Run("InvalidKeys", func(t *testing.T) { testInvalidKeys(t, open(t)) })
	t.Run("Large", func(t *testing.T) { testLarge(t, open(t)) })
	t.Run("Canceled", func(t *testing.T) { testCanceled(t, open(t)) })
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPut(t *testing.T, s objstore.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

func mustGet(t *testing.T, s objstore.Store, key string, off, length int64) []byte {
	t.Helper()
	got, err := s.Get(t.Context(), key, off, length)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", key, off, length, err)
	}
	return got
}

func listAll(t *testing.T, s objstore.Store, prefix string) []objstore.ObjectInfo {
	t.Helper()
	var out []objstore.ObjectInfo
	if err := s.List(t.Context(), prefix, func(o objstore.ObjectInfo) error {
		out = append(out, o)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return out
}

func keysOf(infos []objstore.ObjectInfo) []string {
	keys := make([]string, len(infos))
	for i, o := range infos {
		keys[i] = o.Key
	}
	return keys
}

func testPutGet(t *testing.T, s objstore.Store) {
	data := []byte("hello, morax")
	mustPut(t, s, "greeting", data)
	if got := mustGet(t, s, "greeting", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("Get = %q, want %q", got, data)
	}
	// An empty object is an object: it exists and reads as nothing.
	mustPut(t, s, "empty", nil)
	if got := mustGet(t, s, "empty", 0, -1); len(got) != 0 {
		t.Fatalf("Get(empty) = %q, want nothing", got)
	}
	if err := s.Put(t.Context(), "empty", []byte("x")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("Put over an empty object = %v, want ErrExists", err)
	}
}

func testPutTwice(t *testing.T, s objstore.Store) {
	first := []byte("first")
	mustPut(t, s, "k", first)
	err := s.Put(t.Context(), "k", []byte("second, longer content"))
	if !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("second Put = %v, want ErrExists", err)
	}
	if got := mustGet(t, s, "k", 0, -1); !bytes.Equal(got, first) {
		t.Fatalf("after second Put, Get = %q, want the first content %q", got, first)
	}
	// Identical content is refused too: Put never overwrites.
	if err := s.Put(t.Context(), "k", first); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("Put of identical content = %v, want ErrExists", err)
	}
}

func testConcurrentPut(t *testing.T, s objstore.Store) {
	const writers = 8
	for round := range 3 {
		key := fmt.Sprintf("race/%d", round)
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			errs    = make([]error, writers)
			payload = make([][]byte, writers)
		)
		for i := range writers {
			// Distinct sizes and bytes, so the survivor is identifiable.
			payload[i] = bytes.Repeat([]byte{byte('a' + i)}, 1024*(i+1))
			wg.Go(func() {
				<-start
				errs[i] = s.Put(t.Context(), key, payload[i])
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both succeeded", round, winner, i)
				}
				winner = i
			case !errors.Is(err, objstore.ErrExists):
				t.Fatalf("round %d: writer %d: %v, want nil or ErrExists", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer succeeded", round)
		}
		if got := mustGet(t, s, key, 0, -1); !bytes.Equal(got, payload[winner]) {
			t.Fatalf("round %d: stored object (%d bytes) is not the winner's (%d bytes)", round, len(got), len(payload[winner]))
		}
	}
}

func testRangedGet(t *testing.T, s objstore.Store) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	mustPut(t, s, "ranged", data)
	cases := []struct {
		name        string
		off, length int64
		want        []byte
	}{
		{"whole", 0, -1, data},
		{"start", 0, 10, data[:10]},
		{"middle", 100, 50, data[100:150]},
		{"exact", 0, 1000, data},
		{"to end", 990, -1, data[990:]},
		{"last byte", 999, 1, data[999:]},
		{"overlapping end", 995, 10, data[995:]},
		{"longer than object", 0, 5000, data},
		{"at end", 1000, 10, nil},
		{"at end to end", 1000, -1, nil},
		{"past end", 2000, 10, nil},
		{"past end to end", 2000, -1, nil},
		{"zero length", 500, 0, nil},
		{"zero length past end", 5000, 0, nil},
	}
	for _, c := range cases {
		got, err := s.Get(t.Context(), "ranged", c.off, c.length)
		if err != nil {
			t.Errorf("%s: Get(%d, %d): %v", c.name, c.off, c.length, err)
			continue
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s: Get(%d, %d) = %d bytes, want %d", c.name, c.off, c.length, len(got), len(c.want))
		}
	}
	if _, err := s.Get(t.Context(), "ranged", -1, 10); err == nil {
		t.Errorf("Get with a negative offset succeeded")
	}
}

func testGetMissing(t *testing.T, s objstore.Store) {
	for _, r := range [][2]int64{{0, -1}, {0, 10}, {5, -1}, {0, 0}} {
		_, err := s.Get(t.Context(), "no/such/key", r[0], r[1])
		if !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get(missing, %d, %d) = %v, want ErrNotFound", r[0], r[1], err)
		}
	}
	// A key that is only a prefix of other keys is not an object.
	mustPut(t, s, "dir/file", []byte("x"))
	if _, err := s.Get(t.Context(), "dir", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Get(prefix of a key) = %v, want ErrNotFound", err)
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	mustPut(t, s, "del/a", []byte("a"))
	mustPut(t, s, "del/b", []byte("b"))
	if err := s.Delete(t.Context(), "del/a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(t.Context(), "del/a", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), "del/a"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := s.Delete(t.Context(), "never/existed"); err != nil {
		t.Fatalf("Delete(missing): %v", err)
	}
	if keys := keysOf(listAll(t, s, "del/")); !slices.Equal(keys, []string{"del/b"}) {
		t.Fatalf("List after Delete = %q, want [del/b]", keys)
	}
	// A deleted key can be written again.
	mustPut(t, s, "del/a", []byte("again"))
	if got := mustGet(t, s, "del/a", 0, -1); string(got) != "again" {
		t.Fatalf("Get after re-Put = %q", got)
	}
}

func testList(t *testing.T, s objstore.Store) {
	before := time.Now().Add(-time.Minute)
	// Written out of order; '-' (0x2d) sorts before '/' (0x2f), so "a-2"
	// comes before everything under "a/", as S3 lists it.
	objects := map[string]int{
		"list/c":      3,
		"list/a/1":    11,
		"list/a-2":    12,
		"list/a/0":    10,
		"list/bb/x/y": 20,
		"list/b":      2,
		"list/a0":     13,
		"lis":         1,
		"other/x":     4,
	}
	for _, k := range []string{"list/c", "list/a/1", "list/a-2", "list/a/0", "list/bb/x/y", "list/b", "list/a0", "lis", "other/x"} {
		mustPut(t, s, k, bytes.Repeat([]byte("z"), objects[k]))
	}
	after := time.Now().Add(time.Minute)

	check := func(prefix string, want []string) {
		t.Helper()
		infos := listAll(t, s, prefix)
		if got := keysOf(infos); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
			return
		}
		for _, o := range infos {
			if o.Size != int64(objects[o.Key]) {
				t.Errorf("List(%q): %s has size %d, want %d", prefix, o.Key, o.Size, objects[o.Key])
			}
			if o.LastModified.Before(before) || o.LastModified.After(after) {
				t.Errorf("List(%q): %s LastModified %v outside [%v, %v]", prefix, o.Key, o.LastModified, before, after)
			}
		}
	}
	check("list/", []string{"list/a-2", "list/a/0", "list/a/1", "list/a0", "list/b", "list/bb/x/y", "list/c"})
	check("list/a", []string{"list/a-2", "list/a/0", "list/a/1", "list/a0"})
	check("list/a/", []string{"list/a/0", "list/a/1"})
	check("list/b", []string{"list/b", "list/bb/x/y"})
	check("lis", []string{"lis", "list/a-2", "list/a/0", "list/a/1", "list/a0", "list/b", "list/bb/x/y", "list/c"})
	check("", []string{"lis", "list/a-2", "list/a/0", "list/a/1", "list/a0", "list/b", "list/bb/x/y", "list/c", "other/x"})
	check("list/c", []string{"list/c"})
	check("nothing/", nil)
	check("list/zzz", nil)
	check("../", nil)

	// List stops at the first error fn returns and hands that error back.
	stop := errors.New("stop here")
	var seen []string
	err := s.List(t.Context(), "list/", func(o objstore.ObjectInfo) error {
		seen = append(seen, o.Key)
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("List with a failing fn = %v, want the fn's error", err)
	}
	if len(seen) != 2 {
		t.Errorf("List called fn %d times after it failed on the 2nd", len(seen))
	}
}

func testNestedKeys(t *testing.T, s objstore.Store) {
	keys := []string{
		"topics/0a1b/p/00000003/e/00000007/00000000000000000000.seg",
		"topics/0a1b/p/00000003/e/00000007/00000000000000001000.seg",
		"topics/0a1b/p/00000012/e/00000001/00000000000000000000.seg",
	}
	for i, k := range keys {
		mustPut(t, s, k, []byte{byte(i)})
	}
	for i, k := range keys {
		if got := mustGet(t, s, k, 0, -1); !bytes.Equal(got, []byte{byte(i)}) {
			t.Errorf("Get(%q) = %v", k, got)
		}
	}
	if got := keysOf(listAll(t, s, "topics/0a1b/p/00000003/")); !slices.Equal(got, keys[:2]) {
		t.Errorf("List = %q, want %q", got, keys[:2])
	}
	if got := keysOf(listAll(t, s, "topics/")); !slices.Equal(got, keys) {
		t.Errorf("List = %q, want %q", got, keys)
	}
}

func testInvalidKeys(t *testing.T, s objstore.Store) {
	for _, k := range []string{"", "/abs", "a/../b", "..", "./a", "a/.", "a//b", "a/", "a\x00b", ".morax-tmp-x", "a/.morax-tmp-1"} {
		if err := s.Put(t.Context(), k, []byte("x")); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Get(t.Context(), k, 0, -1); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", k, err)
		}
		if err := s.Delete(t.Context(), k); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
	if got := listAll(t, s, ""); len(got) != 0 {
		t.Errorf("invalid Puts left objects: %q", keysOf(got))
	}
	// Dots inside a segment are ordinary characters.
	mustPut(t, s, "a/.hidden/b..c/.d", []byte("ok"))
	if got := mustGet(t, s, "a/.hidden/b..c/.d", 0, -1); string(got) != "ok" {
		t.Errorf("Get = %q", got)
	}
}

func testLarge(t *testing.T, s objstore.Store) {
	data := randomBytes(t, 8<<20)
	mustPut(t, s, "large", data)
	if got := mustGet(t, s, "large", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("Get(large) returned %d bytes that differ from the %d written", len(got), len(data))
	}
	off, n := int64(3<<20+17), int64(1<<20+3)
	if got := mustGet(t, s, "large", off, n); !bytes.Equal(got, data[off:off+n]) {
		t.Fatalf("ranged Get(large) differs")
	}
	infos := listAll(t, s, "large")
	if len(infos) != 1 || infos[0].Size != int64(len(data)) {
		t.Fatalf("List(large) = %+v", infos)
	}
}

func testCanceled(t *testing.T, s objstore.Store) {
	mustPut(t, s, "exists", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "canceled", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "exists", 0, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context = %v, want context.Canceled", err)
	}
	if err := s.List(ctx, "", func(objstore.ObjectInfo) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled context = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "exists"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a canceled context = %v, want context.Canceled", err)
	}
	// A Put that failed because of its context must not have stored anything,
	// and the failed Delete must not have removed anything.
	if _, err := s.Get(t.Context(), "canceled", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Get after a canceled Put = %v, want ErrNotFound", err)
	}
	mustGet(t, s, "exists", 0, -1)

	// A deadline that passes while the call runs is an error too.
	ctx, cancel = context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if _, err := s.Get(ctx, "exists", 0, -1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get past its deadline = %v, want context.DeadlineExceeded", err)
	}
}
