package project

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/skiffdev/skiff/internal/fsutil"
)

// Marshal encodes a new manifest. Fields equal to their defaults are left
// out so the file stays short.
func Marshal(p *Project) ([]byte, error) {
	out := *p
	out.Workloads = make([]Workload, len(p.Workloads))
	for i, w := range p.Workloads {
		out.Workloads[i] = trimDefaults(w)
	}
	if out.Namespace == out.Name {
		out.Namespace = ""
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&out); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func trimDefaults(w Workload) Workload {
	if w.Template == DefaultTemplate {
		w.Template = ""
	}
	if w.Path == w.Name {
		w.Path = ""
	}
	if w.Replicas != nil && *w.Replicas == DefaultReplicas {
		w.Replicas = nil
	}
	if w.Health == "/healthz" {
		w.Health = ""
	}
	return w
}

// AppendWorkload adds w to the manifest at path, keeping the rest of the file
// (comments, order, formatting of other entries) as the user wrote it, and
// validates the result before writing it atomically.
func AppendWorkload(path string, w Workload) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, syntaxErr(err))
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: the manifest must be a mapping with apiVersion, name and workloads", path)
	}
	root := doc.Content[0]
	var item yaml.Node
	if err := item.Encode(trimDefaults(w)); err != nil {
		return err
	}
	seq := child(root, "workloads")
	switch {
	case seq == nil:
		root.Content = append(root.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "workloads"},
			&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{&item}})
	case seq.Kind == yaml.SequenceNode:
		seq.Style = 0
		seq.Content = append(seq.Content, &item)
	case seq.Kind == yaml.ScalarNode && (seq.Tag == "!!null" || seq.Value == ""):
		*seq = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{&item}}
	default:
		return fmt.Errorf("%s: workloads must be a list", path)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	if _, err := Parse(buf.Bytes()); err != nil {
		return prefixErr(path, err)
	}
	return fsutil.WriteFileAtomic(path, buf.Bytes(), 0o644)
}
