package suite

import (
	"math/rand/v2"
	"testing"
	"time"
)

// scenario is one fault's run: the environment, its load and the
// schedule's random source.
type scenario struct {
	t   *testing.T
	e   *env
	l   *load
	rng *rand.Rand
	// long stretches the outages (the long suite).
	long bool
}

func (s *scenario) now() time.Duration { return s.l.rec.Now() }

// between is a random duration in [lo, hi] (lo in the short suite, so
// its runs take a known time).
func (s *scenario) between(lo, hi time.Duration) time.Duration {
	if !s.long || hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)))
}

func (s *scenario) must(err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

// injection is what one fault did: the windows in which no append can
// have succeeded (the backend every commit needs was away), when the
// recovery clock starts, and what to do once the cluster serves again.
type injection struct {
	outage [][2]time.Duration
	// pgAway: the metadata store was away, so group commits cannot have
	// succeeded in the outage either (object storage away stops only
	// appends).
	pgAway bool
	heal   time.Duration
	after  func()
}

// fault is one kind of failure.
type fault struct {
	name   string
	inject func(s *scenario) injection
}

// outage runs down, waits d, runs up, and reports the window between.
func (s *scenario) outage(down func() error, d time.Duration, up func() error) injection {
	s.must(down())
	from := s.now()
	time.Sleep(d)
	to := s.now()
	s.must(up())
	return injection{outage: [][2]time.Duration{{from, to}}, heal: s.now()}
}

// pgOutage is an outage of the metadata store.
func (s *scenario) pgOutage(down func() error, d time.Duration, up func() error) injection {
	inj := s.outage(down, d, up)
	inj.pgAway = true
	return inj
}

var allFaults = []fault{
	{"pg-restart", func(s *scenario) injection {
		return s.pgOutage(s.e.pg.Stop, s.between(0, 2*time.Second), s.e.pg.Start)
	}},
	{"pg-kill9", func(s *scenario) injection {
		return s.pgOutage(s.e.pg.Kill, s.between(500*time.Millisecond, 5*time.Second), s.e.pg.Start)
	}},
	{"pg-stopped", func(s *scenario) injection {
		return s.pgOutage(s.e.pg.Stop, s.between(10*time.Second, 40*time.Second), s.e.pg.Start)
	}},
	{"pg-blackhole", func(s *scenario) injection {
		return s.pgOutage(s.e.pgProxy.Blackhole, s.between(4*time.Second, 20*time.Second), s.e.pgProxy.Heal)
	}},
	{"pg-refused", func(s *scenario) injection {
		return s.pgOutage(func() error { s.e.pgProxy.Disable(); return nil }, s.between(4*time.Second, 20*time.Second), s.e.pgProxy.Enable)
	}},
	{"minio-kill", func(s *scenario) injection {
		return s.outage(s.e.minio.Kill, s.between(3*time.Second, 20*time.Second), s.e.minio.Start)
	}},
	{"minio-reset", func(s *scenario) injection {
		return s.outage(func() error { return s.e.s3Proxy.ResetPeer(0) }, s.between(4*time.Second, 15*time.Second), s.e.s3Proxy.Heal)
	}},
	{"minio-slow", func(s *scenario) injection {
		// Slow, not away: appends may succeed, so no outage window.
		s.must(s.e.s3Proxy.Latency(300*time.Millisecond, 100*time.Millisecond))
		time.Sleep(s.between(8*time.Second, 30*time.Second))
		s.must(s.e.s3Proxy.Heal())
		return injection{heal: s.now()}
	}},
	{"node-kill", func(s *scenario) injection {
		// The owner of partition 0 dies; the others must take its
		// partitions over. Recovery counts from the kill.
		victim := s.e.c.Node(s.e.c.OwnerOf(s.l.topic, 0).Node)
		at := s.now()
		victim.Kill()
		return injection{heal: at, after: func() {
			time.Sleep(s.between(0, 5*time.Second))
			victim.Start()
		}}
	}},
	{"node-pause", func(s *scenario) injection {
		// Paused past its leases: it must be fenced when it wakes.
		victim := s.e.c.Node(s.e.c.OwnerOf(s.l.topic, 0).Node)
		at := s.now()
		victim.Pause()
		time.Sleep(s.between(6*time.Second, 20*time.Second))
		victim.Resume()
		return injection{heal: at}
	}},
}

// TestFaults runs every fault against a three-node cluster under mixed
// load and checks the whole history afterwards: no acknowledged append
// lost, duplicated or moved, no gap, no success while a backend every
// commit needs was away, retriable errors only, commits never going back,
// recovery without a restart (its time logged as `recovery fault=<name>
// seconds=<s>`), and node memory bounded while a backend is away.
//
// The short suite (the default) injects each fault once. With
// -faults.duration it is the long suite: each fault is injected again and
// again with randomized timings for its share of the duration.
func TestFaults(t *testing.T) {
	seed := seed(t)
	long := longDuration(t)
	e := newEnv(t, 3)
	share := long / time.Duration(len(allFaults))
	for i, f := range allFaults {
		t.Run(f.name, func(t *testing.T) {
			restore := e.c.UseT(t)
			defer restore()
			s := &scenario{t: t, e: e, rng: rand.New(rand.NewPCG(uint64(seed), uint64(i))), long: long > 0}
			s.l = e.startLoad(t, f.name, shortLoad)
			s.l.waitAllAcked(t, 0, 60*time.Second, f.name+" warm-up")
			// The group too: a fault that hits before the member has
			// joined would test no commit.
			s.l.waitCommits(t, 60*time.Second)
			rss := e.sampleRSS(250 * time.Millisecond)
			var outages []outage
			began := time.Now()
			for round := 1; ; round++ {
				time.Sleep(s.between(2*time.Second, 10*time.Second))
				inj := f.inject(s)
				for _, w := range inj.outage {
					outages = append(outages, outage{w, inj.pgAway})
				}
				last := s.l.waitAllAcked(t, inj.heal, 90*time.Second, f.name)
				t.Logf("recovery fault=%s round=%d seconds=%.2f", f.name, round, (last - inj.heal).Seconds())
				if inj.after != nil {
					inj.after()
				}
				if long == 0 || time.Since(began) > share {
					break
				}
			}
			// Steady load after the fault, then the verdict.
			time.Sleep(2 * time.Second)
			rss.finish(t, f.name)
			s.l.finish(t, outages)
		})
		if t.Failed() && long == 0 {
			// The cluster may be left broken; later faults would only
			// repeat the failure.
			t.Logf("stopping after %s failed", f.name)
			return
		}
	}
}
