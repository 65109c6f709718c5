package cmdutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// Output formats of -o/--output.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
	// FormatWide is the table with more columns, for the commands that
	// have them (annotated WideAnnotation).
	FormatWide = "wide"
)

// WideAnnotation marks a command that prints -o wide.
const WideAnnotation = "skiff.dev/output-wide"

// Formats lists the valid values of -o/--output (wide: for a command
// that has it).
func Formats(wide bool) []string {
	if wide {
		return []string{FormatTable, FormatWide, FormatJSON, FormatYAML}
	}
	return []string{FormatTable, FormatJSON, FormatYAML}
}

// CheckFormat fails with a usage error for an unknown output format; wide
// says the command prints -o wide.
func CheckFormat(f string, wide bool) error {
	switch f {
	case "", FormatTable, FormatJSON, FormatYAML:
		return nil
	case FormatWide:
		if wide {
			return nil
		}
		return Usagef("this command has no -o wide (skiff status and skiff top have); use -o table, -o json or -o yaml")
	}
	if wide {
		return Usagef("unknown output format %q; use -o table, -o wide, -o json or -o yaml", f)
	}
	return Usagef("unknown output format %q; use -o table, -o json or -o yaml", f)
}

// IsTable says format prints a table (table, wide or the default).
func IsTable(format string) bool {
	return format == "" || format == FormatTable || format == FormatWide
}

// Write prints v in format: JSON or YAML of v, or the table written by
// table, aligned in columns.
func Write(w io.Writer, format string, v any, table func(w io.Writer) error) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case FormatYAML:
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	case "", FormatTable, FormatWide:
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if err := table(tw); err != nil {
			return err
		}
		return tw.Flush()
	}
	return fmt.Errorf("unknown output format %q", format)
}

// ManifestList is a v1 List (as kubectl prints with -o json) of the
// Kubernetes objects in a multi-document YAML stream, in order; empty
// documents are skipped.
func ManifestList(stream string) (map[string]any, error) {
	items := []any{}
	dec := yamlv3.NewDecoder(strings.NewReader(stream))
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the rendered YAML: %w", err)
		}
		if len(obj) > 0 {
			items = append(items, obj)
		}
	}
	return map[string]any{"apiVersion": "v1", "kind": "List", "items": items}, nil
}
