package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Names of the Morax metrics the cost counters are computed from
// (actors/metrics.go and persistence/objstore/metered.go).
const (
	metricObjRequests = "morax_objstore_requests_total"
	metricObjPutBytes = "morax_objstore_put_bytes_total"
	metricObjGetBytes = "morax_objstore_get_bytes_total"
	metricFlushes     = "morax_flushes_total"
	metricMetaTxns    = "morax_meta_flush_transactions_total"
	metricAppendBytes = "morax_append_bytes_total"
	metricFlushFailed = "morax_flush_failures_total"
)

// gib is the unit of "PUTs per GiB ingested".
const gib = 1 << 30

// maxMetricsBody bounds a scrape: a node's metrics are tens of KiB, and a
// wrong URL pointing at something large must not fill memory.
const maxMetricsBody = 16 << 20

// Sample is one scrape of a Prometheus endpoint: every counter, gauge and
// untyped value, keyed by series (name plus sorted labels, as
// `name{a="x",b="y"}`), with histograms and summaries contributing their
// _sum and _count series.
type Sample map[string]float64

// seriesKey renders name and labels the way Prometheus prints a series.
func seriesKey(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	ls := make([]string, 0, len(labels))
	for _, l := range labels {
		ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

// ParseSample reads the Prometheus text exposition format.
func ParseSample(r io.Reader) (Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	s := Sample{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			key := seriesKey(name, m.GetLabel())
			switch {
			case m.Counter != nil:
				s[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s[key] = m.GetGauge().GetValue()
			case m.Untyped != nil:
				s[key] = m.GetUntyped().GetValue()
			case m.Histogram != nil:
				s[seriesKey(name+"_sum", m.GetLabel())] = m.GetHistogram().GetSampleSum()
				s[seriesKey(name+"_count", m.GetLabel())] = float64(m.GetHistogram().GetSampleCount())
			case m.Summary != nil:
				s[seriesKey(name+"_sum", m.GetLabel())] = m.GetSummary().GetSampleSum()
				s[seriesKey(name+"_count", m.GetLabel())] = float64(m.GetSummary().GetSampleCount())
			}
		}
	}
	return s, nil
}

// Sum adds up every series of the metric name whose labels include all of
// match (label name to value), so that Sum("x", nil) totals a vector.
func (s Sample) Sum(name string, match map[string]string) float64 {
	var total float64
	for key, v := range s {
		n, labels, _ := strings.Cut(key, "{")
		if n != name {
			continue
		}
		ok := true
		for ln, lv := range match {
			pair := fmt.Sprintf("%s=%q", ln, lv)
			if !strings.HasPrefix(labels, pair) && !strings.Contains(labels, ","+pair) {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// Has reports whether any series of the metric name is present.
func (s Sample) Has(name string) bool {
	for key := range s {
		if n, _, _ := strings.Cut(key, "{"); n == name {
			return true
		}
	}
	return false
}

// Scrape fetches and parses the metrics at url, giving up after timeout.
func Scrape(ctx context.Context, hc *http.Client, url string, timeout time.Duration) (Sample, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	// Ask for text: the parser reads only the text format.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %w: HTTP %d", url, ErrScrape, resp.StatusCode)
	}
	s, err := ParseSample(io.LimitReader(resp.Body, maxMetricsBody))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	if !s.Has(metricObjRequests) && !s.Has(metricFlushes) {
		return nil, fmt.Errorf("scrape %s: %w: no morax_objstore_* or morax_flushes_total series", url, ErrNotMorax)
	}
	return s, nil
}

// ErrScrape is wrapped by Scrape when the endpoint answers with an error
// status.
var ErrScrape = errors.New("metrics endpoint answered with an error")

// ErrNotMorax is wrapped by Scrape when the endpoint serves metrics but not
// a Morax node's (say, another broker's exporter).
var ErrNotMorax = errors.New("not a Morax node's metrics")

// MetricsURLFor derives the metrics URL of the node serving the WAL API at
// endpoint: a Morax node serves /metrics on its WAL listener.
func MetricsURLFor(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("metrics url from %q: %w", endpoint, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("metrics url from %q: want http://host:port", endpoint)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/metrics"
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

// Cost is what a run cost the broker, from the difference of two scrapes
// of its metrics. Counts are float64 because Prometheus counters are.
type Cost struct {
	// ObjectPuts, ObjectGets, ObjectDeletes and ObjectLists are object
	// store calls (successful or not) during the run.
	ObjectPuts    float64 `json:"object_puts"`
	ObjectGets    float64 `json:"object_gets"`
	ObjectDeletes float64 `json:"object_deletes"`
	ObjectLists   float64 `json:"object_lists"`
	// PutBytes and GetBytes are bytes moved by successful calls.
	PutBytes float64 `json:"put_bytes"`
	GetBytes float64 `json:"get_bytes"`
	// BytesPerPut is the mean object size written.
	BytesPerPut float64 `json:"bytes_per_put"`
	// Flushes is segments committed; FlushFailures flushes that failed.
	Flushes       float64 `json:"flushes"`
	FlushFailures float64 `json:"flush_failures"`
	// MetaTransactions is metadata transactions issued for flushes.
	MetaTransactions float64 `json:"meta_transactions"`
	// IngestBytes is record batch bytes the broker acknowledged (what
	// producers sent, with Kafka batch framing).
	IngestBytes float64 `json:"ingest_bytes"`
	// PutsPerGiB is ObjectPuts per GiB of IngestBytes: the request cost of
	// storing data, which object store pricing charges per call.
	PutsPerGiB float64 `json:"puts_per_gib"`
	// TransactionsPerFlush should be exactly 1 (docs/ARCHITECTURE.md, write path).
	TransactionsPerFlush float64 `json:"transactions_per_flush"`
	// Reset is set when a counter went down between the scrapes (the node
	// restarted): the figures then cover only the time since the restart.
	Reset bool `json:"reset,omitempty"`
}

// Diff computes the cost of what happened between two scrapes.
func Diff(before, after Sample) Cost {
	var c Cost
	d := func(name string, match map[string]string) float64 {
		a, b := after.Sum(name, match), before.Sum(name, match)
		if a < b {
			c.Reset = true
			return a
		}
		return a - b
	}
	c.ObjectPuts = d(metricObjRequests, map[string]string{"op": "put"})
	c.ObjectGets = d(metricObjRequests, map[string]string{"op": "get"})
	c.ObjectDeletes = d(metricObjRequests, map[string]string{"op": "delete"})
	c.ObjectLists = d(metricObjRequests, map[string]string{"op": "list"})
	c.PutBytes = d(metricObjPutBytes, nil)
	c.GetBytes = d(metricObjGetBytes, nil)
	c.Flushes = d(metricFlushes, nil)
	c.FlushFailures = d(metricFlushFailed, nil)
	c.MetaTransactions = d(metricMetaTxns, nil)
	c.IngestBytes = d(metricAppendBytes, nil)
	if c.ObjectPuts > 0 {
		c.BytesPerPut = c.PutBytes / c.ObjectPuts
	}
	if c.IngestBytes > 0 {
		c.PutsPerGiB = c.ObjectPuts / (c.IngestBytes / gib)
	}
	if c.Flushes > 0 {
		c.TransactionsPerFlush = c.MetaTransactions / c.Flushes
	}
	return c
}
