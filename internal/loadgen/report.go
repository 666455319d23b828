package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Report gathers saved results (the --json output of morax bench and its
// raw modes) of several rounds, to print medians and ranges side by side.
type Report struct {
	// Loads are load runs by label, in the order labels first appear.
	Loads  map[string][]*Result
	Labels []string
	// S3 and PG are raw backend measurements.
	S3, PG []*RawResult
}

// Add files one saved result into r by its kind.
func (r *Report) Add(data []byte) error {
	var head struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("decode result: %w", err)
	}
	switch head.Kind {
	case KindLoad:
		var res Result
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("decode load result: %w", err)
		}
		if r.Loads == nil {
			r.Loads = map[string][]*Result{}
		}
		label := res.Label
		if label == "" {
			label = string(res.Config.Target)
		}
		if _, ok := r.Loads[label]; !ok {
			r.Labels = append(r.Labels, label)
		}
		r.Loads[label] = append(r.Loads[label], &res)
	case KindRawS3, KindRawPG:
		var res RawResult
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("decode raw result: %w", err)
		}
		if head.Kind == KindRawS3 {
			r.S3 = append(r.S3, &res)
		} else {
			r.PG = append(r.PG, &res)
		}
	default:
		return fmt.Errorf("%w: result kind %q", ErrInvalidConfig, head.Kind)
	}
	return nil
}

// AddFiles reads saved results from paths.
func (r *Report) AddFiles(paths ...string) error {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read result: %w", err)
		}
		if err := r.Add(b); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// Stat is the median and range of one figure over rounds.
type Stat struct {
	// Median, Min and Max of the values.
	Median, Min, Max float64
	// N is how many values there were.
	N int
}

// StatOf summarizes values; the median of an even count is the mean of
// the middle two.
func StatOf(values []float64) Stat {
	if len(values) == 0 {
		return Stat{}
	}
	v := slices.Clone(values)
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Stat{Median: m, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

// format prints "median (min–max)" with the given precision, or the
// median alone over one round.
func (s Stat) format(prec int) string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 || s.Min == s.Max {
		return fmt.Sprintf("%.*f", prec, s.Median)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Median, prec, s.Min, prec, s.Max)
}

func statOver[T any](xs []T, f func(T) float64) Stat {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	return StatOf(v)
}

// ratio prints a/b as "1.23×", or "–" when b is unknown.
func ratio(a, b float64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// Markdown writes the comparison tables: every load label against the
// reference label (kfake in the bench scripts, served by dev/kfake), then
// the raw backend limits and how the labels named in vsRaw (the PostgreSQL
// + MinIO runs) compare with them.
func (r *Report) Markdown(w io.Writer, reference string, vsRaw []string) error {
	var b strings.Builder
	ref := r.Loads[reference]
	refProduce := statOver(ref, func(x *Result) float64 { return x.Produce.MiBPerSec }).Median
	refConsume := statOver(ref, func(x *Result) float64 { return x.Consume.MiBPerSec }).Median
	b.WriteString("| target | rounds | produce records/s | produce MiB/s | × " + reference + " | consume MiB/s | × " + reference +
		" | produce p50 ms | produce p99 ms | e2e p50 ms | e2e p99 ms | PUTs/GiB | txns/flush | errors |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, label := range r.ordered(reference) {
		rs := r.Loads[label]
		prod := statOver(rs, func(x *Result) float64 { return x.Produce.MiBPerSec })
		cons := statOver(rs, func(x *Result) float64 { return x.Consume.MiBPerSec })
		puts, txns := "–", "–"
		var costed []*Result
		for _, x := range rs {
			if x.Cost != nil {
				costed = append(costed, x)
			}
		}
		if len(costed) > 0 {
			puts = statOver(costed, func(x *Result) float64 { return x.Cost.PutsPerGiB }).format(0)
			txns = statOver(costed, func(x *Result) float64 { return x.Cost.TransactionsPerFlush }).format(2)
		}
		var errs int64
		for _, x := range rs {
			errs += x.ErrorTotal()
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n",
			label, len(rs),
			statOver(rs, func(x *Result) float64 { return x.Produce.RecordsPerSec }).format(0),
			prod.format(1), ratio(prod.Median, refProduce),
			cons.format(1), ratio(cons.Median, refConsume),
			statOver(rs, func(x *Result) float64 { return x.ProduceLatency.P50Ms }).format(1),
			statOver(rs, func(x *Result) float64 { return x.ProduceLatency.P99Ms }).format(1),
			statOver(rs, func(x *Result) float64 { return x.EndToEndLatency.P50Ms }).format(1),
			statOver(rs, func(x *Result) float64 { return x.EndToEndLatency.P99Ms }).format(1),
			puts, txns, errs)
	}
	if len(r.S3) > 0 || len(r.PG) > 0 {
		b.WriteString("\n| backend limit | rounds | rate | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|\n")
		if len(r.S3) > 0 {
			o := r.S3[0].Options
			fmt.Fprintf(&b, "| %s: %d KiB PUTs, %d concurrent | %d | %s MiB/s (%s PUTs/s) | %s | %s | %d |\n",
				r.S3[0].Target, o.ObjectSize>>10, o.Concurrency, len(r.S3),
				statOver(r.S3, func(x *RawResult) float64 { return x.MiBPerSec }).format(1),
				statOver(r.S3, func(x *RawResult) float64 { return x.OpsPerSec }).format(1),
				statOver(r.S3, func(x *RawResult) float64 { return x.Latency.P50Ms }).format(1),
				statOver(r.S3, func(x *RawResult) float64 { return x.Latency.P99Ms }).format(1),
				rawErrors(r.S3))
		}
		if len(r.PG) > 0 {
			o := r.PG[0].Options
			fmt.Fprintf(&b, "| PostgreSQL: single-row commits, %d connection(s) | %d | %s commits/s | %s | %s | %d |\n",
				o.Concurrency, len(r.PG),
				statOver(r.PG, func(x *RawResult) float64 { return x.OpsPerSec }).format(0),
				statOver(r.PG, func(x *RawResult) float64 { return x.Latency.P50Ms }).format(2),
				statOver(r.PG, func(x *RawResult) float64 { return x.Latency.P99Ms }).format(2),
				rawErrors(r.PG))
		}
	}
	s3 := statOver(r.S3, func(x *RawResult) float64 { return x.MiBPerSec }).Median
	pgRate := statOver(r.PG, func(x *RawResult) float64 { return x.OpsPerSec }).Median
	for _, label := range vsRaw {
		rs := r.Loads[label]
		if len(rs) == 0 {
			continue
		}
		prod := statOver(rs, func(x *Result) float64 { return x.Produce.MiBPerSec }).Median
		var flushRate []float64
		for _, x := range rs {
			if x.Cost != nil && x.Produce.Seconds > 0 {
				flushRate = append(flushRate, x.Cost.Flushes/x.Produce.Seconds)
			}
		}
		fmt.Fprintf(&b, "\n%s against the backend limits: produce %.1f MiB/s is %s of raw PUT bandwidth", label, prod, ratio(prod, s3))
		if len(flushRate) > 0 && pgRate > 0 {
			fr := StatOf(flushRate).Median
			fmt.Fprintf(&b, "; %.0f flush transactions/s is %s of the single-row commit rate", fr, ratio(fr, pgRate))
		}
		b.WriteString(".\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ordered lists the labels with the reference first, the others in the
// order they first appeared.
func (r *Report) ordered(reference string) []string {
	var out []string
	if _, ok := r.Loads[reference]; ok {
		out = append(out, reference)
	}
	for _, l := range r.Labels {
		if l != reference {
			out = append(out, l)
		}
	}
	return out
}

func rawErrors(rs []*RawResult) int64 {
	var n int64
	for _, x := range rs {
		for _, e := range x.Errors {
			n += e.Count
		}
	}
	return n
}
