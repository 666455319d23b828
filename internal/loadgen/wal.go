package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/morax-dev/morax/wire/wal/client"
)

// Pauses of the WAL driver. errorPause keeps an appender or reader that
// gets an immediate error (a full node answering 429, a restart) from
// spinning; idlePause is the poll interval of a reader that follows several
// logs and so cannot long-poll one of them.
const (
	errorPause   = 10 * time.Millisecond
	idlePause    = 2 * time.Millisecond
	walLongPoll  = 500 * time.Millisecond
	walReadBytes = 1 << 20
)

// walDriver runs a workload through the WAL HTTP API. A WAL log has one
// partition, so Config.Partitions maps to that many logs; each appender
// sends synchronous requests of BatchBytes worth of entries, round-robin
// over the logs, which is how the client is used (it does not batch).
type walDriver struct {
	cfg   Config
	st    *stats
	c     *client.Client
	logs  []string
	start []int64 // end offsets before the run, per log
	note  []string
}

func newWALDriver(cfg Config, st *stats) (*walDriver, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// One connection per appender and reader at least, kept across
	// requests.
	tr.MaxIdleConnsPerHost = cfg.Producers + cfg.Consumers + 8
	c, err := client.New(cfg.Endpoint, client.WithHTTPClient(&http.Client{Transport: tr}), client.WithUserAgent("morax-bench"))
	if err != nil {
		return nil, fmt.Errorf("wal client: %w", err)
	}
	return &walDriver{cfg: cfg, st: st, c: c, logs: cfg.logNames()}, nil
}

func (w *walDriver) notes() []string { return w.note }

func (w *walDriver) setup(ctx context.Context) error {
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.c.Health(hctx); err != nil {
		return fmt.Errorf("wal endpoint %s: %w", w.cfg.Endpoint, err)
	}
	for _, name := range w.logs {
		if w.cfg.CreateTopic {
			err := w.c.Create(ctx, name, nil)
			if err != nil && client.CodeOf(err) != client.CodeAlreadyExists {
				return fmt.Errorf("create log %s: %w", name, err)
			}
		}
		info, err := w.c.Describe(ctx, name)
		if err != nil {
			if client.CodeOf(err) == client.CodeNotFound {
				return fmt.Errorf("log %s does not exist (use --create-topic): %w", name, err)
			}
			return fmt.Errorf("describe log %s: %w", name, err)
		}
		w.start = append(w.start, info.EndOffset)
	}
	if w.cfg.Linger != DefaultConfig().Linger {
		w.note = append(w.note, "linger does not apply to the WAL client (the node's own linger does)")
	}
	if n := min(w.cfg.Consumers, len(w.logs)); n < w.cfg.Consumers {
		w.note = append(w.note, fmt.Sprintf("%d readers for %d logs: only %d run", w.cfg.Consumers, len(w.logs), n))
	}
	return nil
}

// perRequest is how many entries one append carries.
func (w *walDriver) perRequest() int { return max(1, w.cfg.BatchBytes/w.cfg.RecordSize) }

func (w *walDriver) produce(ctx context.Context, id int, p plan) {
	st := w.st
	pace := newPacer(p.rate)
	bufs := make([][]byte, w.perRequest())
	for i := range bufs {
		bufs[i] = make([]byte, w.cfg.RecordSize)
		copy(bufs[i], st.filler)
	}
	entries := make([]client.Entry, len(bufs))
	var n int64
	for req := id; p.more(n); req++ {
		k := len(bufs)
		if p.quota >= 0 {
			k = int(min(int64(k), p.quota-n))
		}
		if pace.wait(ctx, k) != nil {
			return
		}
		var bytes int64
		ts := st.now()
		for i := range k {
			// Every entry of a request carries the request's send time.
			st.stamp(bufs[i])
			entries[i] = client.Entry{Data: bufs[i]}
			if w.cfg.Keys {
				entries[i].Key = st.keys[(int64(id)*7919+n+int64(i))%keySpace]
			}
			bytes += int64(len(bufs[i]) + len(entries[i].Key))
		}
		st.sent.Add(int64(k))
		name := w.logs[req%len(w.logs)]
		_, err := w.c.AppendEntries(ctx, name, entries[:k], client.AppendOptions{})
		n += int64(k)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			st.produceErrs.add(err, k)
			sleepCtx(ctx, errorPause)
			continue
		}
		st.acked(ts, k, bytes)
	}
}

func (w *walDriver) closeProducers() {}

func (w *walDriver) consumers() int { return min(w.cfg.Consumers, len(w.logs)) }

func (w *walDriver) consume(ctx context.Context, id int) {
	n := w.consumers()
	var mine []int
	for i := id; i < len(w.logs); i += n {
		mine = append(mine, i)
	}
	next := make([]int64, len(mine))
	for j, i := range mine {
		next[j] = w.start[i]
	}
	// A reader of one log long-polls it; a reader of several cannot park
	// on one while another fills, so it polls them in turn.
	var wait time.Duration
	if len(mine) == 1 {
		wait = walLongPoll
	}
	for ctx.Err() == nil {
		got := 0
		for j, i := range mine {
			res, err := w.c.Read(ctx, w.logs[i], next[j], &client.ReadOptions{MaxBytes: walReadBytes, Wait: wait})
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				w.st.consumeErrs.add(err, 1)
				sleepCtx(ctx, errorPause)
				continue
			}
			for _, e := range res.Entries {
				w.st.gotValue(e.Data, len(e.Key))
			}
			next[j] = res.Next(next[j])
			got += len(res.Entries)
		}
		if got == 0 && wait == 0 {
			sleepCtx(ctx, idlePause)
		}
	}
}

func (w *walDriver) close() {}
