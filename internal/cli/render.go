package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/scaffold"
)

// RenderOptions are the inputs of `skiff render`.
type RenderOptions struct {
	Factory *cmdutil.Factory

	Workloads []string
	Images    []string
	Values    chartValues
	OutputDir string
	Force     bool
}

// NewCmdRender builds `skiff render`. runF replaces renderRun in tests.
func NewCmdRender(f *cmdutil.Factory, runF func(context.Context, *RenderOptions) error) *cobra.Command {
	opts := &RenderOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "render [WORKLOAD...]",
		GroupID: "ship",
		Short:   "Print the Kubernetes YAML a deploy would apply",
		Long: heredoc.Doc(`
			Render each workload's chart with the values skiff deploy would use and print
			the manifests, in Helm's install order, as multi-document YAML; with
			--output-dir, write one file per workload (WORKLOAD.yaml) for GitOps.

			No cluster is needed. The image is built (from the build cache when nothing
			changed) to learn its digest, unless --image gives it.
		`),
		Example: heredoc.Doc(`
			skiff render > all.yaml
			skiff render orders --set replicas=3
			skiff render --output-dir deploy/ --force
		`),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return renderRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVar(&opts.Images, "image", nil, "use this image instead of building: REF for one workload, or WORKLOAD=REF (repeatable)")
	cmd.Flags().StringVar(&opts.OutputDir, "output-dir", "", "write WORKLOAD.yaml files into this folder instead of stdout")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite files in --output-dir")
	opts.Values.addFlags(cmd)
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func renderRun(ctx context.Context, opts *RenderOptions) error {
	f := opts.Factory
	if f.Globals.Output == cmdutil.FormatJSON && opts.OutputDir != "" {
		return cmdutil.Usagef("--output-dir writes YAML files; drop -o json, or drop --output-dir for a JSON List on stdout")
	}
	pc, overrides, images, err := releaseInputs(f, opts.Workloads, opts.Values, opts.Images)
	if err != nil {
		return err
	}
	var toBuild []project.Workload
	for _, w := range pc.workloads {
		if images[w.Name] == "" {
			toBuild = append(toBuild, w)
		}
	}
	if len(toBuild) > 0 {
		if err := buildImages(ctx, f, pc, toBuild, BuildOptions{}, images); err != nil {
			return err
		}
		if pc.project.Registry == "" {
			names := make([]string, len(toBuild))
			for i, w := range toBuild {
				names[i] = pc.project.Name + "/" + w.Name
			}
			fmt.Fprintf(f.IOStreams.ErrOut, "%s skiff.yaml names no registry%s: a cluster would pull %s from Docker Hub, and skiff deploy refuses it; add `registry: HOST/PATH`, or pass --image\n",
				f.IOStreams.ColorScheme().WarningIcon(), envSuffix(pc.project), strings.Join(names, ", "))
		}
	}
	rendered, err := f.Render(ctx, engine.RenderConfig{Project: pc.project, Root: pc.root, Workloads: pc.workloads, Images: images, Overrides: overrides})
	if err != nil {
		return err
	}
	var files []scaffold.File
	var all bytes.Buffer
	for _, r := range rendered {
		files = append(files, scaffold.File{Path: r.Workload + ".yaml", Data: []byte(r.YAML), Mode: 0o644})
		if all.Len() > 0 {
			all.WriteString("---\n")
		}
		all.WriteString(r.YAML)
	}
	if opts.OutputDir == "" && f.Globals.Output == cmdutil.FormatJSON {
		list, err := cmdutil.ManifestList(all.String())
		if err != nil {
			return err
		}
		return cmdutil.Write(f.IOStreams.Out, cmdutil.FormatJSON, list, nil)
	}
	if opts.OutputDir == "" {
		_, err := f.IOStreams.Out.Write(all.Bytes())
		return err
	}
	dir := opts.OutputDir
	if !filepath.IsAbs(dir) {
		wd, err := f.WorkDir()
		if err != nil {
			return err
		}
		dir = filepath.Join(wd, dir)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return cmdutil.Usagef("--output-dir %s is a file", opts.OutputDir)
	}
	if err := scaffold.Write(dir, files, opts.Force); err != nil {
		return err
	}
	for _, fl := range files {
		fmt.Fprintf(f.IOStreams.ErrOut, "%s Wrote %s\n", f.IOStreams.ColorScheme().SuccessIcon(), filepath.Join(opts.OutputDir, fl.Path))
	}
	return nil
}
