package actors_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/internal/teststores"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/persistence/segment"
)

// backend is a pair of real stores a broker runs on.
type backend struct {
	name    string
	meta    meta.Store
	objects objstore.Store
}

// allBackends are the two deployments every actor test runs against:
// embedded (SQLite + files) and PostgreSQL + MinIO.
var allBackends = []struct {
	name string
	open func(t testing.TB) backend
}{
	{"embedded", embedded},
	{"pg+minio", pgMinio},
}

func embedded(t testing.TB) backend {
	store, objects := teststores.OpenEmbedded(t)
	return backend{name: "embedded", meta: store, objects: objects}
}

func pgMinio(t testing.TB) backend {
	store, objects := teststores.OpenPostgresMinIO(t)
	return backend{name: "pg+minio", meta: store, objects: objects}
}

// forEachBackend runs fn as a subtest on every backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, be backend)) {
	for _, b := range allBackends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open(t)) })
	}
}

func testOptions(node string) actors.Options {
	o := actors.DefaultOptions()
	o.NodeID = node
	o.Linger = 2 * time.Millisecond
	o.FlushBytes = 256 << 10
	o.LeaseTTL = 3 * time.Second
	o.IOTimeout = 10 * time.Second
	o.Metrics = prometheus.NewRegistry()
	return o
}

func startBroker(t testing.TB, be backend, opts actors.Options) *actors.Broker {
	t.Helper()
	b, err := actors.New(opts, be.meta, be.objects)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

func closeBroker(t testing.TB, b *actors.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("close broker: %v", err)
	}
}

func createTopic(t testing.TB, b *actors.Broker, name string, partitions int32, config map[string]string) meta.Topic {
	t.Helper()
	tp, err := b.CreateTopic(context.Background(), meta.Topic{Name: name, Partitions: partitions, Config: config})
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	return tp
}

// batchOf builds a batch whose record values are vals.
// t may be nil (in the crash child), and then a failure panics.
func batchOf(t testing.TB, vals ...string) []byte {
	if t != nil {
		t.Helper()
	}
	recs := make([]segment.Record, len(vals))
	now := time.Now().UnixMilli()
	for i, v := range vals {
		recs[i] = segment.Record{Timestamp: now, Value: []byte(v)}
	}
	b, err := segment.BuildBatch(recs, segment.CodecNone)
	if err != nil {
		if t == nil {
			panic(err)
		}
		t.Fatalf("build batch: %v", err)
	}
	return b
}

// idempotent stamps a batch with producer id, epoch and base sequence the
// way an idempotent Kafka producer does, and fixes its CRC.
func idempotent(b []byte, pid int64, epoch int16, seq int32) []byte {
	// RecordBatch v2 layout: producer id at 43, epoch at 51, base sequence at
	// 53; the CRC at 17 covers bytes from 21 (attributes) on.
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func appendOK(t testing.TB, b *actors.Broker, tp meta.Topic, p int32, batch []byte) actors.AppendResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := b.Append(ctx, tp, p, batch, -1)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return r
}

// readAll reads every record of a partition in [from, hw).
func readAll(t testing.TB, b *actors.Broker, tp meta.Topic, p int32, from int64) []segment.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []segment.Record
	off := from
	for {
		r, err := b.Fetch(ctx, tp, p, actors.Fetch{Offset: off, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatalf("fetch at %d: %v", off, err)
		}
		if len(r.Batches) == 0 {
			if off != r.HighWatermark {
				t.Fatalf("fetch at %d returned nothing below high watermark %d", off, r.HighWatermark)
			}
			return out
		}
		for batch, err := range segment.Batches(r.Batches) {
			if err != nil {
				t.Fatalf("fetch at %d: bad batch: %v", off, err)
			}
			if _, err := segment.Validate(batch); err != nil {
				t.Fatalf("fetch at %d: invalid batch: %v", off, err)
			}
			recs, err := segment.Records(batch)
			if err != nil {
				t.Fatalf("fetch at %d: records: %v", off, err)
			}
			for _, rec := range recs {
				if rec.Offset < off {
					continue
				}
				if rec.Offset != off {
					t.Fatalf("offset gap: want %d, got %d", off, rec.Offset)
				}
				out = append(out, rec)
				off++
			}
		}
	}
}
