//go:build soak

package suite

// The soak: `go tool task test:soak DURATION=1h` (build tag soak, so CI
// never sees it). Mixed load at about half of what the cluster sustains,
// a node killed and restarted every DURATION/12 (5 minutes in an hour),
// PostgreSQL restarted every DURATION/6 (10 minutes), zero acknowledged
// loss by the history checker, and node memory sampled throughout and
// required flat.

import (
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/morax-dev/morax/internal/clustertest"
)

var (
	flagSoakDuration = flag.Duration("soak.duration", 0, "how long the soak runs (default 1h, or MORAX_SOAK_DURATION)")
	flagSoakMaxRate  = flag.Float64("soak.maxrate", 400, "ceiling on the Kafka records per second of the soak's recorded load: the history of every record must fit in the test's memory")
	flagSoakBulk     = flag.Bool("soak.bulk", true, "add unrecorded Kafka load (clustertest.BulkLoad, checked by count) so the total is half of what the cluster sustains")
)

func soakDuration(t *testing.T) time.Duration {
	if *flagSoakDuration > 0 {
		return *flagSoakDuration
	}
	if v := os.Getenv("MORAX_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("MORAX_SOAK_DURATION=%q: %v", v, err)
		}
		return d
	}
	return time.Hour
}

// TestSoak runs the soak. The never-killed node (node1) carries the
// memory-flatness assertion: the others restart, so their RSS starts over.
func TestSoak(t *testing.T) {
	seed := seed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	total := soakDuration(t)
	killEvery, pgEvery := total/12, total/6
	t.Logf("soak duration %s: a node killed every %s, PostgreSQL restarted every %s", total, killEvery, pgEvery)
	e := newEnv(t, 3)

	// Half of what the cluster sustains: measured first on a topic of
	// its own.
	e.c.CreateTopic("soak-probe", 12)
	capacity := e.c.MeasureProduceRate("soak-probe", 12, 10*time.Second)
	rate := math.Min(capacity/2, *flagSoakMaxRate)
	const producers = 4
	every := time.Duration(float64(time.Second) * producers / rate)
	t.Logf("soak load: the cluster sustained %.0f records/s; producing %.0f records/s (%d producers, one record each per %s), plus WAL appends through every node",
		capacity, rate, producers, every)
	l := e.startLoad(t, "soak", loadShape{partitions: 12, producers: producers, produceEvery: every,
		walEvery: 30 * time.Millisecond, groupMembers: 2, recordReads: false})
	l.waitAllAcked(t, 0, 60*time.Second, "soak warm-up")
	l.waitCommits(t, 60*time.Second)
	// The rest of half the capacity comes from a load that is counted,
	// not recorded record by record.
	var bulk *clustertest.BulkLoad
	bulkRate := 0.0
	if *flagSoakBulk && capacity/2 > rate {
		bulkRate = capacity/2 - rate
		e.c.CreateTopic("soak-bulk", 12)
		// Retention keeps an hour's volume off the disk; the count check
		// reads committed end offsets, which retention leaves alone.
		e.c.SetTopicConfig("soak-bulk", "retention.ms", "120000")
		bulk = e.c.StartBulk("soak-bulk", bulkRate, 100)
		t.Logf("soak bulk load: %.0f records/s of 100 bytes, unrecorded, to soak-bulk", bulkRate)
	}

	rss := e.sampleRSS(max(total/720, time.Second))
	began := time.Now()
	nextKill, nextPG := began.Add(killEvery), began.Add(pgEvery)
	victims := []*clustertest.Node{e.c.Node("node2"), e.c.Node("node3")}
	var kills, restarts int
	var worstKill, worstPG time.Duration
	for time.Since(began) < total {
		now := time.Now()
		switch {
		case !now.Before(nextPG):
			at := l.rec.Now()
			if err := e.pg.Restart(); err != nil {
				t.Fatalf("restart postgres: %v", err)
			}
			heal := l.rec.Now()
			last := l.waitAllAcked(t, heal, 90*time.Second, "soak pg-restart")
			restarts++
			worstPG = max(worstPG, last-heal)
			t.Logf("recovery fault=pg-restart round=%d seconds=%.2f (outage %.2fs)", restarts, (last - heal).Seconds(), (heal - at).Seconds())
			nextPG = nextPG.Add(pgEvery)
		case !now.Before(nextKill):
			v := victims[kills%len(victims)]
			at := l.rec.Now()
			v.Kill()
			last := l.waitAllAcked(t, at, 90*time.Second, "soak node-kill")
			kills++
			worstKill = max(worstKill, last-at)
			t.Logf("recovery fault=node-kill node=%s round=%d seconds=%.2f", v.ID(), kills, (last - at).Seconds())
			// Back after a random short while, as an operator's restart.
			time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Second))))
			v.Start()
			nextKill = nextKill.Add(killEvery)
		default:
			time.Sleep(min(time.Until(nextKill), time.Until(nextPG), time.Until(began.Add(total)), time.Second))
		}
	}

	rss.finish(t, "soak")
	var bulkAcked, bulkFailed, bulkStored int64
	if bulk != nil {
		var firstErr error
		bulkAcked, bulkFailed, firstErr = bulk.Stop()
		for _, end := range e.c.PartitionEnds("soak-bulk") {
			bulkStored += end
		}
		t.Logf("soak bulk: %d records acknowledged, %d failed (first: %v), %d committed", bulkAcked, bulkFailed, firstErr, bulkStored)
		// Idempotent and acks=all: every acknowledged record is committed
		// once; a failed one may or may not be.
		if bulkStored < bulkAcked || bulkStored > bulkAcked+bulkFailed {
			t.Errorf("soak-bulk holds %d records; %d were acknowledged and %d failed: acknowledged records lost or duplicated", bulkStored, bulkAcked, bulkFailed)
		}
	}
	res := l.finish(t, nil)

	// Memory: report every node; require the never-killed one flat.
	rss.mu.Lock()
	defer rss.mu.Unlock()
	var report []string
	flat := "n/a"
	for _, id := range sortedKeys(rss.series) {
		s := rss.series[id]
		if len(s) == 0 {
			continue
		}
		report = append(report, fmt.Sprintf("%s first=%.0fMiB last=%.0fMiB max=%.0fMiB", id, mib(s[0]), mib(s[len(s)-1]), mib(rss.max[id])))
		if id != "node1" {
			continue
		}
		n := len(s)
		if n < 20 {
			t.Errorf("node1: only %d RSS samples", n)
			continue
		}
		second, last := mean(s[n/10:2*n/10]), mean(s[n-n/10:])
		growth := last/second - 1
		flat = fmt.Sprintf("%+.1f%%", growth*100)
		t.Logf("node1 RSS: mean of the second tenth %.0f MiB, of the last tenth %.0f MiB (%s)", second/(1<<20), last/(1<<20), flat)
		if growth > 0.10 {
			t.Errorf("node1's RSS grew %.1f%% from the second tenth of the soak to the last (over 10%%): memory is not flat", growth*100)
		}
	}
	verdict := "PASS"
	if t.Failed() {
		verdict = "FAIL"
	}
	t.Logf("soak summary: duration=%s seed=%d load=%.0frec/s recorded + %.0frec/s bulk (capacity %.0f) bulk_acked=%d bulk_stored=%d acked_appends=%d records=%d history_problems=%d node_kills=%d recovery_node_max=%.2fs pg_restarts=%d recovery_pg_max=%.2fs rss_node1_growth=%s rss: %s verdict=%s",
		total, seed, rate, bulkRate, capacity, bulkAcked, bulkStored, res.Acked, res.Entries, len(res.Problems), kills, worstKill.Seconds(), restarts, worstPG.Seconds(), flat, strings.Join(report, "; "), verdict)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func mean(s []int64) float64 {
	sum := 0.0
	for _, v := range s {
		sum += float64(v)
	}
	return sum / float64(len(s))
}

// sortedKeys lists a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	k := slices.Collect(maps.Keys(m))
	sort.Strings(k)
	return k
}
