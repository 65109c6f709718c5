package project

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// checkFields walks the YAML tree against the manifest's types and reports,
// each with its line and field path, every key skiff does not know (with
// the field it probably means) and every value of the wrong shape: all of
// them, where the YAML decoder stops at the first unknown key.
func checkFields(n *yaml.Node, t reflect.Type, path string) ValidationErrors {
	var errs ValidationErrors
	add := func(line int, path, msg, hint string) {
		errs = append(errs, &FieldError{Line: line, Path: path, Msg: msg, Hint: hint})
	}
	var walk func(n *yaml.Node, t reflect.Type, path string)
	walk = func(n *yaml.Node, t reflect.Type, path string) {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if sf, ok := reflect.New(t).Interface().(scalarForm); ok && n.Kind == yaml.ScalarNode {
			if msg, hint := sf.scalarProblem(n.Value); msg != "" {
				add(n.Line, path, msg, hint)
			}
			return
		}
		switch t.Kind() {
		case reflect.Struct:
			if n.Kind != yaml.MappingNode {
				add(n.Line, path, "must be a mapping of fields", "see docs/manifest.md")
				return
			}
			fields := yamlFields(t)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "<<" {
					continue
				}
				at := join(path, k.Value)
				ft, ok := fields[k.Value]
				if !ok {
					hint := "see docs/manifest.md for every field"
					if near := nearest(k.Value, fields); near != "" {
						hint = "did you mean " + near + "?"
					}
					add(k.Line, at, "is not a field of "+describe(t), hint)
					continue
				}
				walk(v, ft, at)
			}
		case reflect.Map:
			if n.Kind != yaml.MappingNode {
				add(n.Line, path, "must be a mapping", "write it as `key: value` lines under it")
				return
			}
			if t.Elem().Kind() == reflect.Interface {
				return
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
			}
		case reflect.Slice:
			if n.Kind != yaml.SequenceNode {
				add(n.Line, path, "must be a list", "write each item on a line of its own starting with `- `")
				return
			}
			for i, item := range n.Content {
				walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.Int, reflect.Int64:
			if n.Kind != yaml.ScalarNode {
				add(n.Line, path, "must be a number", "")
			} else if _, err := strconv.Atoi(n.Value); err != nil {
				add(n.Line, path, fmt.Sprintf("%q is not a number", n.Value), "write a whole number")
			}
		case reflect.Bool:
			if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
				add(n.Line, path, fmt.Sprintf("%q is not true or false", n.Value), "write true or false")
			}
		case reflect.String:
			if n.Kind != yaml.ScalarNode {
				add(n.Line, path, "must be a single value", "quote it if it is text")
			}
		}
	}
	walk(n, t, path)
	return errs
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps the YAML keys of a struct to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// describe names a manifest type for people: "a workload".
func describe(t reflect.Type) string {
	if t == reflect.TypeOf(Project{}) {
		return "skiff.yaml's top level"
	}
	var b strings.Builder
	for i, r := range t.Name() {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	name := b.String()
	if strings.ContainsRune("aeiou", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}

// nearest is the known key closest to key (case aside, or at most two
// edits away), or "".
func nearest(key string, known map[string]reflect.Type) string {
	best, bestD := "", 3
	for k := range known {
		d := editDistance(strings.ToLower(key), strings.ToLower(k))
		if d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of neighbours that turn a into b.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
