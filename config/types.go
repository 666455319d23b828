package config

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// mask replaces secret text wherever a configuration is printed, logged or
// encoded.
const mask = "REDACTED"

// Duration is a time.Duration written in TOML and in environment variables
// as a string such as "5ms", "30s" or "1h" (time.ParseDuration syntax).
// TOML has no duration type, and a bare integer would leave the unit to
// guesswork, so integers are rejected.
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String formats d the way time.Duration does, which ParseDuration reads back.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a duration string, so an encoded Config decodes
// back to the same value.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// parseDuration is shared by the TOML decoder and environment overrides so
// both report a bad duration in the same words.
func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (want a string such as \"500ms\", \"30s\" or \"10m\")", s)
	}
	return v, nil
}

// Secret is a string that must never reach a log, an error message or a
// printed configuration: fmt verbs, slog and encoding/json all see
// "REDACTED" in its place. Code that needs the real value calls Reveal,
// which keeps every use of the secret easy to find.
//
// go-toml encodes string-kinded values without asking MarshalText, so a
// configuration written back out as TOML must go through Config.Redacted.
type Secret string

// Reveal returns the secret itself; pass it only to the client that needs it.
func (s Secret) Reveal() string { return string(s) }

// String returns "REDACTED", or "" when the secret is empty so an unset
// secret stays visibly unset.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return mask
}

// Format makes every fmt verb (%v, %+v, %#v, %s, %q, %x, ...) print the
// redacted form, including when the Secret is a field of a printed struct.
func (s Secret) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s.String()) }

// MarshalText redacts the secret in encoding/json and slog's JSON output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// SecretURL is a URL that may carry a password, such as a PostgreSQL
// connection URL. Printing, logging or encoding it shows the URL with the
// password (in the user info or in a password query parameter) replaced by
// "REDACTED", so the host and database stay visible for debugging. Code that
// connects calls Reveal. As with Secret, encode Config.Redacted to write a
// configuration out as TOML.
type SecretURL string

// Reveal returns the URL with its password; pass it only to the client that
// needs it.
func (u SecretURL) Reveal() string { return string(u) }

// String returns the URL with any password replaced by "REDACTED". Text that
// does not parse as a URL with a scheme and host (a keyword/value DSN such as
// "host=x password=y", say) is masked whole, because there is no telling
// where a password in it starts.
func (u SecretURL) String() string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(string(u))
	if err != nil || p.Scheme == "" || p.Opaque != "" {
		return mask
	}
	if p.User != nil {
		if _, has := p.User.Password(); has {
			p.User = url.UserPassword(p.User.Username(), mask)
		}
	}
	if p.RawQuery != "" {
		q := p.Query()
		for k := range q {
			// pgx reads password and sslpassword from the query; mask any
			// parameter that names a password rather than chase the list.
			if strings.Contains(strings.ToLower(k), "password") {
				q[k] = []string{mask}
			}
		}
		p.RawQuery = q.Encode()
	}
	return p.String()
}

// Format makes every fmt verb print the redacted URL, including when the
// SecretURL is a field of a printed struct.
func (u SecretURL) Format(f fmt.State, verb rune) { formatRedacted(f, verb, u.String()) }

// MarshalText redacts the password in encoding/json and slog's JSON output.
func (u SecretURL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// LogValue implements slog.LogValuer.
func (u SecretURL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// formatRedacted writes an already redacted string for any fmt verb; only
// quoting verbs change its shape, so %q and %#v still look like strings.
func formatRedacted(f fmt.State, verb rune, s string) {
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		s = strconv.Quote(s)
	}
	_, _ = io.WriteString(f, s)
}
