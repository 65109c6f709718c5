package project

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxManifestSize bounds what Load reads: a manifest is a few kilobytes.
const maxManifestSize = 1 << 20

// ErrNotFound is returned by Find when no skiff.yaml is in the folder or any
// of its parents.
var ErrNotFound = errors.New("no " + FileName + " found")

// Find looks for skiff.yaml in dir and its parents and returns its path.
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		p := filepath.Join(d, FileName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w in %s or any parent folder; run `skiff init` to create a project", ErrNotFound, abs)
		}
	}
}

// Load reads, defaults and validates the manifest at path.
func Load(path string) (*Project, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s; run `skiff init` to create a project", ErrNotFound, path)
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, prefixErr(path, err)
	}
	for _, e := range p.NoBus {
		e.File = path
	}
	return p, nil
}

// Parse decodes, defaults and validates a manifest. Errors point at the
// offending field and, where known, its line.
func Parse(data []byte) (*Project, error) {
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("the manifest is larger than %d bytes; is this the right file?", maxManifestSize)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxErr(err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("the manifest is empty; run `skiff init` to create one")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &FieldError{Line: root.Line, Msg: "the manifest must be a mapping with apiVersion, name and workloads"}
	}

	// Every unknown key and every value of the wrong shape, with its line;
	// then, on what could be decoded, every value that is wrong.
	shape := checkFields(root, reflect.TypeOf(Project{}), "")
	var p Project
	if err := yaml.Unmarshal(data, &p); err != nil && len(shape) == 0 {
		return nil, syntaxErr(err)
	}
	errs := p.validateVersion()
	if errs == nil {
		p.Warnings = append(p.warnings(), p.networkWarnings()...)
		p.ApplyDefaults()
		errs = p.Validate()
	}
	for _, e := range errs {
		e.Line = lineOf(root, e.Path)
	}
	if len(shape) > 0 {
		errs = mergeErrors(shape, errs)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	p.NoBus = p.busNeeds()
	for _, w := range append(slices.Clone(p.Warnings), p.NoBus...) {
		w.Line = lineOf(root, w.Path)
	}
	return &p, nil
}

// mergeErrors adds to the errors of the fields' shapes those found in
// their values, except about a field (or its parent) already wrong in
// shape, in the order of their lines.
func mergeErrors(shape, values ValidationErrors) ValidationErrors {
	out := slices.Clone(shape)
	for _, e := range values {
		if !slices.ContainsFunc(shape, func(s *FieldError) bool {
			return e.Path == s.Path || strings.HasPrefix(e.Path, s.Path+".") || strings.HasPrefix(e.Path, s.Path+"[")
		}) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b *FieldError) int { return a.Line - b.Line })
	return out
}

// warnings finds what is odd but not wrong in a manifest before defaults.
func (p *Project) warnings() []*FieldError {
	var out []*FieldError
	ignored := func(path string) {
		out = append(out, &FieldError{Path: path, Msg: "is ignored: scale lets KEDA set the number of pods", Hint: "remove it, or set scale.min"})
	}
	for i, w := range p.Workloads {
		if w.Scale != nil && w.Replicas != nil {
			ignored(fmt.Sprintf("workloads[%d].replicas", i))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(p.Environments)) {
		e := p.Environments[n]
		for _, wn := range slices.Sorted(maps.Keys(e.Workloads)) {
			o := e.Workloads[wn]
			w, ok := p.Workload(wn)
			if !ok || o.Replicas == nil || o.Autoscale != nil {
				continue
			}
			if o.Scale != nil || w.Scale != nil {
				ignored("environments." + n + ".workloads." + wn + ".replicas")
			}
		}
	}
	return out
}

func (p *Project) validateVersion() ValidationErrors {
	switch p.APIVersion {
	case APIVersion:
		return nil
	case "":
		return ValidationErrors{{Path: "apiVersion", Msg: "is missing", Hint: "add `apiVersion: " + APIVersion + "` at the top"}}
	default:
		return ValidationErrors{{Path: "apiVersion", Msg: fmt.Sprintf("%q is not a version this skiff reads", p.APIVersion),
			Hint: "use `apiVersion: " + APIVersion + "` or upgrade skiff"}}
	}
}

// syntaxErr rewords the YAML library's errors into one line each.
func syntaxErr(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, m := range te.Errors {
			m = strings.Replace(m, " not found in type project.", " is not known in ", 1)
			msgs = append(msgs, m)
		}
		return fmt.Errorf("%s (see docs/manifest.md for every field)", strings.Join(msgs, "; "))
	}
	return fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// IsManifestError reports whether err is a problem of skiff.yaml itself
// (its syntax or a field), as opposed to reading it: bad input, which the
// CLI answers with exit code 2.
func IsManifestError(err error) bool {
	var verrs ValidationErrors
	var ferr *FieldError
	return errors.As(err, &verrs) || errors.As(err, &ferr)
}

func prefixErr(path string, err error) error {
	var verrs ValidationErrors
	if errors.As(err, &verrs) {
		for _, e := range verrs {
			e.File = path
		}
		return err
	}
	var ferr *FieldError
	if errors.As(err, &ferr) {
		ferr.File = path
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

// lineOf finds the line of a field path such as "workloads[1].port" in the
// YAML tree, or the nearest parent that exists; 0 when unknown.
func lineOf(root *yaml.Node, path string) int {
	node, line := root, root.Line
	for _, seg := range splitPath(path) {
		next := child(node, seg)
		if next == nil {
			break
		}
		node, line = next, next.Line
	}
	return line
}

func splitPath(path string) []string {
	var segs []string
	for _, part := range strings.Split(path, ".") {
		for {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				segs = append(segs, part[:i])
			}
			j := strings.IndexByte(part, ']')
			if j < i {
				break
			}
			segs = append(segs, part[i:j+1])
			part = part[j+1:]
		}
		if part != "" {
			segs = append(segs, part)
		}
	}
	return segs
}

func child(n *yaml.Node, seg string) *yaml.Node {
	if strings.HasPrefix(seg, "[") {
		i, err := strconv.Atoi(strings.Trim(seg, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == seg {
			return n.Content[i+1]
		}
	}
	return nil
}
