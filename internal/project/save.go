package project

import (
	"bytes"
	"fmt"
	"sort"

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
	if out.RegistryAuth == RegistryAuthAuto {
		out.RegistryAuth = ""
	}
	return encode(&out)
}

// encode writes v as YAML indented by two spaces, as skiff writes manifests.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// parseDoc reads a manifest as a YAML tree, to edit it keeping comments.
func parseDoc(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxErr(err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the manifest must be a mapping with apiVersion, name and workloads")
	}
	return &doc, nil
}

// encodeValid encodes an edited manifest tree and checks the result is a
// valid manifest.
func encodeValid(doc *yaml.Node) ([]byte, error) {
	data, err := encode(doc)
	if err != nil {
		return nil, err
	}
	if _, err := Parse(data); err != nil {
		return nil, err
	}
	return data, nil
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
	doc, err := parseDoc(data)
	if err != nil {
		return nil, err
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
	return encodeValid(doc)
}

// SetConfig returns the manifest data with the runtime config of workload
// changed: keys in set are added or replaced, keys in unset removed. The
// rest of the file stays as written; the result is validated.
func SetConfig(data []byte, workload string, set map[string]string, unset []string) ([]byte, error) {
	doc, err := parseDoc(data)
	if err != nil {
		return nil, err
	}
	seq := child(doc.Content[0], "workloads")
	var w *yaml.Node
	if seq != nil && seq.Kind == yaml.SequenceNode {
		for _, item := range seq.Content {
			if n := child(item, "name"); n != nil && n.Value == workload && item.Kind == yaml.MappingNode {
				w = item
			}
		}
	}
	if w == nil {
		return nil, fmt.Errorf("the project has no workload %q", workload)
	}
	cfg := child(w, "config")
	if cfg == nil {
		if len(set) == 0 {
			return data, nil
		}
		cfg = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		w.Content = append(w.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "config"}, cfg)
	}
	if cfg.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config of workload %s must be a mapping", workload)
	}
	cfg.Style = 0
	for _, k := range unset {
		for i := 0; i+1 < len(cfg.Content); i += 2 {
			if cfg.Content[i].Value == k {
				cfg.Content = append(cfg.Content[:i], cfg.Content[i+2:]...)
				break
			}
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := child(cfg, k); v != nil {
			// Change the value in place: its comments stay.
			v.Kind, v.Tag, v.Value, v.Style, v.Content, v.Alias = yaml.ScalarNode, "!!str", set[k], 0, nil, nil
			continue
		}
		cfg.Content = append(cfg.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: set[k]})
	}
	if len(cfg.Content) == 0 {
		for i := 0; i+1 < len(w.Content); i += 2 {
			if w.Content[i].Value == "config" {
				w.Content = append(w.Content[:i], w.Content[i+2:]...)
				break
			}
		}
	}
	return encodeValid(doc)
}
