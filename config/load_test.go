package config

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// expectations reads the "# want: " and "# deny: " comment lines of a bad
// testdata file: substrings its error must, and must not, contain.
func expectations(t *testing.T, path string) (wants, denies []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if w, ok := strings.CutPrefix(line, "# want: "); ok {
			wants = append(wants, w)
		}
		if d, ok := strings.CutPrefix(line, "# deny: "); ok {
			denies = append(denies, d)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return wants, denies
}

func TestLoadBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad testdata files (%v)", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			wants, denies := expectations(t, path)
			if len(wants) == 0 {
				t.Fatal("file has no # want: lines")
			}
			_, err := Load(path, nil)
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Load = %v, want a *ValidationError", err)
			}
			msg := err.Error()
			for _, w := range wants {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q", w)
				}
			}
			// One problem per want line: nothing missing, nothing extra.
			if len(verr.Errors) != len(wants) {
				t.Errorf("got %d problems, want %d", len(verr.Errors), len(wants))
			}
			for _, d := range denies {
				if strings.Contains(msg, d) {
					t.Errorf("error contains %q, which must not be shown", d)
				}
			}
			if t.Failed() {
				t.Logf("error:\n%s", msg)
			}
		})
	}
}

func TestLoadGoodFiles(t *testing.T) {
	checks := map[string]func(t *testing.T, c Config){
		"minimal.toml": func(t *testing.T, c Config) {
			want := Default()
			want.DataDir = "./var/morax"
			if c != want {
				t.Errorf("got %+v, want defaults with data_dir set", c)
			}
			if !c.Embedded() {
				t.Error("minimal config is not embedded")
			}
		},
		"full-s3-pg.toml": func(t *testing.T, c Config) {
			if c.Embedded() {
				t.Error("config with service_url is embedded")
			}
			if c.Server.Meta.ServiceURL.Reveal() != "postgresql://morax:pg-pass-1@db.internal:5432/morax_meta?sslmode=require" {
				t.Errorf("service_url = %q", c.Server.Meta.ServiceURL.Reveal())
			}
			if c.Storage.SecretAccessKey.Reveal() != "s3-secret-1" {
				t.Errorf("secret_access_key = %q", c.Storage.SecretAccessKey.Reveal())
			}
			if c.Server.KafkaBroker.MaxFrameBytes != 104857600 || c.Server.KafkaBroker.DefaultPartitions != 6 {
				t.Errorf("kafka_broker = %+v", c.Server.KafkaBroker)
			}
			if c.Partition.Linger.Duration() != 10*time.Millisecond {
				t.Errorf("linger = %s, want the file's 10ms", c.Partition.Linger)
			}
			if c.KafkaAdvertised() != "node-1.morax.internal:9092" {
				t.Errorf("KafkaAdvertised = %q", c.KafkaAdvertised())
			}
			if c.Telemetry.Metrics.Enabled || c.Telemetry.Log.Format != LogFormatJSON {
				t.Errorf("telemetry = %+v", c.Telemetry)
			}
			if c.Group.InitialRebalanceDelay != 0 || c.Group.MaxSize != 1000 || c.Group.MaxSessionTimeout.Duration() != 10*time.Minute {
				t.Errorf("group = %+v, want the file's values (a 0s delay included)", c.Group)
			}
			if c.Server.ShutdownTimeout.Duration() != 15*time.Second || c.Cluster.PollInterval.Duration() != 500*time.Millisecond {
				t.Errorf("shutdown_timeout = %s, poll_interval = %s", c.Server.ShutdownTimeout, c.Cluster.PollInterval)
			}
			if l := c.Limits; l.MaxPartitionsPerTopic != 1000 || l.MaxNodePartitions != 8000 || l.CreateBurst != 40 {
				t.Errorf("limits = %+v, want the file's values", l)
			}
		},
		"fs-only.toml": func(t *testing.T, c Config) {
			if c.Storage.Scheme != SchemeFS || c.ObjectsDir() != "/mnt/objects" {
				t.Errorf("storage = %+v, ObjectsDir = %q", c.Storage, c.ObjectsDir())
			}
			if c.Telemetry.Log.Level != "debug" {
				t.Errorf("inline table not decoded: %+v", c.Telemetry.Log)
			}
			if c.Partition.Linger.Duration() != time.Millisecond {
				t.Errorf("linger = %s", c.Partition.Linger)
			}
		},
	}
	files, err := filepath.Glob("testdata/good/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good testdata files (%v)", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := Load(path, nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			check, ok := checks[filepath.Base(path)]
			if !ok {
				t.Fatal("no checks for this file; add some to TestLoadGoodFiles")
			}
			check(t, c)
		})
	}
}

// The good examples are the reference for the keys, so together they must
// set every one: full-s3-pg.toml all but storage.dir, which only fs-only.toml
// can set.
func TestGoodFilesSetEveryKey(t *testing.T) {
	src := sources{}
	for _, path := range []string{"testdata/good/full-s3-pg.toml", "testdata/good/fs-only.toml"} {
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg := Default()
		if errs, _ := decodeFile(path, doc, &cfg, src); len(errs) > 0 {
			t.Fatalf("decode: %v", asError(errs))
		}
	}
	for _, l := range schema.leaves {
		if src[l.path] == "" {
			t.Errorf("no good testdata file sets %s", l.path)
		}
	}
}

func TestDevConfig(t *testing.T) {
	c, err := Load("../dev/config.toml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Embedded() {
		t.Error("dev config uses the embedded metadata store")
	}
	if got := c.Server.Meta.ServiceURL.Reveal(); got != "postgres://morax:secret@127.0.0.1:5432/morax_meta?sslmode=disable" {
		t.Errorf("service_url = %q", got)
	}
	s := c.Storage
	if s.Scheme != SchemeS3 || s.Bucket != "morax" || s.Endpoint != "http://127.0.0.1:9000" ||
		s.AccessKeyID != "minioadmin" || s.SecretAccessKey.Reveal() != "minioadmin" || !s.PathStyle {
		t.Errorf("storage = %+v", s)
	}
	if c.DataDir != "/tmp/morax-dev/node" {
		t.Errorf("data_dir = %q", c.DataDir)
	}
}

func TestLoadWithoutFileIsDefault(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != Default() {
		t.Errorf("Load(\"\", nil) = %+v, want Default()", c)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadEmptyFileIsDefault(t *testing.T) {
	path := writeFile(t, "")
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != Default() {
		t.Errorf("got %+v, want Default()", c)
	}
}

// With S3 each flush is a PUT, so an unset linger gets the longer default;
// a linger set anywhere is kept.
func TestS3LingerDefault(t *testing.T) {
	s3 := []string{"MORAX_STORAGE_SCHEME=s3", "MORAX_STORAGE_BUCKET=b-1", "MORAX_STORAGE_REGION=r"}
	c, err := Load("", s3)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Partition.Linger.Duration(); got != defaultS3Linger {
		t.Errorf("s3 linger = %s, want %s", got, defaultS3Linger)
	}
	c, err = Load("", append(s3, "MORAX_PARTITION_LINGER=3ms"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Partition.Linger.Duration(); got != 3*time.Millisecond {
		t.Errorf("env linger = %s, want 3ms", got)
	}
	c, err = Load(writeFile(t, "[partition]\nlinger = \"2ms\"\n"), s3)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Partition.Linger.Duration(); got != 2*time.Millisecond {
		t.Errorf("file linger = %s, want 2ms", got)
	}
}

// Keys inside an inline table, dotted keys and quoted keys all get full
// paths and the position of the offending key.
func TestUnknownKeyPaths(t *testing.T) {
	doc := strings.Join([]string{
		`storage.bukket = "x"`,
		`[server]`,
		`kafka_broker = { listen_addr = "127.0.0.1:1", nope = 1 }`,
		`[server."wal_broker"]`,
		`"max wait" = "1s"`,
	}, "\n")
	_, err := Load(writeFile(t, doc), nil)
	for _, want := range []string{
		":1:1: storage.bukket: unknown key (did you mean storage.bucket?)",
		":3:47: server.kafka_broker.nope: unknown key",
		":5:1: server.wal_broker.max wait: unknown key",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}

// When decoding stops early the index stands in for strict decoding, so the
// two must find the same unknown keys.
func TestIndexFindsTheDecodersUnknownKeys(t *testing.T) {
	docs := map[string]string{
		"unknown-keys": "",
		"inline and dotted": strings.Join([]string{
			`storage.bukket = "x"`,
			`[server]`,
			`kafka_broker = { listen_addr = "127.0.0.1:1", nope = 1 }`,
			`[nope.deeper]`,
			`x = 1`,
			`[telemetry.log]`,
			`colour = true`,
		}, "\n"),
	}
	b, err := os.ReadFile("testdata/bad/unknown-keys.toml")
	if err != nil {
		t.Fatal(err)
	}
	docs["unknown-keys"] = string(b)
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			ix := indexDocument([]byte(doc))
			var fromIndex []string
			for _, fe := range ix.unknownKeys("f") {
				fromIndex = append(fromIndex, fe.Path)
			}
			cfg := Default()
			errs, fatal := decodeFile("f", []byte(doc), &cfg, sources{})
			if fatal {
				t.Fatalf("decode stopped: %v", asError(errs))
			}
			var fromDecoder []string
			for _, fe := range errs {
				if strings.HasPrefix(fe.Msg, "unknown") {
					fromDecoder = append(fromDecoder, fe.Path)
				}
			}
			slices.Sort(fromIndex)
			slices.Sort(fromDecoder)
			if !slices.Equal(fromIndex, fromDecoder) || len(fromIndex) == 0 {
				t.Errorf("index found %q, decoder found %q", fromIndex, fromDecoder)
			}
		})
	}
}

func writeFile(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "morax.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
