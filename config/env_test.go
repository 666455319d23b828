package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestEnvPrecedence(t *testing.T) {
	file := writeFile(t, "[partition]\nlinger = \"7ms\"\n")
	env := []string{"MORAX_PARTITION_LINGER=9ms"}
	for _, tc := range []struct {
		name string
		path string
		env  []string
		want time.Duration
	}{
		{"default", "", nil, defaultLinger},
		{"file over default", file, nil, 7 * time.Millisecond},
		{"env over file", file, env, 9 * time.Millisecond},
		{"env over default", "", env, 9 * time.Millisecond},
		{"last env entry wins", file, append([]string{"MORAX_PARTITION_LINGER=1ms"}, env...), 9 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.path, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Partition.Linger.Duration(); got != tc.want {
				t.Errorf("linger = %s, want %s", got, tc.want)
			}
		})
	}
}

// Every variable EnvVars names sets its key, parsed as its type.
func TestEveryEnvVarSetsItsKey(t *testing.T) {
	for i, l := range schema.leaves {
		t.Run(l.env, func(t *testing.T) {
			c := Default()
			field := reflect.ValueOf(&c).Elem().FieldByIndex(l.index)
			var text string
			var want any
			switch {
			case l.typ == durationType:
				text, want = fmt.Sprintf("%ds", i+1), Duration(time.Duration(i+1)*time.Second)
			case l.typ.Kind() == reflect.String:
				text = fmt.Sprintf("value-%d", i)
				want = reflect.ValueOf(text).Convert(l.typ).Interface()
			case l.typ.Kind() == reflect.Bool:
				want = !field.Bool()
				text = fmt.Sprint(want)
			default:
				text = fmt.Sprint(1000 + i)
				want = reflect.ValueOf(int64(1000 + i)).Convert(l.typ).Interface()
			}
			if errs := applyEnv(&c, []string{l.env + "=" + text}, sources{}); len(errs) > 0 {
				t.Fatalf("applyEnv: %v", asError(errs))
			}
			if got := field.Interface(); got != want {
				t.Errorf("%s=%s set %s to %v, want %v", l.env, text, l.path, got, want)
			}
		})
	}
}

func TestEnvSecretsAndEmptyValues(t *testing.T) {
	file := writeFile(t, "[server.meta]\nservice_url = \"postgres://a:b@db/meta\"\n")
	c, err := Load(file, []string{
		"MORAX_SERVER_META_SERVICE_URL=", // back to embedded
		"MORAX_STORAGE_SCHEME=s3",
		"MORAX_STORAGE_BUCKET=morax",
		"MORAX_STORAGE_REGION=us-east-1",
		"MORAX_STORAGE_ACCESS_KEY_ID=ak",
		"MORAX_STORAGE_SECRET_ACCESS_KEY=sk=with=equals",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Embedded() {
		t.Errorf("empty MORAX_SERVER_META_SERVICE_URL did not clear service_url: %s", c.Server.Meta.ServiceURL)
	}
	if got := c.Storage.SecretAccessKey.Reveal(); got != "sk=with=equals" {
		t.Errorf("secret = %q; a value may contain '='", got)
	}
}

func TestEnvBadValues(t *testing.T) {
	_, err := Load("", []string{
		"MORAX_PARTITION_LINGER=fast",
		"MORAX_PARTITION_FLUSH_BYTES=4MiB",
		"MORAX_STORAGE_PATH_STYLE=maybe",
		"MORAX_SERVER_KAFKA_BROKER_DEFAULT_PARTITIONS=9999999999",
		"MORAX_SERVER_KAFKA_BROKER_LISTEN_ADDR=abc",
		"MORAX_SERVER_META_SERVICE_URL=mysql://u:hunter2@db/x",
		"MORAX_STORAGE_BUCKT=morax",
	})
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Load = %v, want *ValidationError", err)
	}
	wants := []string{
		`env MORAX_PARTITION_LINGER: partition.linger: "fast" is not a duration`,
		`env MORAX_PARTITION_FLUSH_BYTES: partition.flush_bytes: "4MiB" is not a decimal integer`,
		`env MORAX_STORAGE_PATH_STYLE: storage.path_style: "maybe" is not a boolean`,
		`env MORAX_SERVER_KAFKA_BROKER_DEFAULT_PARTITIONS: server.kafka_broker.default_partitions: 9999999999 does not fit in a 32-bit integer`,
		`env MORAX_SERVER_KAFKA_BROKER_LISTEN_ADDR: server.kafka_broker.listen_addr: "abc": missing port`,
		`env MORAX_SERVER_META_SERVICE_URL: server.meta.service_url: mysql://u:REDACTED@db/x: must be a postgres://`,
		`env MORAX_STORAGE_BUCKT: not a configuration variable (did you mean MORAX_STORAGE_BUCKET?)`,
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q", w)
		}
	}
	if len(verr.Errors) != len(wants) {
		t.Errorf("got %d problems, want %d", len(verr.Errors), len(wants))
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Error("error shows the password")
	}
	if t.Failed() {
		t.Logf("error:\n%v", err)
	}
}

func TestEnvIgnoresNonConfigVariables(t *testing.T) {
	c, err := Load("", []string{
		"PATH=/usr/bin",
		"NOT_AN_ASSIGNMENT",
		"MORAX_TEST_PG_URL=postgres://x",
		"MORAX_TEST_S3_SECRET_KEY=x",
		"MORAX_DEV_STATE=/tmp/x",
		"MORAX_TOOLS_CACHE=/tmp/y",
		"MORAX_REQUIRE_INTEGRATION=1",
		"MORAX_PG_BIN=/usr/lib/postgresql/15/bin",
		"morax_data_dir=/lower/case/is/another/variable",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c != Default() {
		t.Errorf("non-config variables changed the config: %+v", c)
	}
}

func TestEnvVars(t *testing.T) {
	names := EnvVars()
	if len(names) != len(schema.leaves) {
		t.Fatalf("EnvVars has %d names for %d keys", len(names), len(schema.leaves))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("%s listed twice", n)
		}
		seen[n] = true
		if !regexp.MustCompile(`^MORAX_[A-Z0-9_]+$`).MatchString(n) {
			t.Errorf("%s is not an upper-case MORAX_ name", n)
		}
		if ignoredEnv(n) {
			t.Errorf("%s would be ignored as a harness variable", n)
		}
	}
	for _, n := range []string{
		"MORAX_SERVER_META_SERVICE_URL",
		"MORAX_STORAGE_SECRET_ACCESS_KEY",
		"MORAX_SERVER_KAFKA_BROKER_LISTEN_ADDR",
		"MORAX_PARTITION_LINGER",
		"MORAX_DATA_DIR",
		"MORAX_TELEMETRY_LOG_LEVEL",
	} {
		if !seen[n] {
			t.Errorf("EnvVars lacks %s", n)
		}
	}
	names[0] = "changed"
	if EnvVars()[0] == "changed" {
		t.Error("EnvVars returns the package's own slice")
	}
}

// The table in doc.go is written by hand for godoc; it must list exactly
// the keys and variables the code derives, in order.
func TestDocTableMatchesSchema(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^//\t([a-z_.]+) +(MORAX_[A-Z0-9_]+)$`)
	var got []string
	for _, m := range row.FindAllStringSubmatch(string(src), -1) {
		got = append(got, m[1]+" "+m[2])
	}
	var want []string
	for _, l := range schema.leaves {
		want = append(want, l.path+" "+l.env)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("doc.go table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
