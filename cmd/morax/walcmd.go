package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/morax-dev/morax/wire/wal/client"
)

// endpointEnv overrides the default --endpoint of every wal subcommand.
const endpointEnv = "MORAX_WAL_ENDPOINT"

const walUsage = `Usage: morax wal <command> [flags] [arguments]

Work with WAL logs on a Morax node through its HTTP API.

Commands:
  create NAME            create a log (--config key=value, repeatable)
  append NAME [DATA...]  append entries: the arguments, or one per stdin line
  read NAME              print entries (--offset, --max-entries, --max-bytes, --wait)
  tail NAME              print entries as they are appended, until interrupted
  list                   list logs (--prefix, --kafka to include Kafka topics)
  describe NAME          show a log's offsets, size and creation time
  delete NAME            delete a log and its entries
  trim NAME OFFSET       drop the entries below OFFSET
  health                 check that the node answers

Flags every command takes (before or after its arguments):
  --endpoint URL   the node's WAL API (default $` + endpointEnv + ` or ` + client.DefaultEndpoint + `)
  --json           print JSON for scripts instead of text for people
  --timeout D      give up after D (default 30s; tail has none)

Entry data is text by default; --base64 makes append decode its inputs and
read/tail print base64. Run 'morax wal <command> -h' for a command's flags.
`

// walCmd is one invocation's shared state.
type walCmd struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	name           string // the subcommand, for messages
	endpoint       string
	json           bool
	b64            bool
	timeout        time.Duration
	c              *client.Client
}

// runWAL runs `morax wal ...` with args after "wal" and returns the exit
// status: 0 on success, 1 when the command failed, 2 on a usage error.
func runWAL(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	w := &walCmd{stdin: stdin, stdout: stdout, stderr: stderr}
	// Common flags may also come before the command: morax wal --json list.
	pre := flag.NewFlagSet("morax wal", flag.ContinueOnError)
	pre.SetOutput(io.Discard)
	w.commonFlags(pre)
	if err := pre.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, walUsage)
			return 0
		}
		fmt.Fprintf(stderr, "morax wal: %v\n\n%s", err, walUsage)
		return 2
	}
	rest := pre.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, walUsage)
		return 2
	}
	w.name, rest = rest[0], rest[1:]
	run, ok := map[string]func(context.Context, []string) int{
		"create":   w.create,
		"append":   w.append,
		"read":     w.read,
		"tail":     w.tail,
		"list":     w.list,
		"ls":       w.list,
		"describe": w.describe,
		"delete":   w.delete,
		"trim":     w.trim,
		"health":   w.health,
	}[w.name]
	if !ok {
		if w.name == "help" {
			fmt.Fprint(stdout, walUsage)
			return 0
		}
		fmt.Fprintf(stderr, "morax wal: unknown command %q\n\n%s", w.name, walUsage)
		return 2
	}
	return run(ctx, rest)
}

// commonFlags registers the flags every command takes. Registering them
// on the pre-command set and again on each command's set (with the values
// parsed so far as defaults) lets them go on either side of the command.
func (w *walCmd) commonFlags(fs *flag.FlagSet) {
	def := w.endpoint
	if def == "" {
		def = os.Getenv(endpointEnv)
	}
	if def == "" {
		def = client.DefaultEndpoint
	}
	timeout := w.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	fs.StringVar(&w.endpoint, "endpoint", def, "the node's WAL API `URL`")
	fs.BoolVar(&w.json, "json", w.json, "print JSON instead of text")
	fs.BoolVar(&w.b64, "base64", w.b64, "entry data is base64 (append input, read/tail output)")
	fs.DurationVar(&w.timeout, "timeout", timeout, "give up after this `duration`")
}

// parse parses a command's flags, which may be mixed with its arguments,
// and connects the client. It returns the positional arguments and, when
// they are not what the command needs, an exit status to return.
func (w *walCmd) parse(fs *flag.FlagSet, args []string, usage string, minArgs, maxArgs int) ([]string, int, bool) {
	w.commonFlags(fs)
	fs.SetOutput(w.stderr)
	fs.Usage = func() {
		fmt.Fprintf(w.stderr, "Usage: morax wal %s %s\n\nFlags:\n", w.name, usage)
		fs.PrintDefaults()
	}
	// Everything after "--" is an argument, even if it starts with "-".
	var rest []string
	for i, a := range args {
		if a == "--" {
			args, rest = args[:i], args[i+1:]
			break
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	pos = append(pos, rest...)
	if n := len(pos); n < minArgs || (maxArgs >= 0 && n > maxArgs) {
		fmt.Fprintf(w.stderr, "morax wal %s: want %s\n", w.name, usage)
		return nil, 2, false
	}
	c, err := client.New(w.endpoint, client.WithUserAgent("morax-cli"))
	if err != nil {
		fmt.Fprintf(w.stderr, "morax wal %s: %v\n", w.name, err)
		return nil, 2, false
	}
	w.c = c
	return pos, 0, true
}

// withTimeout bounds a command by --timeout plus extra (a long poll's wait).
func (w *walCmd) withTimeout(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	if w.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, w.timeout+extra)
}

// fail reports err and returns the failure status.
func (w *walCmd) fail(err error) int {
	// Client errors start with "morax wal:" already.
	fmt.Fprintf(w.stderr, "morax wal %s: %s\n", w.name, strings.TrimPrefix(err.Error(), "morax wal: "))
	return 1
}

// printJSON writes v as one line of JSON.
func (w *walCmd) printJSON(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return w.fail(err)
	}
	fmt.Fprintf(w.stdout, "%s\n", b)
	return 0
}

// entryText renders entry data for a person: as text when it is printable
// UTF-8 on one line, else as base64 with a "base64:" prefix so the two
// cannot be confused.
func (w *walCmd) entryText(data []byte) string {
	if w.b64 {
		return base64.StdEncoding.EncodeToString(data)
	}
	if utf8.Valid(data) && !strings.HasPrefix(string(data), "base64:") {
		printable := true
		for _, r := range string(data) {
			if !unicode.IsPrint(r) && r != ' ' && r != '\t' {
				printable = false
				break
			}
		}
		if printable {
			return string(data)
		}
	}
	return "base64:" + base64.StdEncoding.EncodeToString(data)
}

// jsonEntry is an entry as --json prints it: data (and key) base64, as on
// the wire.
type jsonEntry struct {
	Index int64  `json:"index"`
	Data  []byte `json:"data"`
	Key   []byte `json:"key,omitempty"`
}

func (w *walCmd) create(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	var config kvFlag
	fs.Var(&config, "config", "log setting `key=value` (Kafka topic config names, e.g. retention.ms=86400000); repeatable")
	pos, code, ok := w.parse(fs, args, "NAME [--config key=value]...", 1, 1)
	if !ok {
		return code
	}
	ctx, cancel := w.withTimeout(ctx, 0)
	defer cancel()
	var opts *client.CreateOptions
	if len(config) > 0 {
		opts = &client.CreateOptions{Config: config}
	}
	if err := w.c.Create(ctx, pos[0], opts); err != nil {
		return w.fail(err)
	}
	if w.json {
		return w.printJSON(map[string]string{"name": pos[0]})
	}
	fmt.Fprintf(w.stdout, "created log %s\n", pos[0])
	return 0
}

func (w *walCmd) append(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("append", flag.ContinueOnError)
	expected := fs.Int64("expected-offset", -1, "append only if the log ends at this `offset` (fencing); -1: unconditionally")
	batch := fs.Int("batch", 1000, "stdin lines sent per request, at most")
	batchBytes := fs.Int("batch-bytes", 4<<20, "stdin bytes sent per request, at most (an entry larger than this goes alone)")
	pos, code, ok := w.parse(fs, args, "NAME [DATA...]  (no DATA: one entry per stdin line)", 1, -1)
	if !ok {
		return code
	}
	name := pos[0]
	ctx, cancel := w.withTimeout(ctx, 0)
	defer cancel()
	decode := func(s string) ([]byte, error) {
		if w.b64 {
			return base64.StdEncoding.DecodeString(s)
		}
		return []byte(s), nil
	}
	total := client.Range{Start: -1}
	send := func(entries [][]byte) error {
		var r client.Range
		var err error
		if *expected >= 0 {
			r, err = w.c.AppendIf(ctx, name, entries, *expected)
			// Later batches of the same run must land right after this one.
			*expected = r.End
		} else {
			r, err = w.c.Append(ctx, name, entries)
		}
		if err != nil {
			return err
		}
		if total.Start < 0 {
			total.Start = r.Start
		}
		total.End = r.End
		return nil
	}
	if len(pos) > 1 {
		entries := make([][]byte, 0, len(pos)-1)
		for i, a := range pos[1:] {
			d, err := decode(a)
			if err != nil {
				return w.fail(fmt.Errorf("argument %d: %w", i+1, err))
			}
			entries = append(entries, d)
		}
		if err := send(entries); err != nil {
			return w.fail(err)
		}
	} else {
		if err := w.appendLines(decode, send, max(*batch, 1), max(*batchBytes, 1)); err != nil {
			return w.fail(err)
		}
		if total.Start < 0 {
			fmt.Fprintf(w.stderr, "morax wal append: no input; nothing appended\n")
			return 0
		}
	}
	if w.json {
		return w.printJSON(total)
	}
	fmt.Fprintf(w.stdout, "appended %d entries to %s at offsets %d to %d\n", total.Len(), name, total.Start, total.End-1)
	return 0
}

// appendLines sends stdin's lines as entries, in requests of at most batch
// lines and about batchBytes bytes. A final line without a newline counts;
// "\r\n" endings lose the "\r".
func (w *walCmd) appendLines(decode func(string) ([]byte, error), send func([][]byte) error, batch, batchBytes int) error {
	r := bufio.NewReaderSize(w.stdin, 64<<10)
	var entries [][]byte
	size, lineNo := 0, 0
	for {
		line, err := r.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read stdin: %w", err)
		}
		if line != "" {
			lineNo++
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			d, derr := decode(line)
			if derr != nil {
				return fmt.Errorf("stdin line %d: %w", lineNo, derr)
			}
			if len(entries) > 0 && (len(entries) >= batch || size+len(d) > batchBytes) {
				if serr := send(entries); serr != nil {
					return serr
				}
				entries, size = nil, 0
			}
			entries = append(entries, d)
			size += len(d)
		}
		if err != nil { // io.EOF
			break
		}
	}
	if len(entries) > 0 {
		return send(entries)
	}
	return nil
}

func (w *walCmd) read(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	offset := fs.Int64("offset", 0, "first `offset` to read")
	maxEntries := fs.Int("max-entries", 0, "at most this many entries (0: the server's byte limit decides)")
	maxBytes := fs.Int("max-bytes", 0, "about this many entry bytes at most (0: the server default, 1 MiB)")
	wait := fs.Duration("wait", 0, "at the end of the log, wait this long for an entry")
	partition := fs.Int("partition", 0, "partition, for Kafka topics")
	pos, code, ok := w.parse(fs, args, "NAME [--offset N] [--max-entries N] [--max-bytes N] [--wait D]", 1, 1)
	if !ok {
		return code
	}
	ctx, cancel := w.withTimeout(ctx, *wait)
	defer cancel()
	res, err := w.c.Read(ctx, pos[0], *offset, &client.ReadOptions{
		MaxEntries: *maxEntries, MaxBytes: *maxBytes, Wait: *wait, Partition: int32(*partition),
	})
	if err != nil {
		return w.fail(err)
	}
	if w.json {
		out := struct {
			Entries   []jsonEntry `json:"entries"`
			EndOffset int64       `json:"end_offset"`
		}{Entries: make([]jsonEntry, len(res.Entries)), EndOffset: res.EndOffset}
		for i, e := range res.Entries {
			out.Entries[i] = jsonEntry(e)
		}
		return w.printJSON(out)
	}
	for _, e := range res.Entries {
		fmt.Fprintf(w.stdout, "%d\t%s\n", e.Index, w.entryText(e.Data))
	}
	// The summary goes to stderr so stdout holds only entries.
	fmt.Fprintf(w.stderr, "%d entries; next offset %d, log ends at %d\n", len(res.Entries), res.Next(*offset), res.EndOffset)
	return 0
}

func (w *walCmd) tail(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	offset := fs.Int64("offset", -1, "first `offset` to print; -1: only entries appended from now on")
	partition := fs.Int("partition", 0, "partition, for Kafka topics")
	pos, code, ok := w.parse(fs, args, "NAME [--offset N]", 1, 1)
	if !ok {
		return code
	}
	opts := &client.TailOptions{Partition: int32(*partition), FromEnd: *offset < 0}
	for e, err := range w.c.Tail(ctx, pos[0], *offset, opts) {
		if err != nil {
			if ctx.Err() != nil {
				return 0 // interrupted: the normal way to stop a tail
			}
			return w.fail(err)
		}
		if w.json {
			if code := w.printJSON(jsonEntry(e)); code != 0 {
				return code
			}
			continue
		}
		fmt.Fprintf(w.stdout, "%d\t%s\n", e.Index, w.entryText(e.Data))
	}
	return 0
}

func (w *walCmd) list(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	prefix := fs.String("prefix", "", "only names starting with this")
	kafka := fs.Bool("kafka", false, "include Kafka topics")
	limit := fs.Int("limit", 0, "at most this many (0: all)")
	_, code, ok := w.parse(fs, args, "[--prefix P] [--kafka] [--limit N]", 0, 0)
	if !ok {
		return code
	}
	ctx, cancel := w.withTimeout(ctx, 0)
	defer cancel()
	logs := []client.LogInfo{}
	for l, err := range w.c.Logs(ctx, client.ListOptions{Prefix: *prefix, IncludeKafka: *kafka}) {
		if err != nil {
			return w.fail(err)
		}
		logs = append(logs, l)
		if *limit > 0 && len(logs) >= *limit {
			break
		}
	}
	if w.json {
		type item struct {
			Name       string    `json:"name"`
			Kind       string    `json:"kind"`
			Partitions int32     `json:"partitions"`
			CreatedAt  time.Time `json:"created_at"`
		}
		out := make([]item, len(logs))
		for i, l := range logs {
			out[i] = item{l.Name, l.Kind, l.Partitions, l.CreatedAt}
		}
		return w.printJSON(out)
	}
	if len(logs) == 0 {
		fmt.Fprintln(w.stderr, "no logs")
		return 0
	}
	tw := tabwriter.NewWriter(w.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tPARTITIONS\tCREATED")
	for _, l := range logs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", l.Name, l.Kind, l.Partitions, l.CreatedAt.Local().Format(time.DateTime))
	}
	if err := tw.Flush(); err != nil {
		return w.fail(err)
	}
	return 0
}

func (w *walCmd) describe(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("describe", flag.ContinueOnError)
	partition := fs.Int("partition", 0, "partition, for Kafka topics")
	pos, code, ok := w.parse(fs, args, "NAME", 1, 1)
	if !ok {
		return code
	}
	ctx, cancel := w.withTimeout(ctx, 0)
	defer cancel()
	info, err := w.c.DescribePartition(ctx, pos[0], int32(*partition))
	if err != nil {
		return w.fail(err)
	}
	if w.json {
		return w.printJSON(info)
	}
	fmt.Fprintf(w.stdout, "name:          %s\nkind:          %s\n", info.Name, info.Kind)
	if info.Partitions > 1 {
		fmt.Fprintf(w.stdout, "partition:     %d of %d\n", info.Partition, info.Partitions)
	}
	fmt.Fprintf(w.stdout, "start offset:  %d\nend offset:    %d\nentries:       %d\nbytes:         %d\ncreated:       %s\n",
		info.StartOffset, info.EndOffset, info.EndOffset-info.StartOffset, info.Bytes, info.CreatedAt.Local().Format(time.RFC3339))
	return 0
}

func (w *walCmd) delete(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	pos, code, ok := w.parse(fs, args, "NAME", 1, 1)
	if !ok {
		return code
	}
	ctx, cancel := w.withTimeout(ctx, 0)
	defer cancel()
	if err := w.c.Delete(ctx, pos[0]); err != nil {
		return w.fail(err)
	}
	if w.json {
		return w.printJSON(map[string]string{"name": pos[0]})
	}
	fmt.Fprintf(w.stdout, "deleted log %s\n", pos[0])
	return 0
}

func (w *walCmd) trim(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("trim", flag.ContinueOnError)
	pos, code, ok := w.parse(fs, args, "NAME OFFSET", 2, 2)
	if !ok {
		return code
	}
	offset, err := strconv.ParseInt(pos[1], 10, 64)
	if err != nil || offset < 0 {
		fmt.Fprintf(w.stderr, "morax wal trim: OFFSET %q: want a non-negative integer\n", pos[1])
		return 2
	}
	ctx, cancel := w.withTimeout(ctx, 0)
	defer cancel()
	start, err := w.c.Trim(ctx, pos[0], offset)
	if err != nil {
		return w.fail(err)
	}
	if w.json {
		return w.printJSON(map[string]int64{"start_offset": start})
	}
	fmt.Fprintf(w.stdout, "log %s now starts at offset %d\n", pos[0], start)
	return 0
}

func (w *walCmd) health(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	_, code, ok := w.parse(fs, args, "", 0, 0)
	if !ok {
		return code
	}
	ctx, cancel := w.withTimeout(ctx, 0)
	defer cancel()
	if err := w.c.Health(ctx); err != nil {
		return w.fail(err)
	}
	if w.json {
		return w.printJSON(map[string]string{"status": "OK"})
	}
	fmt.Fprintln(w.stdout, "OK")
	return 0
}

// kvFlag collects repeated key=value flags.
type kvFlag map[string]string

func (f *kvFlag) String() string { return fmt.Sprint(map[string]string(*f)) }

func (f *kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want key=value", s)
	}
	if *f == nil {
		*f = kvFlag{}
	}
	(*f)[k] = v
	return nil
}
