// Package objstore is Morax's object storage: where segment objects live.
//
// The interface is deliberately small so that the S3 implementation (any
// S3-compatible store: AWS S3, MinIO) and the filesystem implementation (the
// embedded default) can pass one acceptance suite (objstoretest).
package objstore

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrExists is returned by Put when the key already holds an object.
	ErrExists = errors.New("objstore: object already exists")
	// ErrNotFound is returned by Get for a missing key.
	ErrNotFound = errors.New("objstore: object not found")
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// Store holds immutable objects by key. Every method is safe for concurrent use.
type Store interface {
	// Put writes data under key, only if key holds nothing yet (ErrExists
	// otherwise). When Put returns nil the object is durable.
	Put(ctx context.Context, key string, data []byte) error
	// Get reads length bytes from offset off of the object at key; length < 0
	// reads to the end. Reading past the end returns what there is.
	// ErrNotFound for a missing key.
	Get(ctx context.Context, key string, off, length int64) ([]byte, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in key
	// order, stopping at the first error fn returns.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Close releases the store's resources.
	Close() error
}

// StaleTempRemover is implemented by stores that write through temporary
// files (FS, and wrappers of one), which a writer that crashed mid-Put
// leaves behind. It is optional, so the Store interface stays what every
// backend can do; the orphan sweep asks for it with a type assertion.
type StaleTempRemover interface {
	// RemoveStaleTemps deletes temporary files older than olderThan and
	// returns how many it deleted.
	RemoveStaleTemps(ctx context.Context, olderThan time.Duration) (removed int, err error)
}
