package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/iostreams"
)

// Generated files, relative to the repository root.
const (
	CommandDocsDir = "docs/commands"
	CompletionsDir = "completions"
)

// docsRoot builds the command tree as documentation sees it: no
// environment, no version.
func docsRoot() *cobra.Command {
	ios, _, _, _ := iostreams.Test()
	f := cmdutil.New(ios, func(string) string { return "" })
	f.BuildInfo.Version = ""
	root := NewCmdRoot(f)
	root.Version = ""
	root.DisableAutoGenTag = true
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	return root
}

// GenerateFiles returns every generated file (command reference in
// Markdown and shell completions) by path relative to the repository root.
func GenerateFiles() (map[string][]byte, error) {
	root := docsRoot()
	files := map[string][]byte{}
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if !c.IsAvailableCommand() && c != root {
			return nil
		}
		var buf bytes.Buffer
		if err := doc.GenMarkdownCustom(c, &buf, func(name string) string { return name }); err != nil {
			return err
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "_") + ".md"
		files[filepath.ToSlash(filepath.Join(CommandDocsDir, name))] = buf.Bytes()
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	for _, sh := range []struct {
		file string
		gen  func(*bytes.Buffer) error
	}{
		{"skiff.bash", func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) }},
		{"skiff.zsh", func(b *bytes.Buffer) error { return root.GenZshCompletion(b) }},
		{"skiff.fish", func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) }},
		{"skiff.ps1", func(b *bytes.Buffer) error { return root.GenPowerShellCompletionWithDesc(b) }},
	} {
		var buf bytes.Buffer
		if err := sh.gen(&buf); err != nil {
			return nil, err
		}
		files[CompletionsDir+"/"+sh.file] = buf.Bytes()
	}
	return files, nil
}

// WriteGenerated writes GenerateFiles into the repository at root,
// removing generated files of commands that no longer exist.
func WriteGenerated(root string) error {
	files, err := GenerateFiles()
	if err != nil {
		return err
	}
	for _, dir := range []string{CommandDocsDir, CompletionsDir} {
		entries, _ := os.ReadDir(filepath.Join(root, dir))
		for _, e := range entries {
			rel := dir + "/" + e.Name()
			if _, keep := files[rel]; !keep && !e.IsDir() && e.Name() != "README.md" {
				if err := os.Remove(filepath.Join(root, rel)); err != nil {
					return err
				}
			}
		}
	}
	for rel, data := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", rel, err)
		}
	}
	return nil
}

// WriteManPages writes section-1 man pages of every command into dir.
func WriteManPages(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return doc.GenManTree(docsRoot(), &doc.GenManHeader{Title: "SKIFF", Section: "1", Source: "skiff"}, dir)
}
