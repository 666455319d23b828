package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// ignoredEnvPrefixes are MORAX_ variables that belong to the test harness and
// dev scripts, not to the broker; everything else starting with MORAX_ must
// name a key, so a misspelt override fails loudly instead of being ignored.
var ignoredEnvPrefixes = [...]string{
	"MORAX_TEST_",
	"MORAX_DEV_",
	"MORAX_TOOLS_",
}

// ignoredEnvNames are whole names ignored for the same reason.
var ignoredEnvNames = [...]string{
	"MORAX_REQUIRE_INTEGRATION",
	"MORAX_PG_BIN",
}

func ignoredEnv(name string) bool {
	for _, p := range ignoredEnvPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, n := range ignoredEnvNames {
		if name == n {
			return true
		}
	}
	return false
}

// EnvVars lists every environment variable that overrides a key, in the
// order of the package documentation's table.
func EnvVars() []string {
	names := make([]string, len(schema.leaves))
	for i, l := range schema.leaves {
		names[i] = l.env
	}
	return names
}

// applyEnv sets the keys named by MORAX_ variables in env ("NAME=value"
// strings, as os.Environ returns) and records each one's source. A later
// entry for the same name wins, as it does for a shell. It returns a problem
// for every variable that names no key or holds a value of the wrong type;
// such a variable leaves the key as it was.
func applyEnv(c *Config, env []string, src sources) []FieldError {
	var errs []FieldError
	root := reflect.ValueOf(c).Elem()
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) || ignoredEnv(name) {
			continue
		}
		source := "env " + name
		l, ok := schema.byEnv[name]
		if !ok {
			msg := "not a configuration variable"
			if s := suggestEnv(name); s != "" {
				msg += " (did you mean " + s + "?)"
			}
			errs = append(errs, FieldError{Source: source, Msg: msg})
			continue
		}
		if err := setText(root.FieldByIndex(l.index), val); err != nil {
			errs = append(errs, FieldError{Source: source, Path: l.path, Msg: err.Error()})
			continue
		}
		src[l.path] = source
	}
	return errs
}

// setText parses s into a leaf field the way its TOML value would be read.
func setText(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (want true or false)", s)
		}
		v.SetBool(b)
	case v.CanInt():
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if errors.Is(err, strconv.ErrRange) {
			return fmt.Errorf("%s does not fit in a %d-bit integer", s, v.Type().Bits())
		}
		if err != nil {
			return fmt.Errorf("%q is not a decimal integer", s)
		}
		v.SetInt(n)
	default:
		// buildSchema admits no other kinds.
		panic(fmt.Sprintf("config: no text form for %s", v.Type()))
	}
	return nil
}

// suggestEnv returns the variable name closest to a misspelt one, or "".
func suggestEnv(name string) string {
	best, bestDist := "", 4
	for _, l := range schema.leaves {
		if d := editDistance(name, l.env); d < bestDist {
			best, bestDist = l.env, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, used only to
// suggest the key a typo meant.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
