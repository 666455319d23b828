package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Load builds a node's configuration: Default(), then the TOML file at path
// (none when path is ""), then the MORAX_ variables in env ("NAME=value"
// strings; pass os.Environ()), then validation.
//
// Problems come back together as one *ValidationError, each with its key
// path and, where there is one, the file:line:col or environment variable
// that set it: unknown keys, bad environment variables and every failed check
// in one pass. The exception is a file that does not parse or holds a value
// of the wrong TOML type (a string where an integer belongs): decoding stops
// there, so that one problem is reported alone, with its line and column. A
// file that cannot be read is reported as the wrapped *fs.PathError.
func Load(path string, env []string) (Config, error) {
	cfg := Default()
	src := sources{}
	var errs []FieldError
	if path != "" {
		doc, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		fileErrs, fatal := decodeFile(path, doc, &cfg, src)
		if fatal {
			return Config{}, asError(fileErrs)
		}
		errs = append(errs, fileErrs...)
	}
	errs = append(errs, applyEnv(&cfg, env, src)...)
	if cfg.Storage.Scheme == SchemeS3 && src["partition.linger"] == "" {
		cfg.Partition.Linger = Duration(defaultS3Linger)
	}
	errs = append(errs, cfg.validate(src)...)
	if err := asError(errs); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decodeFile decodes doc strictly over cfg and records where each key was set.
// fatal means decoding stopped early (syntax or type error), so cfg is only
// partly filled and must not be validated or used.
func decodeFile(name string, doc []byte, cfg *Config, src sources) (errs []FieldError, fatal bool) {
	ix := indexDocument(doc)
	err := toml.NewDecoder(bytes.NewReader(doc)).DisallowUnknownFields().Decode(cfg)
	var strict *toml.StrictMissingError
	var de *toml.DecodeError
	switch {
	case err == nil:
	case errors.As(err, &strict):
		// Unknown keys do not stop the decoder: every known key is set, so
		// the caller can go on to report everything else as well.
		for i := range strict.Errors {
			errs = append(errs, ix.unknownKey(name, &strict.Errors[i]))
		}
	case errors.As(err, &de):
		return []FieldError{ix.decodeProblem(name, de)}, true
	default:
		return []FieldError{{Source: name, Msg: err.Error()}}, true
	}
	for _, l := range schema.leaves {
		pos, ok := ix.keys[l.path]
		if !ok {
			continue
		}
		src[l.path] = pos.in(name)
		// go-toml stores an integer straight into an integer-kinded
		// Duration, which would read "linger = 5" as 5ns; catch every value
		// the decoder accepted but the key's type does not.
		if kind, ok := ix.kinds[l.path]; ok && !compatible(kind, &l) {
			if vpos, ok := ix.values[l.path]; ok {
				pos = vpos
			}
			errs = append(errs, FieldError{Path: l.path, Source: pos.in(name),
				Msg: fmt.Sprintf("want %s, got %s", l.describe(), kindName(kind))})
		}
	}
	return errs, false
}

// position is a 1-based line and column in a TOML document.
type position struct{ line, col int }

func (p position) in(file string) string { return fmt.Sprintf("%s:%d:%d", file, p.line, p.col) }

// docIndex records where each key of a TOML document is written. The decoder
// reports positions and, for keys inside inline tables, only the last part
// of a key path; the index turns positions back into full paths, gives
// validation errors a line to point at, and knows each value's TOML type for
// type errors that say what was found instead.
type docIndex struct {
	keys   map[string]position      // key path -> where its (first) key is written
	at     map[position]string      // position of a key part or a value -> key path
	kinds  map[string]unstable.Kind // key path -> kind of the value assigned to it
	values map[string]position      // key path -> where its value is written
	tables map[string]bool          // key paths opened by [table] headers
}

// indexDocument walks doc with go-toml's parser. A syntax error ends the walk
// early; the decoder reports it.
func indexDocument(doc []byte) *docIndex {
	ix := &docIndex{
		keys:   map[string]position{},
		at:     map[position]string{},
		kinds:  map[string]unstable.Kind{},
		values: map[string]position{},
		tables: map[string]bool{},
	}
	var p unstable.Parser
	p.Reset(doc)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = ix.keyParts(&p, e.Key(), nil, true)
		case unstable.KeyValue:
			ix.keyValue(&p, e, table)
		}
	}
	return ix
}

// keyParts records each prefix of a dotted key under parent and returns the
// full key path as parts.
func (ix *docIndex) keyParts(p *unstable.Parser, it unstable.Iterator, parent []string, table bool) []string {
	parts := append([]string(nil), parent...)
	for it.Next() {
		k := it.Node()
		parts = append(parts, string(k.Data))
		path := strings.Join(parts, ".")
		pos := shapeStart(p, k.Raw)
		ix.at[pos] = path
		if _, seen := ix.keys[path]; !seen {
			ix.keys[path] = pos
		}
		if table {
			ix.tables[path] = true
		}
	}
	return parts
}

func (ix *docIndex) keyValue(p *unstable.Parser, kv *unstable.Node, table []string) {
	parts := ix.keyParts(p, kv.Key(), table, false)
	path := strings.Join(parts, ".")
	v := kv.Value()
	ix.kinds[path] = v.Kind
	// Arrays carry no range of their own; mapping an empty range would
	// claim position 1:1.
	if v.Raw.Length > 0 {
		pos := shapeStart(p, v.Raw)
		ix.at[pos] = path
		ix.values[path] = pos
	}
	if v.Kind == unstable.InlineTable {
		it := v.Children()
		for it.Next() {
			ix.keyValue(p, it.Node(), parts)
		}
	}
}

func shapeStart(p *unstable.Parser, r unstable.Range) position {
	s := p.Shape(r).Start
	return position{s.Line, s.Column}
}

// fullPath is the key path of a decoder error: the decoder's own key,
// corrected from the index where the decoder drops the middle of it (keys
// inside inline tables come back as table path + last key).
func (ix *docIndex) fullPath(de *toml.DecodeError) (path string, pos position) {
	line, col := de.Position()
	pos = position{line, col}
	path = strings.Join(de.Key(), ".")
	// The position is exact; the name check only guards against an error
	// whose position is not a key's (an array has none of its own).
	if p, ok := ix.at[pos]; ok && (path == "" || lastPart(p) == lastPart(path)) {
		path = p
	}
	return path, pos
}

func (ix *docIndex) unknownKey(file string, de *toml.DecodeError) FieldError {
	path, pos := ix.fullPath(de)
	msg := "unknown key"
	if ix.tables[path] {
		msg = "unknown table"
	}
	if s := suggestKey(path); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	return FieldError{Path: path, Source: pos.in(file), Msg: msg}
}

// decodeProblem describes a syntax or type error. go-toml's own type
// message names Go types; ours says what the key wants and what it got.
func (ix *docIndex) decodeProblem(file string, de *toml.DecodeError) FieldError {
	path, pos := ix.fullPath(de)
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	got, known := ix.kinds[path]
	switch l := schema.byPath[path]; {
	case l != nil && known && !compatible(got, l):
		msg = fmt.Sprintf("want %s, got %s", l.describe(), kindName(got))
	case schema.tables[path] && known && got != unstable.InlineTable:
		msg = fmt.Sprintf("want a table, got %s", kindName(got))
	}
	return FieldError{Path: path, Source: pos.in(file), Msg: msg}
}

// compatible reports whether a TOML value of kind k can decode into l.
func compatible(k unstable.Kind, l *leaf) bool {
	switch {
	case l.typ == durationType:
		return k == unstable.String
	case l.typ.Kind() == reflect.String:
		return k == unstable.String
	case l.typ.Kind() == reflect.Bool:
		return k == unstable.Bool
	default:
		return k == unstable.Integer
	}
}

func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Bool:
		return "a boolean"
	case unstable.Array:
		return "an array"
	case unstable.InlineTable:
		return "a table"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "a date or time"
	default:
		return k.String()
	}
}

// suggestKey returns the known key an unknown one most likely meant: a close
// spelling in the same table, else the same name in another table (a key
// put under the wrong header). It returns "" when nothing is close.
func suggestKey(path string) string {
	parent, name := splitLast(path)
	best, bestDist := "", max(2, len(name)/3)+1
	consider := func(known string) {
		kp, kn := splitLast(known)
		if kp != parent {
			return
		}
		if d := editDistance(name, kn); d < bestDist {
			best, bestDist = known, d
		}
	}
	for _, l := range schema.leaves {
		consider(l.path)
	}
	for _, t := range schema.tableList {
		consider(t)
	}
	if best != "" {
		return best
	}
	for _, l := range schema.leaves {
		if _, kn := splitLast(l.path); kn == name {
			return l.path
		}
	}
	for _, t := range schema.tableList {
		if _, kn := splitLast(t); kn == name {
			return t
		}
	}
	return ""
}

func lastPart(path string) string {
	_, name := splitLast(path)
	return name
}

func splitLast(path string) (parent, name string) {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i], path[i+1:]
	}
	return "", path
}
