package loadgen

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStatOf(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want Stat
	}{
		{nil, Stat{}},
		{[]float64{5}, Stat{Median: 5, Min: 5, Max: 5, N: 1}},
		{[]float64{9, 1, 5}, Stat{Median: 5, Min: 1, Max: 9, N: 3}},
		{[]float64{4, 1, 2, 3}, Stat{Median: 2.5, Min: 1, Max: 4, N: 4}},
	} {
		if got := StatOf(tc.in); got != tc.want {
			t.Errorf("StatOf(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if s := StatOf([]float64{1, 2, 3}).format(1); s != "2.0 (1.0–3.0)" {
		t.Errorf("format %q", s)
	}
}

func loadResult(label string, mibps, p99 float64, cost *Cost) []byte {
	r := Result{Kind: KindLoad, Label: label, Config: DefaultConfig(),
		Produce:        Throughput{MiBPerSec: mibps, RecordsPerSec: mibps * 1024, Seconds: 10},
		Consume:        Throughput{MiBPerSec: mibps},
		ProduceLatency: Latency{P50Ms: p99 / 2, P99Ms: p99}, Cost: cost, Errors: []ErrorCount{}}
	b, _ := json.Marshal(r)
	return b
}

func TestReportMarkdown(t *testing.T) {
	var rep Report
	add := func(b []byte) {
		t.Helper()
		if err := rep.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []float64{100, 80, 120} {
		add(loadResult("kfake", v, 5, nil))
		add(loadResult("pg+minio", v*2, 50, &Cost{PutsPerGiB: 256, TransactionsPerFlush: 1, Flushes: 1000}))
	}
	for _, v := range []float64{400, 300} {
		b, _ := json.Marshal(RawResult{Kind: KindRawS3, Target: "minio", MiBPerSec: v, Options: RawOptions{ObjectSize: 4 << 20, Concurrency: 8}})
		add(b)
	}
	b, _ := json.Marshal(RawResult{Kind: KindRawPG, OpsPerSec: 500, Options: RawOptions{Concurrency: 1}})
	add(b)
	if err := rep.Add([]byte(`{"kind":"nope"}`)); err == nil {
		t.Error("unknown kind accepted")
	}
	var out strings.Builder
	if err := rep.Markdown(&out, "kfake", []string{"pg+minio"}); err != nil {
		t.Fatal(err)
	}
	md := out.String()
	t.Log("\n" + md)
	for _, want := range []string{
		"| kfake | 3 | 102400 (81920–122880) | 100.0 (80.0–120.0) | 1.00× |",
		"| pg+minio | 3 | 204800 (163840–245760) | 200.0 (160.0–240.0) | 2.00× |",
		"| 256 | 1.00 | 0 |",
		"| minio: 4096 KiB PUTs, 8 concurrent | 2 | 350.0 (300.0–400.0) MiB/s",
		"| PostgreSQL: single-row commits, 1 connection(s) | 1 | 500 commits/s",
		"pg+minio against the backend limits: produce 200.0 MiB/s is 0.57× of raw PUT bandwidth; 100 flush transactions/s is 0.20× of the single-row commit rate.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}
