package kafka_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// kafkajsDir holds the kafkajs driver, its package.json and lock file; its
// node_modules (git-ignored) comes from `npm ci`.
const kafkajsDir = "testdata/kafkajs"

// TestClientKafkaJS drives a node with kafkajs (node.js) through
// testdata/kafkajs/driver.js, on both deployments. It runs `npm ci` there
// first when node_modules is missing.
func TestClientKafkaJS(t *testing.T) {
	node := cliTool(t, "node")
	kafkajsInstall(t)
	for _, b := range kafkatest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			n := cliNode(t, b)
			d := &kafkajsDriver{node: node, addr: n.Addr}
			t.Run("CodecsGroupCommitResume", func(t *testing.T) { testKafkaJSCodecs(t, n, d) })
			t.Run("SplitAndRebalance", func(t *testing.T) { testKafkaJSSplit(t, n, d) })
			t.Run("Idempotent", func(t *testing.T) { testKafkaJSIdempotent(t, n, d) })
			t.Run("Acks", func(t *testing.T) { testKafkaJSAcks(t, n, d) })
		})
	}
}

// kafkajsInstall runs `npm ci` in the driver's directory unless its
// node_modules is already there.
func kafkajsInstall(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(kafkajsDir, "node_modules", "kafkajs", "package.json")); err == nil {
		return
	}
	npm := cliTool(t, "npm")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = kafkajsDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", kafkajsDir, err, out)
	}
}

type kafkajsDriver struct{ node, addr string }

// kafkajsLine is one JSON line the driver prints.
type kafkajsLine struct {
	P        *int32  `json:"p"`
	O        int64   `json:"o"`
	K        string  `json:"k"`
	V        string  `json:"v"`
	H        string  `json:"h"`
	Assigned []int32 `json:"assigned"`
	Sent     int     `json:"sent"`
	Done     bool    `json:"done"`
	Left     bool    `json:"left"`
	Created  bool    `json:"created"`
}

func (l kafkajsLine) record() cliRecord {
	return cliRecord{Partition: *l.P, Offset: l.O, Key: l.K, Value: l.V, Header: l.H}
}

func kafkajsParse(t *testing.T, line string) kafkajsLine {
	t.Helper()
	var l kafkajsLine
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		t.Fatalf("driver printed %q: %v", line, err)
	}
	return l
}

// run runs one driver command to its end, with stdin, and returns its
// output lines.
func (d *kafkajsDriver) run(t *testing.T, stdin string, args ...string) []kafkajsLine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.node, append([]string{"driver.js", d.addr}, args...)...)
	cmd.Dir = kafkajsDir
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node driver.js %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var lines []kafkajsLine
	for line := range strings.Lines(string(out)) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, kafkajsParse(t, line))
		}
	}
	return lines
}

func (d *kafkajsDriver) create(t *testing.T, topic string, partitions int) {
	t.Helper()
	if out := d.run(t, "", topic, "create", strconv.Itoa(partitions)); len(out) != 1 || !out[0].Created {
		t.Fatalf("create %s: %+v", topic, out)
	}
}

// kafkajsBatch is a run of records one producer sends with one codec.
type kafkajsBatch struct {
	codec, header string // header "": none
	values        []string
}

// produce sends the batches' values, keyed by cliKey, in order with one
// producer.
func (d *kafkajsDriver) produce(t *testing.T, topic, acks string, idempotent bool, batches ...kafkajsBatch) {
	t.Helper()
	var in strings.Builder
	sent := 0
	for _, b := range batches {
		header := cmp.Or(b.header, "-")
		for _, v := range b.values {
			in.WriteString(b.codec + "\t" + header + "\t" + cliKeyOf(v) + "\t" + v + "\n")
		}
		sent += len(b.values)
	}
	idem := "0"
	if idempotent {
		idem = "1"
	}
	out := d.run(t, in.String(), topic, "produce", acks, idem)
	if len(out) != 1 || out[0].Sent != sent {
		t.Fatalf("produce to %s: %+v", topic, out)
	}
}

// consume reads want records in group, commits them and leaves.
func (d *kafkajsDriver) consume(t *testing.T, group, topic string, want int) []cliRecord {
	t.Helper()
	out := d.run(t, "", topic, "consume", group, strconv.Itoa(want))
	if len(out) == 0 || !out[len(out)-1].Done {
		t.Fatalf("consume from %s did not finish: %+v", topic, out)
	}
	var got []cliRecord
	for _, l := range out[:len(out)-1] {
		got = append(got, l.record())
	}
	return got
}

func testKafkaJSCodecs(t *testing.T, n *kafkatest.Node, d *kafkajsDriver) {
	const topic, group = "kafkajs-codecs", "kafkajs-codecs-g"
	d.create(t, topic, cliPartitions)
	var batches []kafkajsBatch
	for _, c := range cliCodecs {
		batches = append(batches, kafkajsBatch{c, c, cliBatch(c, cliPerCodec)})
	}
	d.produce(t, topic, "-1", false, batches...)
	produced := cliCodecBatches()
	got := d.consume(t, group, topic, len(produced))
	cliCheckConsumed(t, produced, got, nil, nil)
	cliCheckHeaders(t, got, cliCodecOf)
	cliCheckStoredCodecs(t, n, topic, cliPartitions, cliCodecs)
	committed := cliCheckCommitted(t, n, group, topic, cliPartitions)

	// The next consumer in the group resumes at the committed offsets.
	second := cliBatch("resume", cliResume)
	d.produce(t, topic, "-1", false, kafkajsBatch{"none", "", second})
	got = d.consume(t, group, topic, len(second))
	cliCheckConsumed(t, second, got, committed, nil)
	cliCheckCommitted(t, n, group, topic, cliPartitions)
}

// kafkajsMember is a driver left running as a group member.
type kafkajsMember struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when stdout and stderr are drained
	stderr bytes.Buffer  // written by exec's copier until done

	mu       sync.Mutex
	assigned []int32
	records  []cliRecord
	left     bool
}

func (d *kafkajsDriver) startMember(t *testing.T, group, topic string) *kafkajsMember {
	t.Helper()
	m := &kafkajsMember{done: make(chan struct{})}
	m.cmd = exec.Command(d.node, "driver.js", d.addr, topic, "member", group)
	m.cmd.Dir = kafkajsDir
	m.cmd.Stderr = &m.stderr
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start driver: %v", err)
	}
	go func() {
		defer close(m.done)
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			var l kafkajsLine
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			m.mu.Lock()
			switch {
			case l.Assigned != nil:
				m.assigned = l.Assigned
			case l.P != nil:
				m.records = append(m.records, l.record())
			case l.Left:
				m.left = true
			}
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if !m.stop() {
			t.Logf("kafkajs member log:\n%s", m.stderr.String())
		}
	})
	return m
}

// stop asks the member to leave the group and exit (SIGTERM), killing it
// if it does not within a deadline. It reports whether it left cleanly.
func (m *kafkajsMember) stop() bool {
	if m.cmd.ProcessState != nil {
		return m.cmd.ProcessState.Success()
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	err := m.cmd.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return err == nil && m.left
}

func (m *kafkajsMember) snapshot() ([]int32, []cliRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.assigned), slices.Clone(m.records)
}

func testKafkaJSSplit(t *testing.T, n *kafkatest.Node, d *kafkajsDriver) {
	const topic, group = "kafkajs-split", "kafkajs-split-g"
	d.create(t, topic, cliPartitions)
	a := d.startMember(t, group, topic)
	b := d.startMember(t, group, topic)
	assigned := func(m *kafkajsMember) func() []int32 {
		return func() []int32 { p, _ := m.snapshot(); return p }
	}
	cliCheckSplit(t, cliPartitions, assigned(a), assigned(b), func() {
		if !b.stop() {
			t.Errorf("kafkajs member did not leave cleanly:\n%s", b.stderr.String())
		}
	})
	// The remaining member consumes from every partition.
	values := cliBatch("after", cliResume)
	d.produce(t, topic, "-1", false, kafkajsBatch{"none", "", values})
	cliEventually(t, "the remaining member to consume every record", func() bool {
		_, got := a.snapshot()
		return len(got) >= len(values)
	})
	_, got := a.snapshot()
	cliCheckConsumed(t, values, got, nil, nil)
	if !a.stop() {
		t.Errorf("kafkajs member did not leave cleanly:\n%s", a.stderr.String())
	}
}

func testKafkaJSIdempotent(t *testing.T, n *kafkatest.Node, d *kafkajsDriver) {
	const topic = "kafkajs-idempotent"
	d.create(t, topic, 2)
	values := cliBatch("idem", cliIdempotent)
	d.produce(t, topic, "-1", true, kafkajsBatch{"none", "", values})
	got := d.consume(t, "kafkajs-idempotent-g", topic, len(values))
	cliCheckConsumed(t, values, got, nil, nil)
	cliCheckIdempotent(t, n, topic, 2)
}

func testKafkaJSAcks(t *testing.T, n *kafkatest.Node, d *kafkajsDriver) {
	const topic = "kafkajs-acks"
	d.create(t, topic, 2)
	var produced []string
	for _, acks := range []string{"0", "1", "-1"} {
		values := cliBatch("acks"+strings.Replace(acks, "-1", "all", 1), cliPerAcks)
		d.produce(t, topic, acks, false, kafkajsBatch{"none", "", values})
		produced = append(produced, values...)
		cliWaitRecords(t, n, topic, 2, int64(len(produced)))
	}
	got := d.consume(t, "kafkajs-acks-g", topic, len(produced))
	cliCheckConsumed(t, produced, got, nil, nil)
}
