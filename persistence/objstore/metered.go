package objstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets spans a fast local disk (about 1ms) to a struggling
// object store near the request timeout (10s).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Error kinds of morax_objstore_errors_total. ErrNotFound and ErrExists are
// kept apart from real failures because they are ordinary answers (a read of
// a deleted segment, a retried upload), so alerts should not fire on them.
const (
	errKindNotFound   = "not_found"
	errKindExists     = "exists"
	errKindInvalidKey = "invalid_key"
	errKindCanceled   = "canceled"
	errKindTimeout    = "timeout"
	errKindOther      = "other"
)

// Metered wraps a Store with Prometheus metrics, all named morax_objstore_*:
// requests, errors by kind and latency per operation, and bytes moved.
type Metered struct {
	inner    Store
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytesPut prometheus.Counter
	bytesGot prometheus.Counter
}

var (
	_ Store            = (*Metered)(nil)
	_ StaleTempRemover = (*Metered)(nil)
)

// NewMetered wraps inner and registers its metrics on reg; a nil reg leaves
// them unregistered. It never uses the global default registry, so that
// tests and embedders control what is exported. When reg already holds
// these metrics (a second Metered on the same registry), the existing ones
// are shared: the counts add up across stores rather than fail to register.
func NewMetered(inner Store, reg prometheus.Registerer) (*Metered, error) {
	m := &Metered{
		inner: inner,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "morax", Subsystem: "objstore", Name: "requests_total",
			Help: "Object store calls, by operation (put, get, delete, list).",
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "morax", Subsystem: "objstore", Name: "errors_total",
			Help: "Object store calls that returned an error, by operation and kind (not_found, exists, invalid_key, canceled, timeout, other).",
		}, []string{"op", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "morax", Subsystem: "objstore", Name: "request_duration_seconds",
			Help:    "Duration of object store calls, by operation; for list it includes the caller's callback.",
			Buckets: latencyBuckets,
		}, []string{"op"}),
		bytesPut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "morax", Subsystem: "objstore", Name: "put_bytes_total",
			Help: "Bytes written by successful puts.",
		}),
		bytesGot: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "morax", Subsystem: "objstore", Name: "get_bytes_total",
			Help: "Bytes returned by successful gets.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.latency, err = register(reg, m.latency); err != nil {
		return nil, err
	}
	if m.bytesPut, err = register(reg, m.bytesPut); err != nil {
		return nil, err
	}
	if m.bytesGot, err = register(reg, m.bytesGot); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the equal collector reg already has.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("objstore: register metrics: %w", err)
}

func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return errKindNotFound
	case errors.Is(err, ErrExists):
		return errKindExists
	case errors.Is(err, ErrInvalidKey):
		return errKindInvalidKey
	case errors.Is(err, context.Canceled):
		return errKindCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return errKindTimeout
	}
	return errKindOther
}

// observe records one finished call.
func (m *Metered) observe(op string, start time.Time, err error) {
	m.requests.WithLabelValues(op).Inc()
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(op, errorKind(err)).Inc()
	}
}

// Put implements Store.
func (m *Metered) Put(ctx context.Context, key string, data []byte) error {
	start := time.Now()
	err := m.inner.Put(ctx, key, data)
	m.observe("put", start, err)
	if err == nil {
		m.bytesPut.Add(float64(len(data)))
	}
	return err
}

// Get implements Store.
func (m *Metered) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	start := time.Now()
	data, err := m.inner.Get(ctx, key, off, length)
	m.observe("get", start, err)
	if err == nil {
		m.bytesGot.Add(float64(len(data)))
	}
	return data, err
}

// Delete implements Store.
func (m *Metered) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := m.inner.Delete(ctx, key)
	m.observe("delete", start, err)
	return err
}

// List implements Store.
func (m *Metered) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	start := time.Now()
	var fnErr error
	err := m.inner.List(ctx, prefix, func(o ObjectInfo) error {
		fnErr = fn(o)
		return fnErr
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		// The caller stopped the listing; the store did not fail.
		m.observe("list", start, nil)
	} else {
		m.observe("list", start, err)
	}
	return err
}

// Close implements Store by closing the wrapped store. The metrics stay
// registered: their totals remain meaningful after the store is gone.
func (m *Metered) Close() error { return m.inner.Close() }

// RemoveStaleTemps implements StaleTempRemover by passing the call to the
// wrapped store, or by removing nothing when that store has no temporary
// files: the node wraps every store in a Metered, and the orphan sweep must
// still reach an FS's leftovers through it.
func (m *Metered) RemoveStaleTemps(ctx context.Context, olderThan time.Duration) (int, error) {
	r, ok := m.inner.(StaleTempRemover)
	if !ok {
		return 0, nil
	}
	return r.RemoveStaleTemps(ctx, olderThan)
}
