package objstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/persistence/objstore/objstoretest"
)

func newFS(t *testing.T) *objstore.FS {
	t.Helper()
	s, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatalf("NewFS: %v", err)
	}
	return s
}

func TestFSAcceptance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return newFS(t) })
}

func TestFSIgnoresTempFiles(t *testing.T) {
	s := newFS(t)
	ctx := t.Context()
	if err := s.Put(ctx, "p/seg", []byte("data")); err != nil {
		t.Fatal(err)
	}
	// What a writer that crashed between creating and linking leaves behind.
	for _, name := range []string{".morax-tmp-123", "p/.morax-tmp-456"} {
		if err := os.WriteFile(filepath.Join(s.Dir(), filepath.FromSlash(name)), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := s.List(ctx, "", func(o objstore.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"p/seg"}) {
		t.Fatalf("List = %q, want only p/seg", keys)
	}
	// A successful Put leaves no temp file of its own.
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "p"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("directory holds %d entries, want the object and the planted temp file", len(entries))
	}
}

func TestFSRemoveStaleTemps(t *testing.T) {
	s := newFS(t)
	if err := s.Put(t.Context(), "p/seg", []byte("data")); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(s.Dir(), "p", ".morax-tmp-old")
	fresh := filepath.Join(s.Dir(), ".morax-tmp-fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	n, err := s.RemoveStaleTemps(t.Context(), time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("RemoveStaleTemps = %d, %v; want 1, nil", n, err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("stale temp file survived: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file (a Put in progress) was removed: %v", err)
	}
	if got, err := s.Get(t.Context(), "p/seg", 0, -1); err != nil || string(got) != "data" {
		t.Errorf("object harmed: %q, %v", got, err)
	}
}

func TestFSKeyAndDirectoryConflict(t *testing.T) {
	s := newFS(t)
	ctx := t.Context()
	if err := s.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// "a" is a directory here; a filesystem cannot also make it an object.
	// It must not be reported as ErrExists, which would claim an object.
	if err := s.Put(ctx, "a", []byte("y")); err == nil || errors.Is(err, objstore.ErrExists) {
		t.Fatalf("Put(a) over directory a = %v, want a non-ErrExists error", err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatalf("Delete(a) of a directory = %v, want nil (nothing to delete)", err)
	}
	if _, err := s.Get(ctx, "a/b", 0, -1); err != nil {
		t.Fatalf("Delete(a) harmed a/b: %v", err)
	}
	if err := s.Put(ctx, "a/b/c", []byte("z")); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("Put(a/b/c) below object a/b = %v, want ErrInvalidKey", err)
	}
	if _, err := s.Get(ctx, "a/b/c", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get(a/b/c) below object a/b = %v, want ErrNotFound", err)
	}
}

func TestFSReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "root")
	s, err := objstore.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "x/y", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	s2, err := objstore.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Get(t.Context(), "x/y", 0, -1)
	if err != nil || string(got) != "kept" {
		t.Fatalf("Get after reopen = %q, %v", got, err)
	}
	if err := s2.Put(t.Context(), "x/y", []byte("new")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("Put after reopen = %v, want ErrExists", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := objstore.NewFS(file); err == nil {
		t.Fatalf("NewFS on a regular file succeeded")
	}
}
