package config

import (
	"fmt"
	"log/slog"
	"reflect"
)

// Redacted returns a copy of c with its secrets replaced by their printable
// forms: "REDACTED" for storage.secret_access_key and the password inside
// server.meta.service_url. Printing, logging and JSON-encoding c are already
// safe (see Secret and SecretURL); Redacted is for TOML encoding, which
// bypasses MarshalText for strings, and for handing a configuration to code
// that should not be able to Reveal the secrets, such as a debug endpoint.
func (c Config) Redacted() Config {
	c.Storage.SecretAccessKey = Secret(c.Storage.SecretAccessKey.String())
	c.Server.Meta.ServiceURL = SecretURL(c.Server.Meta.ServiceURL.String())
	return c
}

// LogValue implements slog.LogValuer: the configuration logs as nested
// groups named by TOML keys (server.kafka_broker.listen_addr=...), with
// secrets redacted and durations as strings.
func (c Config) LogValue() slog.Value { return groupValue(reflect.ValueOf(c)) }

func groupValue(v reflect.Value) slog.Value {
	t := v.Type()
	attrs := make([]slog.Attr, 0, t.NumField())
	for i := range t.NumField() {
		name := tomlName(t.Field(i))
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			attrs = append(attrs, slog.Attr{Key: name, Value: groupValue(f)})
			continue
		}
		attrs = append(attrs, slog.Attr{Key: name, Value: leafValue(f)})
	}
	return slog.GroupValue(attrs...)
}

func leafValue(v reflect.Value) slog.Value {
	switch x := v.Interface().(type) {
	case Secret:
		return x.LogValue()
	case SecretURL:
		return x.LogValue()
	case Duration:
		return slog.StringValue(x.String())
	case string:
		return slog.StringValue(x)
	case bool:
		return slog.BoolValue(x)
	case int64:
		return slog.Int64Value(x)
	case int32:
		return slog.Int64Value(int64(x))
	default:
		// A new field type must decide here how it logs, so a future secret
		// type cannot slip through as its raw value.
		panic(fmt.Sprintf("config: no log form for %s", v.Type()))
	}
}
