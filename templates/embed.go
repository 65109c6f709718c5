// Package templates holds the files skiff embeds: the scaffolding templates
// under scaffold/ (one folder per template, marked by its template.yaml).
package templates

import (
	"embed"
	"io/fs"
)

//go:embed all:scaffold
var scaffold embed.FS

// Scaffold returns the embedded scaffolding templates.
func Scaffold() fs.FS {
	sub, err := fs.Sub(scaffold, "scaffold")
	if err != nil {
		panic(err) // the folder is embedded at compile time
	}
	return sub
}
