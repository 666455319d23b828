package clustertest

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/morax-dev/morax/persistence/meta"
)

// TopicID reads a topic's id from the metadata database.
func (c *Cluster) TopicID(name string) meta.TopicID {
	c.t.Helper()
	var id uuid.UUID
	if err := c.db.QueryRow(context.Background(), "SELECT id FROM topics WHERE name = $1", name).Scan(&id); err != nil {
		c.t.Fatalf("topic %s id: %v", name, err)
	}
	return meta.TopicID(id)
}

// PartitionEnds reads each partition's committed end offset from the
// metadata database.
func (c *Cluster) PartitionEnds(topic string) map[int32]int64 {
	c.t.Helper()
	rows, err := c.db.Query(context.Background(),
		`SELECT p.partition, p.next_offset FROM partitions p JOIN topics t ON t.id = p.topic_id WHERE t.name = $1`, topic)
	if err != nil {
		c.t.Fatalf("partition ends of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	for rows.Next() {
		var p int32
		var end int64
		if err := rows.Scan(&p, &end); err != nil {
			c.t.Fatal(err)
		}
		out[p] = end
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// segKey is the key of an object a node's flusher wrote: seg/<UTC time
// to the nanosecond>-<16 random hex digits>, unique to one upload.
var segKey = regexp.MustCompile(`^seg/\d{8}T\d{6}\.\d{9}Z-[0-9a-f]{16}$`)

// SegmentRow is one row of the segments table, with its topic's name.
type SegmentRow struct {
	TopicID   string
	Topic     string
	Partition int32
	Base, End int64 // the offsets [Base, End)
	Epoch     int64 // the lease epoch the segment was committed under
	Key       string
	Pos, Size int64 // the slice of the object at Key
	Created   time.Time
}

// pgQuerier is a connection or a transaction.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Segments reads every segment row, ordered by topic id, partition and
// base offset.
func (c *Cluster) Segments() []SegmentRow { return c.segmentsIn(c.db) }

func (c *Cluster) segmentsIn(q pgQuerier) []SegmentRow {
	c.t.Helper()
	rows, err := q.Query(context.Background(), `
		SELECT s.topic_id::text, t.name, s.partition, s.base_offset, s.end_offset, s.epoch, s.object_key, s.object_pos, s.size, s.created_at
		FROM segments s JOIN topics t ON t.id = s.topic_id
		ORDER BY s.topic_id, s.partition, s.base_offset`)
	if err != nil {
		c.t.Fatalf("read segments: %v", err)
	}
	var out []SegmentRow
	for rows.Next() {
		var s SegmentRow
		if err := rows.Scan(&s.TopicID, &s.Topic, &s.Partition, &s.Base, &s.End, &s.Epoch, &s.Key, &s.Pos, &s.Size, &s.Created); err != nil {
			c.t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// CheckSegments checks, straight from the metadata database, that no
// partition was ever committed to by two owners at once: each partition's
// segments, in base-offset order, are contiguous from its log start to its
// next offset (each base is the previous end), their lease epochs never
// decrease, object keys have the flusher's unique form, and the segments
// sharing an object are disjoint slices of it (so no two commits ever
// claimed the same bytes).
// Interleaved commits by a stale and a current owner would show as a gap,
// an overlap or an epoch going back.
func (c *Cluster) CheckSegments() {
	t := c.t
	t.Helper()
	type pkey struct {
		topic     string
		partition int32
	}
	type pstate struct{ next, logStart int64 }
	// One snapshot for all the reads: a commit landing between them (an
	// append whose client gave up is still running) must not look like a
	// partition whose segments and next offset disagree.
	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatalf("begin snapshot: %v", err)
	}
	defer tx.Rollback(ctx)
	states := map[pkey]pstate{}
	rows, err := tx.Query(ctx, `SELECT topic_id::text, partition, next_offset, log_start_offset FROM partitions`)
	if err != nil {
		t.Fatalf("read partitions: %v", err)
	}
	for rows.Next() {
		var k pkey
		var s pstate
		if err := rows.Scan(&k.topic, &k.partition, &s.next, &s.logStart); err != nil {
			t.Fatal(err)
		}
		states[k] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// The current epoch of every partition lease: no segment can carry a
	// later one, which no owner was ever granted.
	leaseEpoch := map[pkey]int64{}
	lrows, err := tx.Query(ctx, `SELECT resource, epoch FROM leases WHERE resource LIKE 'p/%'`)
	if err != nil {
		t.Fatalf("read leases: %v", err)
	}
	for lrows.Next() {
		var res string
		var epoch int64
		if err := lrows.Scan(&res, &epoch); err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(res, "/")
		if len(parts) != 3 {
			continue
		}
		p, err := strconv.ParseInt(parts[2], 10, 32)
		if err != nil {
			continue
		}
		leaseEpoch[pkey{parts[1], int32(p)}] = epoch
	}
	if err := lrows.Err(); err != nil {
		t.Fatal(err)
	}
	segs := c.segmentsIn(tx)
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	last := map[pkey]SegmentRow{}
	slices := map[string][]SegmentRow{}
	for _, s := range segs {
		k := pkey{s.TopicID, s.Partition}
		if !segKey.MatchString(strings.TrimPrefix(s.Key, c.prefix)) {
			report("segment %s/%d@%d: object key %q is not seg/<time>-<nonce>", s.Topic, s.Partition, s.Base, s.Key)
		}
		slices[s.Key] = append(slices[s.Key], s)
		if e, ok := leaseEpoch[k]; !ok || s.Epoch > e {
			report("segment %s/%d@%d has epoch %d, above the partition lease's epoch %d (lease found: %v)", s.Topic, s.Partition, s.Base, s.Epoch, e, ok)
		}
		prev, seen := last[k]
		switch {
		case !seen:
			if st, ok := states[k]; ok && s.Base > st.logStart {
				report("%s/%d: first segment starts at %d, above the log start %d: offsets lost", s.Topic, s.Partition, s.Base, st.logStart)
			}
		case s.Base != prev.End:
			report("%s/%d: segment [%d,%d) epoch %d follows [%d,%d) epoch %d: not contiguous", s.Topic, s.Partition, s.Base, s.End, s.Epoch, prev.Base, prev.End, prev.Epoch)
		case s.Epoch < prev.Epoch:
			report("%s/%d: segment [%d,%d) has epoch %d after [%d,%d) with epoch %d: a fenced owner committed", s.Topic, s.Partition, s.Base, s.End, s.Epoch, prev.Base, prev.End, prev.Epoch)
		}
		last[k] = s
	}
	for key, ss := range slices {
		sort.Slice(ss, func(i, j int) bool { return ss[i].Pos < ss[j].Pos })
		for i := 1; i < len(ss); i++ {
			if a, b := ss[i-1], ss[i]; a.Pos+a.Size > b.Pos {
				report("object %s: %s/%d@%d at [%d,+%d) overlaps %s/%d@%d at [%d,+%d)", key, a.Topic, a.Partition, a.Base, a.Pos, a.Size, b.Topic, b.Partition, b.Base, b.Pos, b.Size)
			}
		}
	}
	for k, s := range last {
		if st, ok := states[k]; ok && s.End != st.next {
			report("%s/%d: segments end at %d, but the partition's next offset is %d", s.Topic, s.Partition, s.End, st.next)
		}
	}
	for k, st := range states {
		if _, ok := last[k]; !ok && st.next != st.logStart {
			report("partition %s/%d: next offset %d with no segment", k.topic, k.partition, st.next)
		}
	}
	if bad > 20 {
		t.Errorf("... %d segment problems in all", bad)
	}
	if bad == 0 {
		epochs := map[string]map[int64]bool{}
		for _, s := range segs {
			if epochs[s.Topic] == nil {
				epochs[s.Topic] = map[int64]bool{}
			}
			epochs[s.Topic][s.Epoch] = true
		}
		var desc []string
		for topic, es := range epochs {
			desc = append(desc, fmt.Sprintf("%s: %d distinct epochs", topic, len(es)))
		}
		sort.Strings(desc)
		t.Logf("segment invariant holds: %d segments over %d partitions, contiguous, epochs never decreasing (%s)", len(segs), len(last), strings.Join(desc, "; "))
	}
}

// firstOffsetAfterEpoch returns, per partition of topic, the first offset
// committed under an epoch above the given one: where a new owner's writes
// begin. Partitions without such a segment are absent.
func (c *Cluster) firstOffsetAfterEpoch(topic string, above map[int32]int64) map[int32]int64 {
	out := map[int32]int64{}
	for _, s := range c.Segments() {
		if s.Topic != topic {
			continue
		}
		e, ok := above[s.Partition]
		if !ok || s.Epoch <= e {
			continue
		}
		if cur, ok := out[s.Partition]; !ok || s.Base < cur {
			out[s.Partition] = s.Base
		}
	}
	return out
}

// DBNow is the database clock, the one segment created_at uses.
func (c *Cluster) DBNow() time.Time {
	c.t.Helper()
	var now time.Time
	if err := c.db.QueryRow(context.Background(), "SELECT now()").Scan(&now); err != nil {
		c.t.Fatal(err)
	}
	return now
}

// FailoverTimes measures, from a failure at `at`, how long until the first
// record on one of the failed node's partitions was acknowledged by a new
// owner (first; negative if none was), and until every one of them had one
// (all, over the partitions that did). A record counts only at an offset
// committed under a newer epoch than the failed node's, so acknowledgements
// the failed node sent just before it died do not. missing lists the lost
// partitions with no such record.
func (c *Cluster) FailoverTimes(topic string, lost map[int32]int64, acked []AckedRecord, at time.Time) (first, all time.Duration, missing []int32) {
	starts := c.firstOffsetAfterEpoch(topic, lost)
	firstAck := map[int32]time.Time{}
	for _, a := range acked {
		base, ok := starts[a.Partition]
		if !ok || a.Offset < base {
			continue
		}
		if cur, seen := firstAck[a.Partition]; !seen || a.At.Before(cur) {
			firstAck[a.Partition] = a.At
		}
	}
	first = -1
	for _, p := range slices.Sorted(maps.Keys(lost)) {
		ts, ok := firstAck[p]
		if !ok {
			missing = append(missing, p)
			continue
		}
		if d := ts.Sub(at); first < 0 || d < first {
			first = d
		}
		all = max(all, ts.Sub(at))
	}
	return first, all, missing
}
