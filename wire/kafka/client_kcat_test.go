package kafka_test

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// TestClientKcat drives a node with the kcat command line tool (Debian
// package kcat; librdkafka 2.0 on bookworm), on both deployments. kcat has
// no admin commands, so topics are created through franz-go.
func TestClientKcat(t *testing.T) {
	kcat := cliTool(t, "kcat")
	for _, b := range kafkatest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			n := cliNode(t, b)
			k := &kcatRunner{path: kcat, addr: n.Addr}
			t.Run("CodecsGroupCommitResume", func(t *testing.T) { testKcatCodecs(t, n, k) })
			t.Run("SplitAndRebalance", func(t *testing.T) { testKcatSplit(t, n, k) })
			t.Run("Idempotent", func(t *testing.T) { testKcatIdempotent(t, n, k) })
			t.Run("Acks", func(t *testing.T) { testKcatAcks(t, n, k) })
		})
	}
}

type kcatRunner struct{ path, addr string }

// kcatFormat is how kcat prints each consumed record, parsed by
// kcatParse.
const kcatFormat = "%p\t%o\t%k\t%s\t%h\n"

// args returns kcat's arguments: common ones, then extra.
func (k *kcatRunner) args(extra ...string) []string {
	return append([]string{"-b", k.addr, "-X", "broker.address.family=v4", "-X", "log.connection.close=false"}, extra...)
}

// produce sends values, one per line keyed by cliKey, with extra librdkafka
// properties (-X name=value) and an optional codec header, and returns what
// kcat logged.
func (k *kcatRunner) produce(t *testing.T, topic, header string, values []string, props ...string) string {
	t.Helper()
	args := k.args("-P", "-t", topic, "-K", ":", "-X", "linger.ms=5")
	if header != "" {
		args = append(args, "-H", "codec="+header)
	}
	for _, p := range props {
		args = append(args, "-X", p)
	}
	var in strings.Builder
	for _, v := range values {
		in.WriteString(cliKeyOf(v) + ":" + v + "\n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.path, args...)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// kcatParse parses one line of kcatFormat output.
func kcatParse(t *testing.T, line string) cliRecord {
	t.Helper()
	f := strings.Split(line, "\t")
	if len(f) != 5 {
		t.Fatalf("kcat printed %q", line)
	}
	p, err1 := strconv.Atoi(f[0])
	o, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("kcat printed %q", line)
	}
	return cliRecord{Partition: int32(p), Offset: o, Key: f[2], Value: f[3], Header: strings.TrimPrefix(f[4], "codec=")}
}

// consume reads want records as a member of group; kcat stores the
// offset of each record it prints and commits them when it exits after
// the last.
func (k *kcatRunner) consume(t *testing.T, group, topic string, want int) []cliRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := k.args("-G", group, topic, "-q", "-f", kcatFormat, "-c", strconv.Itoa(want),
		"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=300")
	cmd := exec.CommandContext(ctx, k.path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var got []cliRecord
	for line := range strings.Lines(string(out)) {
		if line = strings.TrimSuffix(line, "\n"); line != "" {
			got = append(got, kcatParse(t, line))
		}
	}
	return got
}

func testKcatCodecs(t *testing.T, n *kafkatest.Node, k *kcatRunner) {
	const topic, group = "kcat-codecs", "kcat-codecs-g"
	cliCreateTopic(t, n, topic, cliPartitions)
	stored := []string{"none"}
	for _, c := range cliCodecs {
		// The msg debug log says when librdkafka declines a codec (its
		// notice is rate limited by uptime and may not show).
		log := k.produce(t, topic, c, cliBatch(c, cliPerCodec), "compression.codec="+c, "debug=msg")
		// Older librdkafka (2.0 in Debian bookworm's kcat; 2.11.1, bundled
		// by confluent-kafka-go, is fixed) compresses with gzip, snappy and
		// lz4 only for brokers that advertise Produce v0, which Morax, like
		// Kafka 4, does not (librdkafka issue 4956): it sends those batches
		// uncompressed. zstd it gates on Produce v7 and Fetch v10, which
		// Morax serves, so zstd must be compressed.
		switch {
		case c == "none":
		case c != "zstd" && strings.Contains(log, "Broker does not support compression type "+c):
			t.Logf("kcat's librdkafka did not compress with %s (needs Produce v0 advertised)", c)
		default:
			stored = append(stored, c)
		}
	}
	produced := cliCodecBatches()
	got := k.consume(t, group, topic, len(produced))
	cliCheckConsumed(t, produced, got, nil, nil)
	cliCheckHeaders(t, got, cliCodecOf)
	cliCheckStoredCodecs(t, n, topic, cliPartitions, stored)
	committed := cliCheckCommitted(t, n, group, topic, cliPartitions)

	// The next kcat in the group resumes at the committed offsets.
	second := cliBatch("resume", cliResume)
	k.produce(t, topic, "", second)
	got = k.consume(t, group, topic, len(second))
	cliCheckConsumed(t, second, got, committed, nil)
	cliCheckCommitted(t, n, group, topic, cliPartitions)
}

// kcatMember is a kcat balanced consumer left running: its rebalance
// messages (stderr) tell its assignment, its output the records.
type kcatMember struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when both pipes are drained

	mu       sync.Mutex
	assigned []int32
	records  []cliRecord
	log      []string
}

var kcatPartitionRE = regexp.MustCompile(`\[(\d+)\]`)

func (k *kcatRunner) startMember(t *testing.T, group, topic string) *kcatMember {
	t.Helper()
	cmd := exec.Command(k.path, k.args("-G", group, topic, "-u", "-f", kcatFormat,
		"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=300")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kcat: %v", err)
	}
	m := &kcatMember{cmd: cmd, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			if line := sc.Text(); line != "" {
				f := strings.Split(line, "\t")
				p, _ := strconv.Atoi(f[0])
				o, _ := strconv.ParseInt(f[1], 10, 64)
				r := cliRecord{Partition: int32(p), Offset: o}
				if len(f) == 5 {
					r.Key, r.Value = f[2], f[3]
				}
				m.mu.Lock()
				m.records = append(m.records, r)
				m.mu.Unlock()
			}
		}
	}()
	go func() {
		defer wg.Done()
		for sc := bufio.NewScanner(stderr); sc.Scan(); {
			line := sc.Text()
			m.mu.Lock()
			m.log = append(m.log, line)
			// "% Group g rebalanced (memberid m): assigned: t [0], t [1]"
			if _, list, ok := strings.Cut(line, "assigned: "); ok {
				m.assigned = nil
				for _, sm := range kcatPartitionRE.FindAllStringSubmatch(list, -1) {
					p, _ := strconv.Atoi(sm[1])
					m.assigned = append(m.assigned, int32(p))
				}
				slices.Sort(m.assigned)
			} else if strings.Contains(line, "revoked: ") {
				m.assigned = nil
			}
			m.mu.Unlock()
		}
	}()
	go func() { wg.Wait(); close(m.done) }()
	t.Cleanup(func() {
		if !m.stop() {
			m.mu.Lock()
			defer m.mu.Unlock()
			t.Logf("kcat member log:\n%s", strings.Join(m.log, "\n"))
		}
	})
	return m
}

// stop asks kcat to leave the group and exit (SIGTERM), killing it if it
// does not within a deadline. It reports whether kcat exited cleanly.
func (m *kcatMember) stop() bool {
	if m.cmd.ProcessState != nil {
		return true
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	clean := true
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		clean = false
		<-m.done
	}
	if err := m.cmd.Wait(); err != nil {
		clean = false
	}
	return clean
}

func (m *kcatMember) snapshot() ([]int32, []cliRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.assigned), slices.Clone(m.records)
}

func testKcatSplit(t *testing.T, n *kafkatest.Node, k *kcatRunner) {
	const topic, group = "kcat-split", "kcat-split-g"
	cliCreateTopic(t, n, topic, cliPartitions)
	a := k.startMember(t, group, topic)
	b := k.startMember(t, group, topic)
	assigned := func(m *kcatMember) func() []int32 {
		return func() []int32 { p, _ := m.snapshot(); return p }
	}
	cliCheckSplit(t, cliPartitions, assigned(a), assigned(b), func() {
		if !b.stop() {
			t.Errorf("kcat did not leave cleanly")
		}
	})
	// The remaining member consumes from every partition.
	values := cliBatch("after", cliResume)
	k.produce(t, topic, "", values)
	cliEventually(t, "the remaining member to consume every record", func() bool {
		_, got := a.snapshot()
		return len(got) >= len(values)
	})
	_, got := a.snapshot()
	cliCheckConsumed(t, values, got, nil, nil)
	if !a.stop() {
		t.Errorf("kcat did not leave cleanly")
	}
}

func testKcatIdempotent(t *testing.T, n *kafkatest.Node, k *kcatRunner) {
	const topic = "kcat-idempotent"
	cliCreateTopic(t, n, topic, 2)
	values := cliBatch("idem", cliIdempotent)
	// Small batches, so sequence numbers advance across several.
	k.produce(t, topic, "", values, "enable.idempotence=true", "batch.num.messages=5")
	got := k.consume(t, "kcat-idempotent-g", topic, len(values))
	cliCheckConsumed(t, values, got, nil, nil)
	cliCheckIdempotent(t, n, topic, 2)
}

func testKcatAcks(t *testing.T, n *kafkatest.Node, k *kcatRunner) {
	const topic = "kcat-acks"
	cliCreateTopic(t, n, topic, 2)
	var produced []string
	for _, acks := range []string{"0", "1", "all"} {
		values := cliBatch("acks"+acks, cliPerAcks)
		k.produce(t, topic, "", values, "acks="+acks)
		produced = append(produced, values...)
		cliWaitRecords(t, n, topic, 2, int64(len(produced)))
	}
	got := k.consume(t, "kcat-acks-g", topic, len(produced))
	cliCheckConsumed(t, produced, got, nil, nil)
}
