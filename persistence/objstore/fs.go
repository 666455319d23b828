package objstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FS is a Store on a local filesystem directory, the embedded default for a
// single node. A key's '/'-separated segments become subdirectories.
//
// Put is create-only and durable: the data goes to a temporary file that is
// fsynced and then hard-linked to the key's name. A link, unlike a rename,
// fails when the name exists, so a second Put of a key can never replace the
// first object, even when two processes share the directory.
//
// Limitation: a key cannot also be a directory of other keys ("a" and "a/b"),
// which S3 would allow; Morax's key layout never does this.
//
// Deleted objects leave their (possibly empty) directories behind; removing
// them would race with a concurrent Put creating a file inside.
type FS struct {
	root string
	// durableDirs holds the directories whose own entry (in their parent) this
	// FS has created or fsynced, so a Put fsyncs a parent directory once per
	// process rather than on every call. A directory that merely exists is not
	// enough: another Put may have created it and not yet fsynced its parent.
	durableDirs sync.Map // string (absolute path) -> struct{}
}

var (
	_ Store            = (*FS)(nil)
	_ StaleTempRemover = (*FS)(nil)
)

// NewFS returns a store rooted at dir, creating dir if needed.
func NewFS(dir string) (*FS, error) {
	if dir == "" {
		return nil, errors.New("objstore: NewFS: empty directory")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore: NewFS %s: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("objstore: NewFS: %w", err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("objstore: NewFS: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("objstore: NewFS: %s is not a directory", root)
	}
	// The root may have been created just now; make its entry durable too.
	if err := syncDir(filepath.Dir(root)); err != nil {
		return nil, fmt.Errorf("objstore: NewFS: %w", err)
	}
	f := &FS{root: root}
	f.durableDirs.Store(root, struct{}{})
	return f, nil
}

// Dir returns the absolute root directory of the store.
func (f *FS) Dir() string { return f.root }

func (f *FS) path(key string) string {
	return filepath.Join(f.root, filepath.FromSlash(key))
}

// Put implements Store.
func (f *FS) Put(ctx context.Context, key string, data []byte) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("objstore: put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: put %q: %w", key, err)
	}
	final := f.path(key)
	dir := filepath.Dir(final)
	if err := f.ensureDir(dir); err != nil {
		return fmt.Errorf("objstore: put %q: %w", key, err)
	}

	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("objstore: put %q: %w", key, err)
	}
	tmpName := tmp.Name()
	// The temp name is removed on every path: after a successful link the
	// object lives on under its final name.
	defer os.Remove(tmpName)

	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("objstore: put %q: write: %w", key, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("objstore: put %q: fsync: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("objstore: put %q: close: %w", key, err)
	}
	// Last point where giving up leaves nothing behind; once linked, the
	// object exists whatever the caller wanted.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: put %q: %w", key, err)
	}
	if err := os.Link(tmpName, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			if st, serr := os.Lstat(final); serr == nil && st.IsDir() {
				return fmt.Errorf("objstore: put %q: %w: the key is a directory of other keys", key, ErrInvalidKey)
			}
			return fmt.Errorf("objstore: put %q: %w", key, ErrExists)
		}
		return fmt.Errorf("objstore: put %q: link: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("objstore: put %q: %w", key, err)
	}
	return nil
}

// ensureDir creates dir and any missing parents below the root and makes
// every directory entry on the way durable.
func (f *FS) ensureDir(dir string) error {
	if _, ok := f.durableDirs.Load(dir); ok {
		return nil
	}
	rel, err := filepath.Rel(f.root, dir)
	if err != nil {
		return err
	}
	p := f.root
	for seg := range strings.SplitSeq(rel, string(filepath.Separator)) {
		parent := p
		p = filepath.Join(p, seg)
		if _, ok := f.durableDirs.Load(p); ok {
			continue
		}
		err := os.Mkdir(p, 0o755)
		if errors.Is(err, fs.ErrExist) {
			// Existing is fine only for a directory, not an object's file.
			st, serr := os.Stat(p)
			switch {
			case serr != nil:
				err = serr
			case st.IsDir():
				err = nil
			default:
				err = syscall.ENOTDIR
			}
		}
		if err != nil {
			if errors.Is(err, syscall.ENOTDIR) {
				return fmt.Errorf("%w: a prefix of the key is an object", ErrInvalidKey)
			}
			return err
		}
		if err := syncDir(parent); err != nil {
			return err
		}
		f.durableDirs.Store(p, struct{}{})
	}
	return nil
}

// syncDir fsyncs a directory so that the entries created in it survive a
// crash of the machine.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// isMissing reports whether a path error means "no such object": the file is
// absent, or a prefix of its path is a file rather than a directory.
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Get implements Store.
func (f *FS) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("objstore: get: %w", err)
	}
	if err := checkRange(off); err != nil {
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	file, err := os.Open(f.path(key))
	if err != nil {
		if isMissing(err) {
			return nil, fmt.Errorf("objstore: get %q: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("objstore: get %q: %w", key, ErrNotFound)
	}
	n := max(st.Size()-off, 0)
	if length >= 0 {
		n = min(n, length)
	}
	buf := make([]byte, n)
	if n == 0 {
		return buf, nil
	}
	read, err := file.ReadAt(buf, off)
	// Objects are immutable, so a short read means the file changed under us
	// (truncated by hand); report it rather than return a silent short slice.
	if err != nil && !(errors.Is(err, io.EOF) && int64(read) == n) {
		return nil, fmt.Errorf("objstore: get %q: read %d bytes at %d: %w", key, n, off, err)
	}
	return buf, nil
}

// Delete implements Store.
func (f *FS) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("objstore: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: delete %q: %w", key, err)
	}
	p := f.path(key)
	st, err := os.Lstat(p)
	if err != nil {
		if isMissing(err) {
			return nil
		}
		return fmt.Errorf("objstore: delete %q: %w", key, err)
	}
	if st.IsDir() {
		// A directory is a prefix of other keys, not an object.
		return nil
	}
	// The directory is not fsynced: an object that reappears after a crash is
	// an orphan the sweep removes again, and skipping the fsync keeps bulk
	// deletes cheap.
	if err := os.Remove(p); err != nil && !isMissing(err) {
		return fmt.Errorf("objstore: delete %q: %w", key, err)
	}
	return nil
}

// List implements Store. Within a directory, entries are visited sorted by
// name, with a directory sorting as its name plus "/": every key below
// directory "d" starts with "d/", so this visits keys in the same byte order
// S3 lists them, without holding more than one directory listing per level.
func (f *FS) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if !prefixCanMatch(prefix) {
		return nil
	}
	dirKey := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dirKey = prefix[:i+1]
	}
	return f.walk(ctx, dirKey, prefix, fn)
}

type dirEntry struct {
	entry fs.DirEntry
	sort  string
}

func (f *FS) walk(ctx context.Context, dirKey, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	entries, err := os.ReadDir(f.path(dirKey))
	if err != nil {
		if dirKey != "" && isMissing(err) {
			return nil
		}
		return fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	sorted := make([]dirEntry, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) {
			continue
		}
		s := name
		if e.IsDir() {
			s += "/"
		}
		sorted = append(sorted, dirEntry{entry: e, sort: s})
	}
	slices.SortFunc(sorted, func(a, b dirEntry) int { return cmp.Compare(a.sort, b.sort) })

	for _, de := range sorted {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("objstore: list %q: %w", prefix, err)
		}
		key := dirKey + de.sort
		switch {
		case de.entry.IsDir():
			if strings.HasPrefix(key, prefix) || strings.HasPrefix(prefix, key) {
				if err := f.walk(ctx, key, prefix, fn); err != nil {
					return err
				}
			}
		case de.entry.Type().IsRegular():
			if !strings.HasPrefix(key, prefix) {
				continue
			}
			info, err := de.entry.Info()
			if err != nil {
				if isMissing(err) { // deleted while listing
					continue
				}
				return fmt.Errorf("objstore: list %q: %w", prefix, err)
			}
			// fn's error is returned as is so the caller can recognise it.
			if err := fn(ObjectInfo{Key: key, Size: info.Size(), LastModified: info.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoveStaleTemps deletes temporary files older than olderThan, which a
// writer that crashed mid-Put left behind. List already ignores them, but one
// left between link and cleanup is a second name for an object's data and
// would keep the disk space after the object is deleted. olderThan must be
// well above the duration of any Put (minutes, not seconds), because a live
// Put's temp file looks the same. The orphan sweep calls it (through
// StaleTempRemover) with the orphans' minimum age.
func (f *FS) RemoveStaleTemps(ctx context.Context, olderThan time.Duration) (removed int, err error) {
	cutoff := time.Now().Add(-olderThan)
	err = filepath.WalkDir(f.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if isMissing(err) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if isMissing(err) {
				return nil
			}
			return err
		}
		if info.ModTime().After(cutoff) {
			return nil
		}
		if err := os.Remove(path); err != nil && !isMissing(err) {
			return err
		}
		removed++
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("objstore: remove stale temp files in %s: %w", f.root, err)
	}
	return removed, nil
}

// Close implements Store; FS holds no resources between calls.
func (f *FS) Close() error { return nil }
