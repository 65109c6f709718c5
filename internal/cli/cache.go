package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/publish"
)

// CacheOptions are the inputs of `skiff cache info|prune`.
type CacheOptions struct {
	Factory *cmdutil.Factory
	// Verb is info or prune.
	Verb string
	Keep int
}

// NewCmdCache builds `skiff cache`. runF replaces cacheRun in tests.
func NewCmdCache(f *cmdutil.Factory, runF func(context.Context, *CacheOptions) error) *cobra.Command {
	opts := &CacheOptions{Factory: f}
	run := func(ctx context.Context, verb string) error {
		opts.Verb = verb
		if runF != nil {
			return runF(ctx, opts)
		}
		return cacheRun(ctx, opts)
	}
	cmd := &cobra.Command{
		Use:     "cache <command>",
		GroupID: "ship",
		Short:   "The local image store and build cache",
		Long: heredoc.Doc(`
			skiff keeps built images in an OCI image layout in its cache folder
			(SKIFF_CACHE_DIR, else the user cache folder), and remembers which inputs
			gave which image so an unchanged workload is not built again. Several
			skiff processes may use one cache folder at once.
		`),
	}
	info := &cobra.Command{
		Use:   "info",
		Short: "Show the size of the store and what it holds",
		Args:  exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), "info")
		},
	}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove old cached images and the blobs nothing needs",
		Long: heredoc.Doc(`
			Keep the newest --keep cached images of each workload (--keep 0: none, the
			build cache emptied) and every named image (NAME:TAG, with its SBOM);
			forget the other cached images and remove every blob that no kept image
			needs. Safe beside running builds.
		`),
		Args: exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Keep < 0 {
				return cmdutil.Usagef("--keep %d: use 0 (none) or more cached images per workload", opts.Keep)
			}
			return run(cmd.Context(), "prune")
		},
	}
	prune.Flags().IntVar(&opts.Keep, "keep", publish.DefaultKeep, "cached images to keep per workload")
	cmd.AddCommand(info, prune)
	return cmd
}

func cacheRun(ctx context.Context, opts *CacheOptions) error {
	if opts.Verb == "prune" {
		return cachePruneRun(ctx, opts)
	}
	return cacheInfoRun(ctx, opts)
}

func (o *CacheOptions) cache() (*publish.Cache, error) {
	dir, err := o.Factory.CacheDir()
	if err != nil {
		return nil, err
	}
	return &publish.Cache{Dir: dir, Repaired: repairedNotice(o.Factory)}, nil
}

// repairedNotice tells the user that the store's index was rebuilt.
func repairedNotice(f *cmdutil.Factory) func(string, int) {
	return func(dir string, n int) {
		fmt.Fprintf(f.IOStreams.ErrOut, "%s the index of %s was damaged; rebuilt it from its blobs (%d images; the damaged file is index.json.damaged)\n",
			f.IOStreams.ColorScheme().WarningIcon(), dir, n)
	}
}

func cacheInfoRun(ctx context.Context, opts *CacheOptions) error {
	c, err := opts.cache()
	if err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	return cmdutil.Write(opts.Factory.IOStreams.Out, opts.Factory.Globals.Output, info, func(w io.Writer) error {
		fmt.Fprintf(w, "store:\t%s\nsize:\t%s\nimages:\t%d\ncached builds:\t%d\nblobs:\t%d\n",
			info.Dir, humanBytes(info.Size), len(info.Images), info.Cached, info.Blobs)
		for _, n := range info.Images {
			fmt.Fprintf(w, "  %s\n", n)
		}
		return nil
	})
}

func cachePruneRun(ctx context.Context, opts *CacheOptions) error {
	c, err := opts.cache()
	if err != nil {
		return err
	}
	res, err := c.Prune(ctx, publish.PruneOptions{Keep: opts.Keep})
	if err != nil {
		return err
	}
	f := opts.Factory
	fmt.Fprintf(f.IOStreams.ErrOut, "%s Removed %d cached images and %d blobs, freed %s\n",
		f.IOStreams.ColorScheme().SuccessIcon(), res.RemovedImages, res.RemovedBlobs, humanBytes(res.Freed))
	if f.Globals.Output == cmdutil.FormatJSON || f.Globals.Output == cmdutil.FormatYAML {
		return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, res, nil)
	}
	return nil
}

// humanBytes prints n bytes with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
