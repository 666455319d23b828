package actors

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore"
)

// blockCache is the node's shared, byte-bounded LRU of object blocks, for
// reads that miss the partitions' tail caches. Concurrent misses of one
// block share a single ranged GET. Guarded by mu; shared by every cold read.
type blockCache struct {
	objects   objstore.Store
	limit     int64
	blockSize int64
	metrics   *metrics
	flight    singleflight.Group

	mu    sync.Mutex // guards the fields below
	lru   *list.List // of *block, most recent first
	byKey map[blockKey]*list.Element
	bytes int64
}

type blockKey struct {
	object string
	n      int64
}

type block struct {
	key  blockKey
	data []byte
}

func newBlockCache(objects objstore.Store, limit, blockSize int64, m *metrics) *blockCache {
	return &blockCache{objects: objects, limit: limit, blockSize: blockSize, metrics: m, lru: list.New(), byKey: map[blockKey]*list.Element{}}
}

// readSegment returns bytes [off, off+n) of segment s (clamped to its
// size). Offsets are the segment's own; its object may hold other
// segments before and after it.
func (c *blockCache) readSegment(ctx context.Context, s meta.Segment, off, n int64) ([]byte, error) {
	if off >= s.Size {
		return nil, nil
	}
	return c.read(ctx, s.ObjectKey, s.Position+s.Size, s.Position+off, min(n, s.Size-off))
}

// read returns bytes [off, off+n) of the object, reading no block past
// limit: the end of what the caller knows to exist, which for a segment
// sharing an object is its own end, not the object's.
func (c *blockCache) read(ctx context.Context, key string, limit, off, n int64) ([]byte, error) {
	end := min(limit, off+n)
	if off >= end {
		return nil, nil
	}
	out := make([]byte, 0, end-off)
	for bn := off / c.blockSize; bn*c.blockSize < end; bn++ {
		data, err := c.block(ctx, key, limit, bn)
		if err != nil {
			return nil, err
		}
		bStart := bn * c.blockSize
		lo := max(off, bStart) - bStart
		hi := min(end, bStart+int64(len(data))) - bStart
		if lo >= hi {
			break
		}
		out = append(out, data[lo:hi]...)
	}
	return out, nil
}

// block returns block n of object, at least up to limit. A block cached
// by a reader whose limit was lower (a segment ending inside the block)
// may be short for this one; it is read again, longer.
func (c *blockCache) block(ctx context.Context, object string, limit, n int64) ([]byte, error) {
	k := blockKey{object, n}
	start := n * c.blockSize
	length := min(c.blockSize, limit-start)
	c.mu.Lock()
	if e, ok := c.byKey[k]; ok && int64(len(e.Value.(*block).data)) >= length {
		c.lru.MoveToFront(e)
		data := e.Value.(*block).data
		c.mu.Unlock()
		c.metrics.blockHits.Inc()
		return data, nil
	}
	c.mu.Unlock()
	c.metrics.blockMisses.Inc()
	v, err, _ := c.flight.Do(fmt.Sprintf("%s#%d+%d", object, n, length), func() (any, error) {
		data, err := c.objects.Get(ctx, object, start, length)
		if err != nil {
			return nil, fmt.Errorf("get %s [%d,+%d): %w", object, start, length, err)
		}
		c.insert(k, data)
		return data, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

func (c *blockCache) insert(k blockKey, data []byte) {
	size := int64(len(data))
	if size > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		old := e.Value.(*block)
		if int64(len(old.data)) >= size {
			return
		}
		c.bytes += size - int64(len(old.data))
		old.data = data
		c.lru.MoveToFront(e)
	} else {
		c.byKey[k] = c.lru.PushFront(&block{key: k, data: data})
		c.bytes += size
	}
	for c.bytes > c.limit {
		e := c.lru.Back()
		b := e.Value.(*block)
		c.lru.Remove(e)
		delete(c.byKey, b.key)
		c.bytes -= int64(len(b.data))
	}
}
