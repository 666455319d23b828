package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/morax-dev/morax/wire/wal/client"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.RecordSize = 8
	c.Partitions = 0
	c.Producers = 0
	c.Acks = "2"
	c.Compression = "brotli"
	c.Duration = 0
	c.Rate = -1
	err := c.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"record size 8", "partitions 0", "producers 0", `acks "2"`, `compression "brotli"`, "duration or record count", "rate -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestValidateWAL(t *testing.T) {
	c := DefaultConfig()
	c.Target = TargetWAL
	if err := c.Validate(); err != nil {
		t.Fatalf("default WAL config: %v", err)
	}
	c.Acks, c.Compression = AcksLeader, "zstd"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "acks") || !strings.Contains(err.Error(), "compression") {
		t.Errorf("WAL with acks=1 and zstd: %v", err)
	}
	c = DefaultConfig()
	c.Target = "amqp"
	if err := c.Validate(); err == nil {
		t.Error("unknown target accepted")
	}
}

func TestParseAcksAndCompression(t *testing.T) {
	for in, want := range map[string]Acks{"all": AcksAll, "-1": AcksAll, "ALL": AcksAll, "1": AcksLeader, "0": AcksNone} {
		if got, err := ParseAcks(in); err != nil || got != want {
			t.Errorf("ParseAcks(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseAcks("2"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ParseAcks(2): %v", err)
	}
	if got, err := ParseCompression("ZSTD"); err != nil || got != "zstd" {
		t.Errorf("ParseCompression(ZSTD) = %q, %v", got, err)
	}
	if _, err := ParseCompression("brotli"); err == nil {
		t.Error("brotli accepted")
	}
}

func TestLogNames(t *testing.T) {
	c := DefaultConfig()
	c.Topic, c.Partitions = "t", 1
	if got := c.logNames(); len(got) != 1 || got[0] != "t" {
		t.Errorf("one partition: %q", got)
	}
	c.Partitions = 3
	if got := strings.Join(c.logNames(), ","); got != "t-0,t-1,t-2" {
		t.Errorf("three partitions: %q", got)
	}
}

func TestPlanAndPacer(t *testing.T) {
	p := plan{quota: 3}
	if !p.more(2) || p.more(3) {
		t.Error("quota plan")
	}
	p = plan{quota: -1, deadline: time.Now().Add(-time.Second)}
	if p.more(0) {
		t.Error("deadline plan past its deadline")
	}
	// An unlimited pacer never waits; a limited one schedules the n-th
	// record n/rate after its start (checked without timing: the due
	// counter).
	pc := newPacer(0)
	for range 1000 {
		if err := pc.wait(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
	}
	pc = newPacer(1e9)
	if err := pc.wait(t.Context(), 5); err != nil || pc.n != 5 {
		t.Errorf("pacer n %d, err %v", pc.n, err)
	}
}

func TestErrorKind(t *testing.T) {
	for err, want := range map[error]string{
		errors.New("boom"): "other",
		fmt.Errorf("produce: %w", kerr.NotLeaderForPartition): "kafka NOT_LEADER_FOR_PARTITION",
		&client.APIError{Code: client.CodeTooManyRequests}:    "wal TooManyRequests",
		&client.StatusError{Status: 502}:                      "http 502",
		fmt.Errorf("x: %w", kgo.ErrRecordTimeout):             "record delivery timeout",
		context.DeadlineExceeded:                              "timeout",
	} {
		if k := ErrorKind(err); k != want {
			t.Errorf("ErrorKind(%v) = %q, want %q", err, k, want)
		}
	}
	var e errorCounter
	e.add(errors.New("a"), 3)
	e.add(errors.New("b"), 2)
	got := e.list("produce")
	if len(got) != 1 || got[0].Count != 5 || got[0].Example != "a" || e.total.Load() != 5 {
		t.Errorf("counter list %+v", got)
	}
}
