package config

import (
	"fmt"
	"reflect"
	"strings"
)

// envPrefix starts every environment variable that overrides a key.
const envPrefix = "MORAX_"

// leaf is one settable key of Config, found by reflection over the toml tags
// so that key paths, environment names and the decoder never disagree.
type leaf struct {
	path  string // TOML key path, e.g. "server.kafka_broker.listen_addr"
	env   string // environment variable, e.g. "MORAX_SERVER_KAFKA_BROKER_LISTEN_ADDR"
	index []int  // reflect field index from Config
	typ   reflect.Type
}

// schemaInfo is every key of Config. It is built once at package
// initialisation and never modified.
type schemaInfo struct {
	leaves []leaf           // in struct order, which is the documented order
	byPath map[string]*leaf // by TOML key path
	byEnv  map[string]*leaf // by environment variable
	tables map[string]bool  // key paths of tables, e.g. "server", "server.meta"
	// tableList holds the keys of tables in struct order, for deterministic
	// iteration.
	tableList []string
}

var schema = buildSchema()

var durationType = reflect.TypeFor[Duration]()

func buildSchema() *schemaInfo {
	s := &schemaInfo{
		byPath: map[string]*leaf{},
		byEnv:  map[string]*leaf{},
		tables: map[string]bool{},
	}
	s.walk(reflect.TypeFor[Config](), nil, nil)
	for i := range s.leaves {
		l := &s.leaves[i]
		// Joining with "_" could map two keys to one name (a.b_c and a_b.c);
		// a panic at init turns that into a failing test, not a silent
		// override of the wrong key.
		if other, dup := s.byEnv[l.env]; dup {
			panic(fmt.Sprintf("config: keys %s and %s both map to %s", other.path, l.path, l.env))
		}
		s.byPath[l.path] = l
		s.byEnv[l.env] = l
	}
	return s
}

func (s *schemaInfo) walk(t reflect.Type, path []string, index []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		p := append(append([]string(nil), path...), name)
		idx := append(append([]int(nil), index...), i)
		if f.Type.Kind() == reflect.Struct {
			s.tables[strings.Join(p, ".")] = true
			s.tableList = append(s.tableList, strings.Join(p, "."))
			s.walk(f.Type, p, idx)
			continue
		}
		switch f.Type.Kind() {
		case reflect.String, reflect.Bool, reflect.Int32, reflect.Int64:
		default:
			panic(fmt.Sprintf("config: field %s has unsupported type %s", f.Name, f.Type))
		}
		s.leaves = append(s.leaves, leaf{
			path:  strings.Join(p, "."),
			env:   envPrefix + strings.ToUpper(strings.Join(p, "_")),
			index: idx,
			typ:   f.Type,
		})
	}
}

// tomlName is the key a struct field decodes from; every field must have a
// toml tag so that renaming a Go field never renames a key.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "" || name == "-" {
		panic(fmt.Sprintf("config: field %s has no toml tag", f.Name))
	}
	return name
}

// describe says what a key wants, for type errors.
func (l *leaf) describe() string {
	switch {
	case l.typ == durationType:
		return `a duration string such as "5s"`
	case l.typ.Kind() == reflect.String:
		return "a string"
	case l.typ.Kind() == reflect.Bool:
		return "a boolean"
	case strings.HasSuffix(l.path, "_bytes"):
		return "an integer number of bytes"
	default:
		return "an integer"
	}
}
