package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/internal/loadgen"
	"github.com/morax-dev/morax/persistence/objstore"
)

const benchUsage = `Usage:
  morax bench [flags]                       drive a produce/consume load and print a summary
  morax bench raw-s3 [flags]                measure raw object PUT throughput of an S3 store
  morax bench raw-pg [flags]                measure raw PostgreSQL single-row commit rate
  morax bench report [flags] RESULT.json... compare saved --json results as markdown tables

Run 'morax bench <mode> -h' for a mode's flags; 'morax bench -h' for the load flags.
`

// metricsAuto and metricsOff are the special values of --metrics-url.
const (
	metricsAuto = "auto"
	metricsOff  = "none"
)

// runBench runs `morax bench ...` and returns the exit status: 0 when the
// run completed (errors during it are in its summary), 1 when it could not
// run, 2 on a usage error.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "raw-s3":
			return runBenchRawS3(ctx, args[1:], stdout, stderr)
		case "raw-pg":
			return runBenchRawPG(ctx, args[1:], stdout, stderr)
		case "report":
			return runBenchReport(args[1:], stdout, stderr)
		case "help":
			fmt.Fprint(stdout, benchUsage)
			return 0
		}
	}
	o, err := parseBenchFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "morax bench: %v\n", err)
		return 2
	}
	return o.run(ctx, stdout, stderr)
}

// benchOpts is the parsed command line of a load run.
type benchOpts struct {
	cfg        loadgen.Config
	json       bool
	metricsURL string
	label      string
	interval   time.Duration
}

// sizeFlag is a byte size flag accepting 1024, 1KiB, 4MiB, 1GiB or the
// decimal kB, MB, GB.
type sizeFlag struct{ p *int }

func (s sizeFlag) String() string {
	if s.p == nil {
		return "0"
	}
	return strconv.Itoa(*s.p)
}

func (s sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s.p = n
	return nil
}

// parseSize reads a byte size with an optional unit.
func parseSize(v string) (int, error) {
	t := strings.TrimSpace(v)
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"kB", 1000}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KiB, MiB, GiB, kB, MB or GB", v)
	}
	if n > (1<<31-1)/mult {
		return 0, fmt.Errorf("size %q: too large", v)
	}
	return n * mult, nil
}

// listFlag is a comma-separated list.
type listFlag struct{ p *[]string }

func (l listFlag) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l listFlag) Set(v string) error {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	*l.p = out
	return nil
}

// parseBenchFlags parses the load run's flags into a checked Config.
func parseBenchFlags(args []string, stderr io.Writer) (*benchOpts, error) {
	o := &benchOpts{cfg: loadgen.DefaultConfig()}
	c := &o.cfg
	fs := flag.NewFlagSet("morax bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage+"\nLoad flags:\n")
		fs.PrintDefaults()
	}
	target := fs.String("target", string(c.Target), "kafka (any Kafka-protocol broker) or wal (a Morax WAL endpoint)")
	fs.Var(listFlag{&c.Brokers}, "brokers", "Kafka seed brokers, comma-separated")
	fs.StringVar(&c.Endpoint, "endpoint", c.Endpoint, "Morax WAL endpoint (the wal target, and where --metrics-url auto scrapes)")
	fs.StringVar(&c.Topic, "topic", c.Topic, "topic (kafka) or log name (wal; TOPIC-i per partition when --partitions > 1)")
	fs.Var(sizeFlag{&c.RecordSize}, "record-size", "bytes of each record value (e.g. 1024, 1KiB)")
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions of the topic when created (wal: number of logs)")
	fs.IntVar(&c.Producers, "producers", c.Producers, "producing clients (wal: concurrent appenders)")
	fs.IntVar(&c.Consumers, "consumers", c.Consumers, "consuming clients, 0 to only produce (wal: readers)")
	acks := fs.String("acks", string(c.Acks), "producer acks: all, 1 or 0 (wal: all only)")
	fs.DurationVar(&c.Linger, "linger", c.Linger, "producer linger (kafka)")
	fs.Var(sizeFlag{&c.BatchBytes}, "batch-size", "max producer batch bytes (kafka); bytes of entries per append request (wal)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to produce (unless --records)")
	fs.Int64Var(&c.Records, "records", 0, "produce exactly this many records instead of for --duration")
	fs.Float64Var(&c.Rate, "rate", 0, "limit production to this many records/s in all (0: unlimited)")
	fs.DurationVar(&c.Warmup, "warmup", 0, "leave records sent in this first part of the run out of the latency figures")
	fs.BoolVar(&c.Keys, "keys", c.Keys, "give records keys (spread by key hash) instead of none (sticky partitioning)")
	compression := fs.String("compression", c.Compression, "none, gzip, snappy, lz4 or zstd (kafka)")
	fs.BoolVar(&c.CreateTopic, "create-topic", c.CreateTopic, "create the topic or logs if missing")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "after producing, how long to wait for acknowledgements and consumers")
	fs.IntVar(&c.MaxBufferedRecords, "max-buffered", c.MaxBufferedRecords, "records a Kafka producer may hold unacknowledged before blocking")
	fs.BoolVar(&o.json, "json", false, "print the summary as JSON on stdout")
	fs.StringVar(&o.metricsURL, "metrics-url", metricsAuto, "Morax metrics to scrape for broker cost ("+metricsAuto+": ENDPOINT/metrics; "+metricsOff+": skip)")
	fs.StringVar(&o.label, "label", "", "name of this run in saved results (morax bench report)")
	fs.DurationVar(&o.interval, "interval", time.Second, "progress report interval")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only; see morax bench -h)", fs.Arg(0))
	}
	var errs []error
	c.Target = loadgen.Target(*target)
	if a, err := loadgen.ParseAcks(*acks); err != nil {
		errs = append(errs, err)
	} else {
		c.Acks = a
	}
	if k, err := loadgen.ParseCompression(*compression); err != nil {
		errs = append(errs, err)
	} else {
		c.Compression = k
	}
	if o.interval <= 0 {
		errs = append(errs, errors.New("--interval: positive"))
	}
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

// resolveMetricsURL turns --metrics-url into a URL, or "" for none.
func (o *benchOpts) resolveMetricsURL() (string, error) {
	switch o.metricsURL {
	case metricsOff, "":
		return "", nil
	case metricsAuto:
		return loadgen.MetricsURLFor(o.cfg.Endpoint)
	}
	return o.metricsURL, nil
}

func (o *benchOpts) run(ctx context.Context, stdout, stderr io.Writer) int {
	murl, err := o.resolveMetricsURL()
	if err != nil {
		fmt.Fprintf(stderr, "morax bench: %v\n", err)
		return 2
	}
	pr := newProgressPrinter(stderr)
	res, err := loadgen.Run(ctx, o.cfg, loadgen.Options{
		Progress:         pr.print,
		ProgressInterval: o.interval,
		MetricsURL:       murl,
		Label:            o.label,
	})
	pr.done()
	if err != nil {
		fmt.Fprintf(stderr, "morax bench: %v\n", err)
		return 1
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "morax bench: %v\n", err)
			return 1
		}
		return 0
	}
	if err := res.WriteText(stdout); err != nil {
		fmt.Fprintf(stderr, "morax bench: %v\n", err)
		return 1
	}
	return 0
}

// progressPrinter shows live progress: one line rewritten in place on a
// terminal, a plain line per report otherwise (logs, CI).
type progressPrinter struct {
	w        io.Writer
	terminal bool
	printed  bool
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	return &progressPrinter{w: w, terminal: isTerminal(w)}
}

// isTerminal reports whether w is a character device (a terminal), with
// the standard library only.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progressPrinter) print(pr loadgen.Progress) {
	line := fmt.Sprintf("%6.1fs %-9s produce %9.0f rec/s %8.2f MiB/s p99 %7.2f ms | consume %9.0f rec/s %8.2f MiB/s e2e p99 %7.2f ms | errors %d",
		pr.Elapsed.Seconds(), pr.Phase, pr.ProduceRecordsPerSec, pr.ProduceMiBPerSec, msOf(pr.ProduceP99),
		pr.ConsumeRecordsPerSec, pr.ConsumeMiBPerSec, msOf(pr.EndToEndP99), pr.Errors)
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.printed = true
}

// done ends the rewritten line so the summary starts on its own.
func (p *progressPrinter) done() {
	if p.terminal && p.printed {
		fmt.Fprintln(p.w)
	}
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rawFlags are the flags both raw modes share.
type rawFlags struct {
	configFile string
	json       bool
	label      string
	opts       loadgen.RawOptions
}

func (r *rawFlags) register(fs *flag.FlagSet, concurrency int) {
	fs.StringVar(&r.configFile, "config-file", "", "a node's TOML config, to measure its backends (MORAX_* variables apply)")
	fs.BoolVar(&r.json, "json", false, "print the result as JSON on stdout")
	fs.StringVar(&r.label, "label", "", "name of this run in saved results")
	fs.DurationVar(&r.opts.Duration, "duration", 10*time.Second, "how long to measure")
	fs.IntVar(&r.opts.Concurrency, "concurrency", concurrency, "concurrent uploads or connections")
}

func (r *rawFlags) print(res *loadgen.RawResult, stdout, stderr io.Writer) int {
	res.Label = r.label
	var err error
	if r.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		unit := "commits/s"
		if res.Kind == loadgen.KindRawS3 {
			unit = fmt.Sprintf("PUTs/s (%.1f MiB/s, %d KiB objects)", res.MiBPerSec, res.Options.ObjectSize>>10)
		}
		_, err = fmt.Fprintf(stdout, "%s %s: %d ops in %.1fs with %d concurrent: %.1f %s\nlatency ms: p50 %.2f p99 %.2f p99.9 %.2f max %.2f\n",
			res.Kind, res.Target, res.Ops, res.Seconds, res.Options.Concurrency, res.OpsPerSec, unit,
			res.Latency.P50Ms, res.Latency.P99Ms, res.Latency.P999Ms, res.Latency.MaxMs)
		for _, e := range res.Errors {
			fmt.Fprintf(stdout, "errors %s %s: %d (e.g. %s)\n", e.Side, e.Kind, e.Count, e.Example)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "morax bench: %v\n", err)
		return 1
	}
	return 0
}

func runBenchRawS3(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("morax bench raw-s3", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var r rawFlags
	r.register(fs, 8)
	r.opts.ObjectSize = 4 << 20
	fs.Var(sizeFlag{&r.opts.ObjectSize}, "object-size", "bytes of each object")
	endpoint := fs.String("s3-endpoint", "", "S3 endpoint URL (overrides the config's)")
	bucket := fs.String("bucket", "", "bucket (overrides the config's)")
	region := fs.String("region", "", "region (overrides the config's; default us-east-1)")
	accessKey := fs.String("access-key", "", "access key id (overrides the config's; default: AWS credential chain)")
	secretKey := fs.String("secret-key", "", "secret access key (overrides the config's)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := config.Load(r.configFile, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "morax bench raw-s3: invalid configuration:\n%v\n", err)
		return 2
	}
	st := cfg.Storage
	sc := objstore.S3Config{
		Bucket: st.Bucket, Region: st.Region, Endpoint: st.Endpoint, AccessKeyID: st.AccessKeyID,
		SecretAccessKey: st.SecretAccessKey.Reveal(), PathStyle: st.PathStyle, Prefix: st.Prefix,
		RequestTimeout: st.RequestTimeout.Duration(),
	}
	if st.Scheme != "s3" {
		// An embedded config has no S3 settings; the flags must give them.
		sc = objstore.S3Config{PathStyle: true}
	}
	for _, o := range []struct {
		flag string
		dst  *string
	}{{*endpoint, &sc.Endpoint}, {*bucket, &sc.Bucket}, {*region, &sc.Region}, {*accessKey, &sc.AccessKeyID}, {*secretKey, &sc.SecretAccessKey}} {
		if o.flag != "" {
			*o.dst = o.flag
		}
	}
	if sc.Region == "" {
		sc.Region = "us-east-1"
	}
	if sc.Bucket == "" {
		fmt.Fprintln(stderr, "morax bench raw-s3: no bucket: pass --config-file with an s3 [storage] section, or --s3-endpoint and --bucket")
		return 2
	}
	store, err := objstore.NewS3(ctx, sc)
	if err != nil {
		fmt.Fprintf(stderr, "morax bench raw-s3: %v\n", err)
		return 1
	}
	defer store.Close()
	target := sc.Endpoint
	if target == "" {
		target = "s3"
	}
	res, err := loadgen.RawPut(ctx, store, target+"/"+sc.Bucket, r.opts)
	if err != nil && res == nil {
		fmt.Fprintf(stderr, "morax bench raw-s3: %v\n", err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "morax bench raw-s3: cleanup: %v\n", err)
	}
	return r.print(res, stdout, stderr)
}

func runBenchRawPG(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("morax bench raw-pg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var r rawFlags
	r.register(fs, 1)
	pgURL := fs.String("pg-url", "", "postgres:// URL (overrides the config's server.meta.service_url)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	url := *pgURL
	if url == "" {
		cfg, err := config.Load(r.configFile, os.Environ())
		if err != nil {
			fmt.Fprintf(stderr, "morax bench raw-pg: invalid configuration:\n%v\n", err)
			return 2
		}
		url = cfg.Server.Meta.ServiceURL.Reveal()
	}
	if url == "" {
		fmt.Fprintln(stderr, "morax bench raw-pg: no PostgreSQL: pass --config-file with server.meta.service_url, or --pg-url")
		return 2
	}
	res, err := loadgen.RawCommit(ctx, url, r.opts)
	if err != nil && res == nil {
		fmt.Fprintf(stderr, "morax bench raw-pg: %v\n", err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "morax bench raw-pg: cleanup: %v\n", err)
	}
	return r.print(res, stdout, stderr)
}

func runBenchReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("morax bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reference := fs.String("reference", "kfake", "label the ratio columns compare against")
	var vsRaw []string
	fs.Var(listFlag{&vsRaw}, "vs-raw", "labels to compare with the raw backend limits, comma-separated")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "morax bench report: name the result files (morax bench --json output)")
		return 2
	}
	var rep loadgen.Report
	if err := rep.AddFiles(fs.Args()...); err != nil {
		fmt.Fprintf(stderr, "morax bench report: %v\n", err)
		return 1
	}
	if err := rep.Markdown(stdout, *reference, vsRaw); err != nil {
		fmt.Fprintf(stderr, "morax bench report: %v\n", err)
		return 1
	}
	return 0
}
