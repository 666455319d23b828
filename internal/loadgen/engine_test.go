package loadgen

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/wire/kafka/kafkatest"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

// shortRun is a small workload that still moves enough records for every
// figure of the summary to be filled in.
func shortRun(cfg Config) Config {
	cfg.Duration = 1500 * time.Millisecond
	cfg.RecordSize = 256
	cfg.Partitions = 3
	cfg.Producers = 2
	cfg.Consumers = 2
	cfg.DrainTimeout = 30 * time.Second
	return cfg
}

// checkSane checks a summary of a run that should have gone well: records
// flowed both ways, every acknowledged record was consumed, no errors, and
// the latencies are ordered.
func checkSane(t *testing.T, res *Result) {
	t.Helper()
	var text strings.Builder
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("summary:\n%s", text.String())
	if res.Produce.Records == 0 || res.Produce.RecordsPerSec <= 0 || res.Produce.MiBPerSec <= 0 {
		t.Errorf("produce throughput %+v, want > 0", res.Produce)
	}
	if res.Consume.Records != res.Produce.Records {
		t.Errorf("consumed %d records, produced %d", res.Consume.Records, res.Produce.Records)
	}
	if res.Consume.RecordsPerSec <= 0 {
		t.Errorf("consume throughput %+v, want > 0", res.Consume)
	}
	if n := res.ErrorTotal(); n != 0 {
		t.Errorf("%d errors: %+v", n, res.Errors)
	}
	for name, l := range map[string]Latency{"produce": res.ProduceLatency, "end to end": res.EndToEndLatency} {
		if l.Count == 0 || l.P50Ms <= 0 || l.P50Ms > l.P99Ms || l.P99Ms > l.P999Ms || l.P999Ms > l.MaxMs {
			t.Errorf("%s latency %+v: want 0 < p50 <= p99 <= p99.9 <= max", name, l)
		}
	}
	if int64(res.ProduceLatency.Count) != res.Produce.Records {
		t.Errorf("produce latency counted %d records, produced %d", res.ProduceLatency.Count, res.Produce.Records)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestRunKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := shortRun(DefaultConfig())
	cfg.Brokers = c.ListenAddrs()
	cfg.Keys = true
	res, err := Run(testCtx(t), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, res)
	if res.Cost != nil {
		t.Errorf("cost %+v without a metrics URL", res.Cost)
	}
}

func TestRunKfakeRecordCount(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := shortRun(DefaultConfig())
	cfg.Brokers = c.ListenAddrs()
	cfg.Records, cfg.Producers = 1001, 3
	cfg.Acks, cfg.Compression = AcksLeader, "lz4"
	var progress []Progress
	res, err := Run(testCtx(t), cfg, Options{
		Progress:         func(p Progress) { progress = append(progress, p) },
		ProgressInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, res)
	if res.Produce.Records != 1001 {
		t.Errorf("produced %d records, want exactly 1001", res.Produce.Records)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Produced < progress[i-1].Produced {
			t.Errorf("progress went back: %+v then %+v", progress[i-1], progress[i])
		}
	}
}

// TestRunMoraxKafka runs the engine against a Morax node on each
// deployment (pg+minio needs the dev servers; see internal/itest).
func TestRunMoraxKafka(t *testing.T) {
	for _, b := range kafkatest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			// The test node's object store is not metered (morax start
			// wraps it); wrap it here, on a registry served next to the
			// node's own.
			objReg := prometheus.NewRegistry()
			backend := kafkatest.Backend{Name: b.Name, Open: func(t testing.TB) (meta.Store, objstore.Store) {
				m, o := b.Open(t)
				metered, err := objstore.NewMetered(o, objReg)
				if err != nil {
					t.Fatal(err)
				}
				return m, metered
			}}
			n := kafkatest.Start(t, kafkatest.Options{Backend: backend})
			metrics := httptest.NewServer(promhttp.HandlerFor(prometheus.Gatherers{n.Registry, objReg}, promhttp.HandlerOpts{}))
			t.Cleanup(metrics.Close)
			cfg := shortRun(DefaultConfig())
			cfg.Brokers = []string{n.Addr}
			res, err := Run(testCtx(t), cfg, Options{MetricsURL: metrics.URL + "/metrics"})
			if err != nil {
				t.Fatal(err)
			}
			checkSane(t, res)
			checkCost(t, res, true)
		})
	}
}

func TestRunMoraxWAL(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	cfg := shortRun(DefaultConfig())
	cfg.Target, cfg.Endpoint = TargetWAL, n.URL
	cfg.BatchBytes = 16 * cfg.RecordSize
	cfg.Consumers = 1 // one reader polling three logs
	url, err := MetricsURLFor(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(testCtx(t), cfg, Options{MetricsURL: url})
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, res)
	checkCost(t, res, false)
}

// checkCost checks the broker-side counters of a run on a Morax node.
// withObjects says whether the node's object store is metered (waltest's
// is not, so only the broker's own counters can be checked there).
func checkCost(t *testing.T, res *Result, withObjects bool) {
	t.Helper()
	c := res.Cost
	if c == nil {
		t.Fatalf("no cost counters; notes %q", res.Notes)
	}
	if c.Flushes < 1 {
		t.Errorf("cost %+v: want flushes", c)
	}
	if withObjects && (c.ObjectPuts < c.Flushes || c.PutBytes <= 0 || c.BytesPerPut <= 0 || c.PutsPerGiB <= 0) {
		t.Errorf("cost %+v: want a PUT per flush at least, and bytes", c)
	}
	if c.TransactionsPerFlush != 1 {
		t.Errorf("%.3f metadata transactions per flush, want 1", c.TransactionsPerFlush)
	}
	if c.IngestBytes < float64(res.Produce.Bytes) {
		t.Errorf("broker acknowledged %.0f bytes, producers %d", c.IngestBytes, res.Produce.Bytes)
	}
}
