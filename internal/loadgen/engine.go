package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Options are how a run is observed, as opposed to the workload (Config).
type Options struct {
	// Progress, when set, is called every ProgressInterval with a live
	// snapshot, from one goroutine, never after Run returns.
	Progress func(Progress)
	// ProgressInterval defaults to one second.
	ProgressInterval time.Duration
	// MetricsURL is a Morax node's Prometheus endpoint, scraped before and
	// after the run for the cost counters; empty skips them.
	MetricsURL string
	// HTTPClient scrapes the metrics; nil uses http.DefaultClient.
	HTTPClient *http.Client
	// Label names the run in saved results (e.g. "embedded"), for Report.
	Label string
}

// Progress is a live snapshot of a run.
type Progress struct {
	// Elapsed is the time since producing started.
	Elapsed time.Duration
	// Phase is "producing", then "draining" while waiting for the last
	// acknowledgements and for consumers to catch up.
	Phase string
	// Produced and Consumed are records so far.
	Produced, Consumed int64
	// Rates over the last interval.
	ProduceRecordsPerSec, ProduceMiBPerSec float64
	ConsumeRecordsPerSec, ConsumeMiBPerSec float64
	// ProduceP99 and EndToEndP99 are over the whole run so far.
	ProduceP99, EndToEndP99 time.Duration
	// Errors is produce and consume errors so far.
	Errors int64
}

// driver is a protocol's half of a run: the engine owns timing, pacing
// and counting; a driver moves records.
type driver interface {
	// setup creates or checks the topic (logs) and records where each
	// partition ends, so consumers read exactly this run's records.
	setup(ctx context.Context) error
	// produce runs producer id until its plan is done, then waits (within
	// the drain timeout) for its records' acknowledgements.
	produce(ctx context.Context, id int, plan plan)
	// closeProducers releases producers; records still unacknowledged fail.
	closeProducers()
	// consumers is how many consumer goroutines to run.
	consumers() int
	// consume runs consumer id until ctx ends.
	consume(ctx context.Context, id int)
	// close releases everything; safe after a failed setup.
	close()
	// notes are remarks on how the workload was applied.
	notes() []string
}

// plan is one producer's share of the workload.
type plan struct {
	quota    int64     // records to produce; < 0 means until deadline
	deadline time.Time // when quota < 0
	rate     float64   // records per second; 0 is unlimited
}

// more reports whether a producer that has sent n records should go on.
func (p plan) more(n int64) bool {
	if p.quota >= 0 {
		return n < p.quota
	}
	return time.Now().Before(p.deadline)
}

// Run drives cfg's workload and returns its summary. It fails only when
// the run cannot start (an unreachable broker, a missing topic); errors
// while records flow are counted in the result. Cancelling ctx stops the
// run early and still returns what was measured.
func Run(ctx context.Context, cfg Config, opts Options) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st := newStats(cfg.RecordSize, cfg.Warmup)
	var d driver
	switch cfg.Target {
	case TargetKafka:
		d = newKafkaDriver(cfg, st)
	case TargetWAL:
		var err error
		if d, err = newWALDriver(cfg, st); err != nil {
			return nil, err
		}
	}
	defer d.close()
	if err := d.setup(ctx); err != nil {
		return nil, err
	}
	res := &Result{Kind: KindLoad, Label: opts.Label, Config: cfg, Started: time.Now().UTC()}
	res.Notes = append(res.Notes, d.notes()...)

	var before Sample
	if opts.MetricsURL != "" {
		res.MetricsURL = opts.MetricsURL
		var err error
		if before, err = Scrape(ctx, opts.HTTPClient, opts.MetricsURL, 10*time.Second); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("no cost counters: %v", err))
		}
	}

	consumeCtx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var consumers sync.WaitGroup
	for i := range d.consumers() {
		consumers.Go(func() { d.consume(consumeCtx, i) })
	}

	startNs := st.now()
	phase := newPhase("producing")
	stopProgress := startProgress(opts, st, startNs, phase)
	defer stopProgress()

	var producers sync.WaitGroup
	deadline := time.Now().Add(cfg.Duration)
	for i := range cfg.Producers {
		p := plan{quota: -1, deadline: deadline, rate: cfg.Rate / float64(cfg.Producers)}
		if cfg.Records > 0 {
			p.quota = cfg.Records / int64(cfg.Producers)
			if int64(i) < cfg.Records%int64(cfg.Producers) {
				p.quota++
			}
		}
		producers.Go(func() { d.produce(ctx, i, p) })
	}
	producers.Wait()
	d.closeProducers()
	producedNs := st.now()
	phase.set("draining")

	// Consumers catch up with what was acknowledged, within the drain
	// timeout: a record lost or never consumed must not hang the run.
	if d.consumers() > 0 {
		deadline := time.Now().Add(cfg.DrainTimeout)
		for st.consumed.Load() < st.produced.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
			sleepCtx(ctx, 5*time.Millisecond)
		}
		if missing := st.produced.Load() - st.consumed.Load(); missing > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%d acknowledged records were not consumed within the drain timeout (%s)", missing, cfg.DrainTimeout))
		}
	}
	stopConsumers()
	consumers.Wait()
	stopProgress()

	if before != nil {
		after, err := Scrape(context.WithoutCancel(ctx), opts.HTTPClient, opts.MetricsURL, 10*time.Second)
		if err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("no cost counters: %v", err))
		} else {
			c := Diff(before, after)
			res.Cost = &c
			if c.Reset {
				res.Notes = append(res.Notes, "a broker counter went down during the run (restart?): cost covers part of it")
			}
		}
	}
	if n := st.foreign.Load(); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("consumers skipped %d records not written by this run", n))
	}
	if ctx.Err() != nil {
		res.Notes = append(res.Notes, "interrupted: figures cover the part that ran")
	}
	res.fill(st, startNs, producedNs)
	return res, nil
}

// phaseName is the run's phase, read by the progress reporter.
type phaseName struct {
	mu   sync.Mutex
	name string // guarded by mu
}

func newPhase(n string) *phaseName { return &phaseName{name: n} }

func (p *phaseName) set(n string) {
	p.mu.Lock()
	p.name = n
	p.mu.Unlock()
}

func (p *phaseName) get() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.name
}

// startProgress calls opts.Progress every interval until the returned
// function is called (which waits for the reporter to stop, and may be
// called more than once).
func startProgress(opts Options, st *stats, startNs int64, phase *phaseName) func() {
	if opts.Progress == nil {
		return func() {}
	}
	interval := opts.ProgressInterval
	if interval <= 0 {
		interval = time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		lastNs := startNs
		var lastP, lastPB, lastC, lastCB int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			now := st.now()
			secs := float64(now-lastNs) / 1e9
			p, pb := st.produced.Load(), st.producedBytes.Load()
			c, cb := st.consumed.Load(), st.consumedBytes.Load()
			opts.Progress(Progress{
				Elapsed:              time.Duration(now - startNs),
				Phase:                phase.get(),
				Produced:             p,
				Consumed:             c,
				ProduceRecordsPerSec: float64(p-lastP) / secs,
				ProduceMiBPerSec:     float64(pb-lastPB) / secs / (1 << 20),
				ConsumeRecordsPerSec: float64(c-lastC) / secs,
				ConsumeMiBPerSec:     float64(cb-lastCB) / secs / (1 << 20),
				ProduceP99:           st.produceLat.Quantile(0.99),
				EndToEndP99:          st.e2eLat.Quantile(0.99),
				Errors:               st.produceErrs.total.Load() + st.consumeErrs.total.Load(),
			})
			lastNs, lastP, lastPB, lastC, lastCB = now, p, pb, c, cb
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}
