package actors

import "sync/atomic"

// budget bounds the bytes of unacknowledged appends on a node, mailboxes
// included: a caller reserves before sending and the partition actor
// releases when it answers. It is shared by every partition, so it is a
// lock-free counter rather than state owned by one actor.
type budget struct {
	limit int64
	used  atomic.Int64
}

// tryAcquire reserves n bytes, or reports false if that would pass the limit.
// A single request larger than the whole limit is let through when nothing
// else is reserved, so an oversized limit check is the topic's job, not a
// permanent refusal here.
func (b *budget) tryAcquire(n int64) bool {
	for {
		cur := b.used.Load()
		if cur+n > b.limit && cur > 0 {
			return false
		}
		if b.used.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

func (b *budget) release(n int64) {
	if n != 0 {
		b.used.Add(-n)
	}
}
