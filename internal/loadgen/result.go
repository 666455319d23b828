package loadgen

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result kinds, so saved JSON files of different runs can be told apart.
const (
	KindLoad  = "load"
	KindRawS3 = "raw-s3"
	KindRawPG = "raw-pg"
)

// Result is the summary of a load run, printed as text or JSON.
type Result struct {
	// Kind is KindLoad.
	Kind string `json:"kind"`
	// Label names the run (Options.Label).
	Label  string `json:"label,omitempty"`
	Config Config `json:"config"`
	// Started is when the run began, UTC.
	Started time.Time `json:"started"`
	// Produce counts acknowledged records, over the time from the start
	// of producing to the last acknowledgement.
	Produce Throughput `json:"produce"`
	// Consume counts records of this run consumed, over the time from the
	// start of producing to the last record consumed.
	Consume Throughput `json:"consume"`
	// ProduceLatency is from handing a record to the client to its
	// acknowledgement (so it includes time in the client's buffer and
	// linger, as an application sees it).
	ProduceLatency Latency `json:"produce_latency"`
	// EndToEndLatency is from handing a record to the producer to a
	// consumer receiving it, from the timestamp embedded in its value.
	EndToEndLatency Latency `json:"end_to_end_latency"`
	// Errors are produce failures (in records) and consume failures (in
	// occurrences), by kind.
	Errors []ErrorCount `json:"errors"`
	// Cost is the broker's object store and metadata work, when its
	// metrics were scraped.
	Cost *Cost `json:"cost,omitempty"`
	// MetricsURL is where Cost was scraped from.
	MetricsURL string `json:"metrics_url,omitempty"`
	// Notes are remarks on the run (options that did not apply, records
	// not consumed in time, ...).
	Notes []string `json:"notes,omitempty"`
}

// Throughput is records and bytes (value plus key) moved over a time.
type Throughput struct {
	// Records and Bytes moved in Seconds.
	Records int64   `json:"records"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	// RecordsPerSec and MiBPerSec (MiB = 2^20 bytes) are the rates.
	RecordsPerSec float64 `json:"records_per_sec"`
	MiBPerSec     float64 `json:"mib_per_sec"`
}

func throughput(records, bytes int64, d time.Duration) Throughput {
	t := Throughput{Records: records, Bytes: bytes, Seconds: d.Seconds()}
	if t.Seconds > 0 {
		t.RecordsPerSec = float64(records) / t.Seconds
		t.MiBPerSec = float64(bytes) / t.Seconds / (1 << 20)
	}
	return t
}

// Latency is a distribution in milliseconds: quantiles to within 1%
// (Histogram), max and mean exact.
type Latency struct {
	// Count is how many values were measured.
	Count  uint64  `json:"count"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// LatencyOf summarizes h.
func LatencyOf(h *Histogram) Latency {
	return Latency{
		Count: h.Count(), P50Ms: ms(h.Quantile(0.5)), P99Ms: ms(h.Quantile(0.99)),
		P999Ms: ms(h.Quantile(0.999)), MaxMs: ms(h.Max()), MeanMs: ms(h.Mean()),
	}
}

// ErrorCount is how many times one kind of error happened.
type ErrorCount struct {
	// Side is "produce" or "consume".
	Side  string `json:"side"`
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
	// Example is the first such error's message.
	Example string `json:"example"`
}

// fill computes the figures from st. startNs and producedNs are the run
// clock when producing started and when every producer had finished.
func (r *Result) fill(st *stats, startNs, producedNs int64) {
	end := st.lastAck.Load()
	if end <= startNs {
		end = producedNs
	}
	r.Produce = throughput(st.produced.Load(), st.producedBytes.Load(), time.Duration(end-startNs))
	cend := st.lastConsume.Load()
	if cend <= startNs {
		cend = startNs
	}
	r.Consume = throughput(st.consumed.Load(), st.consumedBytes.Load(), time.Duration(cend-startNs))
	r.ProduceLatency = LatencyOf(st.produceLat)
	r.EndToEndLatency = LatencyOf(st.e2eLat)
	r.Errors = append(st.produceErrs.list("produce"), st.consumeErrs.list("consume")...)
	if r.Errors == nil {
		r.Errors = []ErrorCount{}
	}
}

// ErrorTotal is the number of errors of every kind.
func (r *Result) ErrorTotal() int64 {
	var n int64
	for _, e := range r.Errors {
		n += e.Count
	}
	return n
}

// WriteText prints the summary for a person.
func (r *Result) WriteText(w io.Writer) error {
	c := r.Config
	var b strings.Builder
	where := strings.Join(c.Brokers, ",")
	if c.Target == TargetWAL {
		where = c.Endpoint
	}
	workload := fmt.Sprintf("%d B records, %d partitions, %d producers, %d consumers, acks=%s, linger=%s, batch=%d B, compression=%s, keys=%t",
		c.RecordSize, c.Partitions, c.Producers, c.Consumers, c.Acks, c.Linger, c.BatchBytes, c.Compression, c.Keys)
	if c.Target == TargetWAL {
		workload = fmt.Sprintf("%d B entries, %d logs, %d appenders (%d B per request), %d readers, keys=%t",
			c.RecordSize, len(c.logNames()), c.Producers, c.BatchBytes, c.Consumers, c.Keys)
	}
	if c.Rate > 0 {
		workload += fmt.Sprintf(", rate=%g records/s", c.Rate)
	}
	fmt.Fprintf(&b, "morax bench: %s %s topic %s\n  %s\n\n", c.Target, where, c.Topic, workload)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\trecords\tMiB\tseconds\trecords/s\tMiB/s\n")
	for _, row := range []struct {
		name string
		t    Throughput
	}{{"produce", r.Produce}, {"consume", r.Consume}} {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.0f\t%.2f\n", row.name, row.t.Records,
			float64(row.t.Bytes)/(1<<20), row.t.Seconds, row.t.RecordsPerSec, row.t.MiBPerSec)
	}
	tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "latency (ms)\tp50\tp99\tp99.9\tmax\tmean\n")
	fmt.Fprintf(tw, "produce ack\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\n", r.ProduceLatency.P50Ms, r.ProduceLatency.P99Ms,
		r.ProduceLatency.P999Ms, r.ProduceLatency.MaxMs, r.ProduceLatency.MeanMs)
	fmt.Fprintf(tw, "end to end\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\n", r.EndToEndLatency.P50Ms, r.EndToEndLatency.P99Ms,
		r.EndToEndLatency.P999Ms, r.EndToEndLatency.MaxMs, r.EndToEndLatency.MeanMs)
	tw.Flush()
	b.WriteString("\n")
	if len(r.Errors) == 0 {
		b.WriteString("errors: none\n")
	} else {
		b.WriteString("errors:\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "  %s %s: %d (e.g. %s)\n", e.Side, e.Kind, e.Count, e.Example)
		}
	}
	if k := r.Cost; k != nil {
		fmt.Fprintf(&b, "\nbroker cost (%s):\n", r.MetricsURL)
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  object PUTs\t%.0f\t(%.0f KiB per object)\n", k.ObjectPuts, k.BytesPerPut/1024)
		fmt.Fprintf(tw, "  object GETs\t%.0f\t(%.1f MiB)\n", k.ObjectGets, k.GetBytes/(1<<20))
		fmt.Fprintf(tw, "  object DELETEs, LISTs\t%.0f, %.0f\t\n", k.ObjectDeletes, k.ObjectLists)
		fmt.Fprintf(tw, "  flushes\t%.0f\t(%.0f failed)\n", k.Flushes, k.FlushFailures)
		fmt.Fprintf(tw, "  metadata transactions\t%.0f\t(%.2f per flush)\n", k.MetaTransactions, k.TransactionsPerFlush)
		fmt.Fprintf(tw, "  PUTs per GiB ingested\t%.0f\t(%.1f MiB acknowledged by the broker)\n", k.PutsPerGiB, k.IngestBytes/(1<<20))
		tw.Flush()
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
