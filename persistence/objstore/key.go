package objstore

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidKey is returned for a key that could not be stored the same way
// by every implementation: empty, absolute, with empty, "." or ".." segments,
// with a NUL byte, or with a segment that looks like one of the filesystem
// store's temporary files. Both stores apply the same rule so that code
// tested against the filesystem store cannot come to depend on keys only S3
// accepts.
var ErrInvalidKey = errors.New("objstore: invalid key")

// tempPrefix starts the name of every temporary file the filesystem store
// writes. Keys may not have a segment with this prefix, so List can skip temp
// files (including a crashed writer's leftovers) without hiding real objects.
const tempPrefix = ".morax-tmp-"

// ValidateKey reports whether key is acceptable to every Store
// implementation; the error wraps ErrInvalidKey.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if strings.IndexByte(key, 0) >= 0 {
		return fmt.Errorf("%w: %q contains NUL", ErrInvalidKey, key)
	}
	if key[0] == '/' {
		return fmt.Errorf("%w: %q is absolute", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			// "a//b" and "a/" would alias "a/b" and a directory on a filesystem.
			return fmt.Errorf("%w: %q has an empty segment", ErrInvalidKey, key)
		case seg == "." || seg == "..":
			return fmt.Errorf("%w: %q has a %q segment", ErrInvalidKey, key, seg)
		case strings.HasPrefix(seg, tempPrefix):
			return fmt.Errorf("%w: %q has a segment starting with the reserved %q", ErrInvalidKey, key, tempPrefix)
		}
	}
	return nil
}

// prefixCanMatch reports whether any valid key can start with prefix. A
// prefix whose complete segments are invalid ("../", "a//") matches nothing,
// so List answers it without asking the backend: the filesystem must not turn
// it into a path outside its root, and some S3 servers reject it outright.
func prefixCanMatch(prefix string) bool {
	if strings.IndexByte(prefix, 0) >= 0 {
		return false
	}
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return true
	}
	return ValidateKey(prefix[:i+1]+"x") == nil
}

// checkRange rejects a negative offset, which no store can serve and which
// would otherwise turn into a malformed Range header or a panic.
func checkRange(off int64) error {
	if off < 0 {
		return fmt.Errorf("objstore: negative offset %d", off)
	}
	return nil
}
