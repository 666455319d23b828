package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// metricsText renders a Morax node's metrics as the WAL listener serves
// them, with the given counter values.
func metricsText(puts, gets, putBytes, flushes, txns, appendBytes float64) string {
	return fmt.Sprintf(`# HELP morax_objstore_requests_total Object store calls.
# TYPE morax_objstore_requests_total counter
morax_objstore_requests_total{op="put"} %g
morax_objstore_requests_total{op="get"} %g
morax_objstore_requests_total{op="list"} 2
# HELP morax_objstore_put_bytes_total Bytes written.
# TYPE morax_objstore_put_bytes_total counter
morax_objstore_put_bytes_total %g
# TYPE morax_flushes_total counter
morax_flushes_total %g
# TYPE morax_meta_flush_transactions_total counter
morax_meta_flush_transactions_total %g
# TYPE morax_append_bytes_total counter
morax_append_bytes_total %g
# TYPE morax_flush_bytes histogram
morax_flush_bytes_bucket{le="1024"} 1
morax_flush_bytes_bucket{le="+Inf"} %g
morax_flush_bytes_sum %g
morax_flush_bytes_count %g
# TYPE go_goroutines gauge
go_goroutines 42
`, puts, gets, putBytes, flushes, txns, appendBytes, flushes, putBytes, flushes)
}

func parse(t *testing.T, text string) Sample {
	t.Helper()
	s, err := ParseSample(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseSample(t *testing.T) {
	s := parse(t, metricsText(10, 3, 4096, 9, 9, 1<<20))
	for key, want := range map[string]float64{
		`morax_objstore_requests_total{op="put"}`: 10,
		`morax_flush_bytes_count`:                 9,
		`morax_flush_bytes_sum`:                   4096,
		`go_goroutines`:                           42,
	} {
		if s[key] != want {
			t.Errorf("%s = %g, want %g", key, s[key], want)
		}
	}
	if got := s.Sum("morax_objstore_requests_total", nil); got != 15 {
		t.Errorf("sum of requests %g, want 15", got)
	}
	if got := s.Sum("morax_objstore_requests_total", map[string]string{"op": "get"}); got != 3 {
		t.Errorf("gets %g, want 3", got)
	}
	if s.Has("morax_nope") || !s.Has("morax_flushes_total") {
		t.Error("Has is wrong")
	}
	if _, err := ParseSample(strings.NewReader("not { metrics")); err == nil {
		t.Error("garbage parsed without an error")
	}
}

func TestDiff(t *testing.T) {
	before := parse(t, metricsText(10, 3, 4096, 9, 9, 1<<20))
	// 128 PUTs of 1 MiB for 1 GiB acknowledged, 128 flushes, 128 txns.
	after := parse(t, metricsText(138, 5, 4096+128<<20, 137, 137, 1<<20+1<<30))
	c := Diff(before, after)
	want := Cost{
		ObjectPuts: 128, ObjectGets: 2, PutBytes: 128 << 20, BytesPerPut: 1 << 20,
		Flushes: 128, MetaTransactions: 128, IngestBytes: 1 << 30,
		PutsPerGiB: 128, TransactionsPerFlush: 1,
	}
	if c != want {
		t.Errorf("Diff =\n%+v\nwant\n%+v", c, want)
	}

	// Two transactions per flush and half a GiB: the ratios follow.
	after = parse(t, metricsText(74, 3, 4096, 41, 73, 1<<20+1<<29))
	c = Diff(before, after)
	if c.TransactionsPerFlush != 2 || c.PutsPerGiB != 128 {
		t.Errorf("txns/flush %g PUTs/GiB %g, want 2 and 128", c.TransactionsPerFlush, c.PutsPerGiB)
	}

	// Nothing happened: no division by zero.
	c = Diff(before, before)
	if c != (Cost{}) {
		t.Errorf("Diff of equal samples = %+v, want zero", c)
	}
	for _, f := range []float64{c.BytesPerPut, c.PutsPerGiB, c.TransactionsPerFlush} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			t.Errorf("ratio %g on no activity", f)
		}
	}

	// A restart between scrapes: counters went down.
	c = Diff(after, before)
	if !c.Reset {
		t.Error("counters going down not reported as a reset")
	}
}

func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			fmt.Fprint(w, metricsText(1, 2, 3, 4, 4, 5))
		case "/other":
			fmt.Fprint(w, "# TYPE x counter\nx 1\n")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	s, err := Scrape(ctx, nil, srv.URL+"/metrics", 5*time.Second)
	if err != nil || s.Sum("morax_flushes_total", nil) != 4 {
		t.Fatalf("Scrape = %v, %v", s, err)
	}
	if _, err := Scrape(ctx, nil, srv.URL+"/other", 5*time.Second); !errors.Is(err, ErrNotMorax) {
		t.Errorf("non-Morax metrics: %v, want ErrNotMorax", err)
	}
	if _, err := Scrape(ctx, nil, srv.URL+"/missing", 5*time.Second); !errors.Is(err, ErrScrape) {
		t.Errorf("404: %v, want ErrScrape", err)
	}
}

func TestMetricsURLFor(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8848":        "http://127.0.0.1:8848/metrics",
		"http://127.0.0.1:8848/":       "http://127.0.0.1:8848/metrics",
		"https://node:1/base/?x=1#top": "https://node:1/base/metrics",
	} {
		got, err := MetricsURLFor(in)
		if err != nil || got != want {
			t.Errorf("MetricsURLFor(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := MetricsURLFor("127.0.0.1:8848"); err == nil {
		t.Error("endpoint without scheme accepted")
	}
}
