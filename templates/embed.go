// Package templates holds the files skiff embeds: the scaffolding templates
// under scaffold/ (one folder per template, marked by its template.yaml) and
// the base Helm chart of every workload under chart/.
package templates

import (
	"embed"
	"io/fs"
)

//go:embed all:scaffold
var scaffold embed.FS

//go:embed all:chart
var chart embed.FS

// Scaffold returns the embedded scaffolding templates.
func Scaffold() fs.FS {
	sub, err := fs.Sub(scaffold, "scaffold")
	if err != nil {
		panic(err) // the folder is embedded at compile time
	}
	return sub
}

// Chart returns the base Helm chart that skiff renders for each workload.
func Chart() fs.FS {
	sub, err := fs.Sub(chart, "chart")
	if err != nil {
		panic(err) // the folder is embedded at compile time
	}
	return sub
}
