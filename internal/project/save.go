package project

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
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
	if w.Health == DefaultHealth {
		w.Health = ""
	}
	if w.Ready == DefaultReady {
		w.Ready = ""
	}
	return w
}

// AddWorkload returns the manifest data with w appended to its workloads,
// keeping the rest of the file (comments, order, formatting of other
// entries) as the user wrote it. The result is validated; a duplicate name or
// a dangling dependency is an error and data is not changed.
func AddWorkload(data []byte, w Workload) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxErr(err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the manifest must be a mapping with apiVersion, name and workloads")
	}
	root := doc.Content[0]
	var item yaml.Node
	if err := item.Encode(trimDefaults(w)); err != nil {
		return nil, err
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
	case seq.Kind == yaml.ScalarNode && seq.Tag == "!!null":
		*seq = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{&item}}
	default:
		return nil, fmt.Errorf("workloads must be a list")
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	if _, err := Parse(buf.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
