package loadgen

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Target is the kind of endpoint a run drives.
type Target string

// Targets.
const (
	// TargetKafka drives any Kafka-protocol broker with franz-go.
	TargetKafka Target = "kafka"
	// TargetWAL drives a Morax node's WAL HTTP API with its Go client.
	TargetWAL Target = "wal"
)

// Acks is the acknowledgement a Kafka producer waits for.
type Acks string

// Acknowledgement levels, named as Kafka's acks setting.
const (
	AcksAll    Acks = "all"
	AcksLeader Acks = "1"
	AcksNone   Acks = "0"
)

// ParseAcks accepts Kafka's spellings: all (or -1), 1, 0.
func ParseAcks(s string) (Acks, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "all", "-1":
		return AcksAll, nil
	case "1", "leader":
		return AcksLeader, nil
	case "0", "none":
		return AcksNone, nil
	}
	return "", fmt.Errorf("%w: acks %q: want all, 1 or 0", ErrInvalidConfig, s)
}

// Compressions a Kafka producer can use.
var compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// ParseCompression checks a codec name.
func ParseCompression(s string) (string, error) {
	c := strings.ToLower(strings.TrimSpace(s))
	for _, k := range compressions {
		if c == k {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: compression %q: want one of %s", ErrInvalidConfig, s, strings.Join(compressions, ", "))
}

// ErrInvalidConfig is wrapped by every Config validation error.
var ErrInvalidConfig = errors.New("invalid bench configuration")

// headerSize is the bytes every record value starts with: the run id (so
// a consumer ignores records of other runs) and the produce time (for the
// end-to-end latency). Records must be at least this big.
const headerSize = 16

// Config is one run's workload. Zero fields take the defaults of
// DefaultConfig when passed through Normalize.
type Config struct {
	// Target is kafka or wal.
	Target Target `json:"target"`
	// Brokers are the Kafka seed brokers (host:port), for TargetKafka.
	Brokers []string `json:"brokers,omitempty"`
	// Endpoint is the WAL API base URL, for TargetWAL.
	Endpoint string `json:"endpoint,omitempty"`
	// Topic is the Kafka topic, or the WAL log name (with Partitions > 1,
	// logs named Topic-0 ... Topic-N-1, since a WAL log has one partition).
	Topic string `json:"topic"`
	// RecordSize is the bytes of each record value (key not included).
	RecordSize int `json:"record_size"`
	// Partitions is the topic's partition count when it is created (an
	// existing topic keeps its own), or the number of WAL logs.
	Partitions int `json:"partitions"`
	// Producers is the number of producing clients (Kafka) or concurrent
	// appenders (WAL).
	Producers int `json:"producers"`
	// Consumers is the number of consuming clients; 0 produces only.
	Consumers int `json:"consumers"`
	// Acks is what Kafka producers wait for; WAL appends always wait for
	// durability, so only AcksAll is valid with TargetWAL.
	Acks Acks `json:"acks"`
	// Linger is the Kafka producer's linger (franz-go's default is 10ms);
	// ignored by WAL, whose client does not batch.
	Linger time.Duration `json:"linger"`
	// BatchBytes is the Kafka producer's maximum batch size, and the
	// payload size of one WAL append request.
	BatchBytes int `json:"batch_bytes"`
	// Duration bounds the produce phase when Records is 0.
	Duration time.Duration `json:"duration"`
	// Records, when positive, is how many records to produce in all,
	// instead of producing for Duration.
	Records int64 `json:"records,omitempty"`
	// Rate limits production to this many records per second in all;
	// 0 is unlimited.
	Rate float64 `json:"rate,omitempty"`
	// Keys gives each record a key (from a space of 1024), so the default
	// partitioner hashes keys; without keys franz-go's sticky partitioner
	// fills one partition's batch at a time.
	Keys bool `json:"keys"`
	// Compression is the Kafka producer's codec; WAL accepts only none.
	Compression string `json:"compression"`
	// CreateTopic creates the topic (or WAL logs) when missing.
	CreateTopic bool `json:"create_topic"`
	// DrainTimeout bounds the wait, after producing stops, for outstanding
	// acknowledgements and for consumers to catch up.
	DrainTimeout time.Duration `json:"drain_timeout"`
	// MaxBufferedRecords bounds the records a Kafka producer holds unacked;
	// when reached, producing blocks (franz-go's backpressure).
	MaxBufferedRecords int `json:"max_buffered_records"`
	// Warmup leaves the records sent in the run's first Warmup out of the
	// latency figures (they still count for throughput): connections,
	// metadata and partition starts land there, and in a 10 s run they
	// alone can make the p99.
	Warmup time.Duration `json:"warmup,omitempty"`
}

// DefaultConfig is the workload of `morax bench` with no flags.
func DefaultConfig() Config {
	return Config{
		Target:             TargetKafka,
		Brokers:            []string{"127.0.0.1:9092"},
		Endpoint:           "http://127.0.0.1:8848",
		Topic:              "morax-bench",
		RecordSize:         1024,
		Partitions:         3,
		Producers:          1,
		Consumers:          1,
		Acks:               AcksAll,
		Linger:             10 * time.Millisecond,
		BatchBytes:         1_000_000,
		Duration:           10 * time.Second,
		Compression:        "none",
		CreateTopic:        true,
		DrainTimeout:       30 * time.Second,
		MaxBufferedRecords: 10000,
	}
}

// Validate reports every problem with c at once, each wrapping
// ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	switch c.Target {
	case TargetKafka:
		if len(c.Brokers) == 0 {
			bad("kafka target needs at least one broker")
		}
	case TargetWAL:
		if c.Endpoint == "" {
			bad("wal target needs an endpoint")
		}
		if c.Acks != AcksAll {
			bad("acks %s: WAL appends always wait for durability; only acks=all applies", c.Acks)
		}
		if c.Compression != "none" {
			bad("compression %s: the WAL API does not compress; use none", c.Compression)
		}
	default:
		bad("target %q: want kafka or wal", c.Target)
	}
	if c.Topic == "" {
		bad("empty topic")
	}
	if c.RecordSize < headerSize {
		bad("record size %d: at least %d bytes (the run id and timestamp every record carries)", c.RecordSize, headerSize)
	}
	if c.Partitions < 1 {
		bad("partitions %d: at least 1", c.Partitions)
	}
	if c.Producers < 1 {
		bad("producers %d: at least 1", c.Producers)
	}
	if c.Consumers < 0 {
		bad("consumers %d: not negative", c.Consumers)
	}
	if _, err := ParseAcks(string(c.Acks)); err != nil {
		errs = append(errs, err)
	}
	if _, err := ParseCompression(c.Compression); err != nil {
		errs = append(errs, err)
	}
	if c.Linger < 0 {
		bad("linger %s: not negative", c.Linger)
	}
	if c.BatchBytes < c.RecordSize {
		bad("batch size %d: at least the record size %d", c.BatchBytes, c.RecordSize)
	}
	if c.Records < 0 {
		bad("records %d: not negative", c.Records)
	}
	if c.Records == 0 && c.Duration <= 0 {
		bad("set a positive duration or record count")
	}
	if c.Warmup < 0 || (c.Records == 0 && c.Duration > 0 && c.Warmup >= c.Duration) {
		bad("warmup %s: not negative, and shorter than the duration %s", c.Warmup, c.Duration)
	}
	if c.Rate < 0 {
		bad("rate %g: not negative", c.Rate)
	}
	if c.DrainTimeout <= 0 {
		bad("drain timeout %s: positive", c.DrainTimeout)
	}
	if c.MaxBufferedRecords < 1 {
		bad("max buffered records %d: at least 1", c.MaxBufferedRecords)
	}
	return errors.Join(errs...)
}

// logNames are the WAL logs a run uses: Topic, or Topic-i per partition.
func (c Config) logNames() []string {
	if c.Partitions <= 1 {
		return []string{c.Topic}
	}
	names := make([]string, c.Partitions)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", c.Topic, i)
	}
	return names
}
