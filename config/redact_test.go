package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

const (
	secretKey  = "sk-SECRET-123"
	urlPass    = "pw-SECRET-456"
	queryPass  = "qp-SECRET-789"
	secretMark = "SECRET"
)

func secretConfig() Config {
	c := validS3()
	c.Storage.SecretAccessKey = secretKey
	c.Server.Meta.ServiceURL = SecretURL("postgres://morax:" + urlPass + "@db.internal:5432/meta?sslmode=disable&password=" + queryPass)
	return c
}

// Every way a configuration or part of it gets printed, logged or encoded
// must leave the secrets out.
func TestSecretsNeverPrinted(t *testing.T) {
	c := secretConfig()
	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outputs["cfg "+verb] = fmt.Sprintf(verb, c)
		outputs["&cfg "+verb] = fmt.Sprintf(verb, &c)
		outputs["storage "+verb] = fmt.Sprintf(verb, c.Storage)
		outputs["meta "+verb] = fmt.Sprintf(verb, c.Server.Meta)
		outputs["secret "+verb] = fmt.Sprintf(verb, c.Storage.SecretAccessKey)
		outputs["url "+verb] = fmt.Sprintf(verb, c.Server.Meta.ServiceURL)
	}
	outputs["Sprint"] = fmt.Sprint(c, c.Storage.SecretAccessKey, c.Server.Meta.ServiceURL)
	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(newHandler(&buf))
		log.Info("config", "config", c)
		log.Info("parts", "storage", c.Storage, "meta", c.Server.Meta, "server", c.Server)
		log.Info("secrets", "key", c.Storage.SecretAccessKey, "url", c.Server.Meta.ServiceURL)
		log.Info("pointer", "config", &c)
		outputs[name] = buf.String()
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(j)
	// go-toml ignores MarshalText on string kinds; Redacted is the way.
	tm, err := toml.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	outputs["toml"] = string(tm)
	outputs["Redacted %+v"] = fmt.Sprintf("%+v", c.Redacted())
	r := c.Redacted()
	outputs["Redacted Reveal"] = r.Storage.SecretAccessKey.Reveal() + " " + r.Server.Meta.ServiceURL.Reveal()

	for name, out := range outputs {
		if strings.Contains(out, secretMark) {
			t.Errorf("%s shows a secret: %s", name, out)
		}
	}
	// The redacted forms still say what is configured.
	for _, name := range []string{"cfg %+v", "slog text", "slog json", "json", "toml", "Redacted Reveal"} {
		if out := outputs[name]; !strings.Contains(out, "db.internal:5432") || !strings.Contains(out, "REDACTED") {
			t.Errorf("%s lost the visible parts: %s", name, out)
		}
	}
	if !strings.Contains(outputs["slog text"], "config.server.kafka_broker.listen_addr=127.0.0.1:9092") {
		t.Errorf("slog text does not group by key path: %s", outputs["slog text"])
	}
	if !strings.Contains(outputs["slog json"], `"linger":"2ms"`) {
		t.Errorf("slog json does not log durations as strings: %s", outputs["slog json"])
	}
	// Redaction is only of the printed form.
	if c.Storage.SecretAccessKey.Reveal() != secretKey || !strings.Contains(c.Server.Meta.ServiceURL.Reveal(), urlPass) {
		t.Error("Reveal does not return the secrets")
	}
}

func TestSecretURLString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"postgres://morax@db/meta", "postgres://morax@db/meta"},
		{"postgres://morax:pw@db:5432/meta?sslmode=disable", "postgres://morax:REDACTED@db:5432/meta?sslmode=disable"},
		{"postgres://db/meta?password=pw&sslpassword=pw2&user=u", "postgres://db/meta?password=REDACTED&sslpassword=REDACTED&user=u"},
		{"postgres://:pw@db/meta", "postgres://:REDACTED@db/meta"},
		{"host=db password=pw", "REDACTED"},
		{"postgres:opaque:pw", "REDACTED"},
		{"postgres://morax:p%zz@db/meta", "REDACTED"},
	} {
		if got := SecretURL(tc.in).String(); got != tc.want {
			t.Errorf("SecretURL(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Secret("").String(); got != "" {
		t.Errorf("empty Secret prints %q, want \"\"", got)
	}
	if got := fmt.Sprintf("%q|%#v", Secret("x"), Secret("x")); got != `"REDACTED"|"REDACTED"` {
		t.Errorf("quoted Secret = %s", got)
	}
}

// Encoding a configuration and decoding it again gives the same values, so
// Duration's text form and the toml tags agree.
func TestDefaultRoundTripsThroughTOML(t *testing.T) {
	b, err := toml.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(writeFile(t, string(b)), nil)
	if err != nil {
		t.Fatalf("Load of encoded Default: %v\n%s", err, b)
	}
	if c != Default() {
		t.Errorf("round trip = %+v, want Default()", c)
	}
}
