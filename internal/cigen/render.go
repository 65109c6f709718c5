package cigen

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"

	"github.com/skiffdev/skiff/internal/project"
)

//go:embed templates
var templates embed.FS

// Render writes the pipeline of the plan's platform.
func Render(plan *Plan) ([]byte, error) {
	file := "templates/github.yml.tmpl"
	if plan.Platform == GitLab {
		file = "templates/gitlab-ci.yml.tmpl"
	}
	t, err := template.New("pipeline").Delims("[[", "]]").Funcs(template.FuncMap{
		"q":      yamlQuote,
		"sh":     shellQuote,
		"join":   func(s []string) string { return strings.Join(s, ", ") },
		"indent": indent,
	}).ParseFS(templates, file)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, strings.TrimPrefix(file, "templates/"), plan); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Needs is the YAML list of the test jobs.
func (p *Plan) Needs() string {
	var jobs []string
	for _, w := range p.Workloads {
		jobs = append(jobs, "test-"+w.Name)
	}
	return "[" + strings.Join(jobs, ", ") + "]"
}

// GitLab runs each job in an image: a workload's tests in its language's
// official image, skiff's build and deploy in one that has every toolchain
// the project needs (Debian's packages add the others to the first).

// Image is the image of the workload's test job.
func (w Workload) Image() string { return w.Langs.images()[0] }

// Image is the image of the build and deploy jobs.
func (p *Plan) Image() string { return p.Langs.images()[0] }

// ToolSetup are the commands that add the toolchains the image of the
// build and deploy jobs lacks.
func (p *Plan) ToolSetup() []string {
	var pkgs []string
	imgs := p.Langs.images()
	for _, img := range imgs[1:] {
		switch {
		case strings.HasPrefix(img, "node:"):
			pkgs = append(pkgs, "nodejs", "npm")
		case strings.HasPrefix(img, "python:"):
			pkgs = append(pkgs, "python3", "python3-pip")
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	return []string{"apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends " + strings.Join(pkgs, " ") + " >/dev/null"}
}

// ToolEnv are the variables (YAML "KEY: value" lines) the tools of
// ToolSetup need.
func (p *Plan) ToolEnv() []string {
	if p.Langs.Python != "" && !strings.HasPrefix(p.Image(), "python:") {
		// Debian's Python refuses pip installs outside a virtualenv; a
		// CI job's container is thrown away, and skiff's build installs
		// with --target anyway.
		return []string{"PIP_BREAK_SYSTEM_PACKAGES: \"1\""}
	}
	return nil
}

// images lists the official image of each language, the one to start
// from first: Go's, then Node.js's, then Python's.
func (l Langs) images() []string {
	var out []string
	if l.Go != "" {
		out = append(out, "golang:"+l.Go)
	}
	if l.Node != "" {
		out = append(out, "node:"+l.Node)
	}
	if l.Python != "" {
		out = append(out, "python:"+l.Python)
	}
	return out
}

// LangName names the workload's language for people.
func (w Workload) LangName() string {
	switch w.Lang {
	case project.LangGo:
		return "Go"
	case project.LangNode:
		return "Node.js"
	case project.LangTypeScript:
		return "TypeScript"
	case project.LangPython:
		return "Python"
	}
	return w.Lang
}

// yamlQuote is s as a YAML double-quoted scalar when it needs quoting.
func yamlQuote(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/-", r)) {
			plain = false
		}
	}
	if plain && !strings.HasPrefix(s, "-") && !isYAMLWord(s) {
		return s
	}
	return fmt.Sprintf("%q", s)
}

// isYAMLWord reports whether a plain s would not be read as the string.
func isYAMLWord(s string) bool {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~":
		return true
	}
	_, err := fmt.Sscanf(s, "%g", new(float64))
	return err == nil
}

// shellQuote is s as one POSIX shell word.
func shellQuote(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/-:", r)) {
			plain = false
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// indent prefixes each line of s with n spaces and drops the final newline.
func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}
