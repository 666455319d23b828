package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
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
// that set it: unknown keys, values of the wrong type, bad environment
// variables and every failed check, in one pass. The exception is a file the
// decoder cannot finish: after a syntax error, or a value of the wrong type
// (a string where an integer belongs), only the file's own problems are
// reported, since the rest of the configuration is unknown. A file that
// cannot be read is reported as the wrapped *fs.PathError.
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
	// A key whose value was already rejected holds a stand-in (the default,
	// the file's value, or what the decoder made of it), so checks on it
	// would only repeat or confuse the first complaint.
	rejected := map[string]bool{}
	for _, fe := range errs {
		rejected[fe.Path] = true
	}
	for _, fe := range cfg.validate(src) {
		if !rejected[fe.Path] {
			errs = append(errs, fe)
		}
	}
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
	// The decoder stops at the first bad value, and it stores an integer
	// straight into an integer-kinded Duration ("linger = 5" would be 5ns).
	// The index finds every bad value at once.
	badValues := ix.valueErrors(name)
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
		fe := ix.decodeProblem(name, de)
		if ix.parseErr != nil {
			// After a syntax error nothing else in the file is known.
			return []FieldError{fe}, true
		}
		// The decoder stopped before it could list unknown keys; the index
		// lists them instead.
		errs = ix.unknownKeys(name)
		if !slices.ContainsFunc(badValues, func(b FieldError) bool { return b.Path == fe.Path }) {
			// A problem only the decoder sees: an integer that overflows,
			// a key defined twice.
			errs = append(errs, fe)
		}
		return append(errs, badValues...), true
	default:
		return []FieldError{{Source: name, Msg: err.Error()}}, true
	}
	for _, l := range schema.leaves {
		if pos, ok := ix.keys[l.path]; ok {
			src[l.path] = pos.in(name)
		}
	}
	return append(errs, badValues...), false
}

// position is a 1-based line and column in a TOML document.
type position struct{ line, col int }

func (p position) in(file string) string { return fmt.Sprintf("%s:%d:%d", file, p.line, p.col) }

// docIndex records where each key of a TOML document is written. The decoder
// reports positions, but for keys inside inline tables it drops the middle of
// the key path; the index turns positions back into full paths, gives
// validation errors a line to point at, and knows each value, so every bad
// value is found at once and the error says what was found instead.
type docIndex struct {
	keys     map[string]position // key path -> where it is first written
	at       map[position]string // position of a key part or a value -> key path
	exprs    []docExpr           // table headers and key-values, in document order
	tables   map[string]bool     // key paths opened by [table] headers
	parseErr error               // the syntax error that ended the walk, if any
}

// docExpr is a table header or a key-value of the document. Key-values
// inside inline tables are listed after the one that holds them.
type docExpr struct {
	parts  []string // the full key path, one element per key part
	header int      // how many of parts name the enclosing [table]
	table  bool     // a [table] or [[table]] header rather than a key-value
	kind   unstable.Kind
	text   string   // a scalar value's decoded text
	pos    position // of the value, or of the key for a header or a value without a range
}

func (e *docExpr) path() string { return strings.Join(e.parts, ".") }

// indexDocument walks doc with go-toml's parser. A syntax error ends the walk
// early; the decoder reports it.
func indexDocument(doc []byte) *docIndex {
	ix := &docIndex{
		keys:   map[string]position{},
		at:     map[position]string{},
		tables: map[string]bool{},
	}
	var p unstable.Parser
	p.Reset(doc)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = ix.keyParts(&p, e.Key(), nil)
			path := strings.Join(table, ".")
			ix.tables[path] = true
			ix.exprs = append(ix.exprs, docExpr{parts: table, header: len(table), table: true, pos: ix.keys[path]})
		case unstable.KeyValue:
			ix.keyValue(&p, e, table, len(table))
		}
	}
	ix.parseErr = p.Error()
	return ix
}

// keyParts records the position of each prefix of a dotted key under parent
// and returns the full key path as parts.
func (ix *docIndex) keyParts(p *unstable.Parser, it unstable.Iterator, parent []string) []string {
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
	}
	return parts
}

func (ix *docIndex) keyValue(p *unstable.Parser, kv *unstable.Node, parent []string, header int) {
	parts := ix.keyParts(p, kv.Key(), parent)
	path := strings.Join(parts, ".")
	v := kv.Value()
	e := docExpr{parts: parts, header: header, kind: v.Kind, text: string(v.Data), pos: ix.keys[path]}
	// Arrays carry no range of their own; mapping an empty range would
	// claim position 1:1.
	if v.Raw.Length > 0 {
		e.pos = shapeStart(p, v.Raw)
		ix.at[e.pos] = path
	}
	ix.exprs = append(ix.exprs, e)
	if v.Kind == unstable.InlineTable {
		it := v.Children()
		for it.Next() {
			ix.keyValue(p, it.Node(), parts, header)
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
	return ix.unknownKeyError(file, path, pos)
}

// unknownKeys finds what strict decoding reports, for when decoding stopped
// before it could: every [table] header that is not in Config, and in a
// known table, the first part of each key path that is not.
func (ix *docIndex) unknownKeys(file string) []FieldError {
	var errs []FieldError
	reported := map[string]bool{}
	known := func(path string) bool { return schema.byPath[path] != nil || schema.tables[path] }
	for _, e := range ix.exprs {
		if e.table {
			if path := e.path(); !known(path) {
				errs = append(errs, ix.unknownKeyError(file, path, e.pos))
			}
			continue
		}
		if e.header > 0 && !schema.tables[strings.Join(e.parts[:e.header], ".")] {
			continue // the header is reported, or is a key of the wrong type
		}
		for i := e.header + 1; i <= len(e.parts); i++ {
			path := strings.Join(e.parts[:i], ".")
			if known(path) {
				continue
			}
			if !reported[path] {
				reported[path] = true
				errs = append(errs, ix.unknownKeyError(file, path, ix.keys[path]))
			}
			break
		}
	}
	return errs
}

func (ix *docIndex) unknownKeyError(file, path string, pos position) FieldError {
	msg := "unknown key"
	if ix.tables[path] {
		msg = "unknown table"
	}
	if s := suggestKey(path); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	return FieldError{Path: path, Source: pos.in(file), Msg: msg}
}

// decodeProblem describes an error that stopped the decoder, keeping
// go-toml's words (minus its prefix) for the syntax errors it alone sees.
func (ix *docIndex) decodeProblem(file string, de *toml.DecodeError) FieldError {
	path, pos := ix.fullPath(de)
	return FieldError{Path: path, Source: pos.in(file), Msg: strings.TrimPrefix(de.Error(), "toml: ")}
}

// valueErrors reports, in document order, every value its key cannot take:
// the wrong TOML type, or a string that is not a duration where a duration
// belongs. go-toml's type message would name Go types; this one says what
// the key wants and what it got.
func (ix *docIndex) valueErrors(file string) []FieldError {
	var errs []FieldError
	for _, e := range ix.exprs {
		if e.table {
			continue
		}
		path := e.path()
		var msg string
		switch l := schema.byPath[path]; {
		case l != nil && !compatible(e.kind, l):
			msg = fmt.Sprintf("want %s, got %s", l.describe(), kindName(e.kind))
		case l != nil && l.typ == durationType:
			if _, err := parseDuration(e.text); err != nil {
				msg = err.Error()
			}
		case schema.tables[path] && e.kind != unstable.InlineTable:
			msg = "want a table, got " + kindName(e.kind)
		}
		if msg != "" {
			errs = append(errs, FieldError{Path: path, Source: e.pos.in(file), Msg: msg})
		}
	}
	return errs
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
