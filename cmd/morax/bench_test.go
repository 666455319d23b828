package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/morax-dev/morax/internal/loadgen"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

func TestParseBenchFlagsDefaults(t *testing.T) {
	o, err := parseBenchFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := loadgen.DefaultConfig()
	if o.cfg.Target != want.Target || o.cfg.RecordSize != 1024 || o.cfg.Partitions != 3 || o.cfg.Acks != loadgen.AcksAll ||
		o.cfg.Duration != 10*time.Second || !o.cfg.CreateTopic || o.metricsURL != metricsAuto || o.json {
		t.Errorf("defaults: %+v", o)
	}
	if u, err := o.resolveMetricsURL(); err != nil || u != "http://127.0.0.1:8848/metrics" {
		t.Errorf("auto metrics URL %q, %v", u, err)
	}
}

func TestParseBenchFlagsAll(t *testing.T) {
	o, err := parseBenchFlags(strings.Fields(
		"--target wal --endpoint http://h:1 --brokers a:1,b:2 --topic t --record-size 4KiB --partitions 8 --producers 4 "+
			"--consumers 2 --acks -1 --linger 2ms --batch-size 1MiB --records 5000 --rate 100.5 --keys --compression none "+
			"--create-topic=false --drain-timeout 3s --max-buffered 7 --json --metrics-url none --label x --interval 250ms"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.Target != loadgen.TargetWAL || c.Endpoint != "http://h:1" || strings.Join(c.Brokers, ",") != "a:1,b:2" || c.Topic != "t" ||
		c.RecordSize != 4096 || c.Partitions != 8 || c.Producers != 4 || c.Consumers != 2 || c.Acks != loadgen.AcksAll ||
		c.Linger != 2*time.Millisecond || c.BatchBytes != 1<<20 || c.Records != 5000 || c.Rate != 100.5 || !c.Keys ||
		c.CreateTopic || c.DrainTimeout != 3*time.Second || c.MaxBufferedRecords != 7 {
		t.Errorf("config %+v", c)
	}
	if !o.json || o.label != "x" || o.interval != 250*time.Millisecond {
		t.Errorf("options %+v", o)
	}
	if u, err := o.resolveMetricsURL(); err != nil || u != "" {
		t.Errorf("--metrics-url none gave %q, %v", u, err)
	}
}

func TestParseBenchFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		args string
		want []string // every problem is reported at once
	}{
		{"--acks 2 --compression brotli", []string{`acks "2"`, `compression "brotli"`}},
		{"--record-size 8 --partitions 0", []string{"record size 8", "partitions 0"}},
		{"--record-size 12XB", []string{"size \"12XB\""}},
		{"--kfake", []string{"-kfake"}}, // moved to dev/kfake, out of the binary
		{"--target wal --acks 1", []string{"only acks=all"}},
		{"--duration 0", []string{"duration or record count"}},
		{"extra", []string{`unexpected argument "extra"`}},
	} {
		_, err := parseBenchFlags(strings.Fields(tc.args), io.Discard)
		if err == nil {
			t.Errorf("%s: accepted", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.args, err, w)
			}
		}
	}
	if code := runBench(t.Context(), []string{"--acks", "2"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad flag exit %d, want 2", code)
	}
	if code := runBench(t.Context(), []string{"-h"}, io.Discard, io.Discard); code != 0 {
		t.Errorf("-h exit %d, want 0", code)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"1024": 1024, "1KiB": 1024, "4MiB": 4 << 20, "1 GiB": 1 << 30, "2kB": 2000, "3MB": 3000000, "16B": 16} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "4TiB", "3GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

// TestBenchKafkaJSON runs the whole command against a Kafka broker with no
// Morax metrics (kfake, as dev/kfake serves it to the bench scripts) and
// reads its JSON back, then feeds it to the report mode.
func TestBenchKafkaJSON(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var out, errOut lockedBuffer
	args := append([]string{"--target", "kafka", "--brokers", strings.Join(cluster.ListenAddrs(), ","), "--metrics-url", "none", "--label", "kfake"},
		strings.Fields("--records 2000 --record-size 512 --producers 2 --json --interval 50ms")...)
	code := runBench(t.Context(), args, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	var res loadgen.Result
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("decode %q: %v", out.String(), err)
	}
	if res.Kind != loadgen.KindLoad || res.Label != "kfake" || res.Produce.Records != 2000 || res.Consume.Records != 2000 || res.ErrorTotal() != 0 {
		t.Errorf("result %+v", res)
	}
	if res.Cost != nil {
		t.Errorf("kfake run has broker cost %+v", res.Cost)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "kfake.json")
	if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var table lockedBuffer
	if code := runBench(t.Context(), []string{"report", file, file}, &table, &errOut); code != 0 {
		t.Fatalf("report exit %d, stderr %s", code, errOut.String())
	}
	if !strings.Contains(table.String(), "| kfake | 2 |") || !strings.Contains(table.String(), "1.00×") {
		t.Errorf("report:\n%s", table.String())
	}
}

// TestBenchWALText runs the command against a Morax node's WAL API, with
// the cost counters scraped from its metrics, and checks the text summary.
func TestBenchWALText(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	var out, errOut lockedBuffer
	code := runBench(t.Context(), []string{"--target", "wal", "--endpoint", n.URL, "--records", "600", "--record-size", "100",
		"--batch-size", "1000", "--producers", "2", "--partitions", "2", "--consumers", "2"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	for _, want := range []string{"produce  600", "consume  600", "errors: none", "metadata transactions", "(1.00 per flush)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchRawUsage(t *testing.T) {
	t.Setenv("MORAX_SERVER_META_SERVICE_URL", "")
	var errOut lockedBuffer
	if code := runBench(t.Context(), []string{"raw-s3"}, io.Discard, &errOut); code != 2 || !strings.Contains(errOut.String(), "no bucket") {
		t.Errorf("raw-s3 without a bucket: exit %d, %s", code, errOut.String())
	}
	if code := runBench(t.Context(), []string{"raw-pg"}, io.Discard, &errOut); code != 2 || !strings.Contains(errOut.String(), "no PostgreSQL") {
		t.Errorf("raw-pg without a URL: exit %d, %s", code, errOut.String())
	}
	if code := runBench(t.Context(), []string{"report"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("report without files: exit %d", code)
	}
}
