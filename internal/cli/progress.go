package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/event"
)

// progress renders the pipeline's events on stderr: a line per step (and
// a spinner while a deploy waits) for people, or one JSON object per line
// with -o json or -o yaml, for editors and CI.
type progress struct {
	f        *cmdutil.Factory
	stopSpin func()
	// state is where each workload stands, folded from the events so far.
	state *event.State
	// rollbackTo is the revision a rollback asked for (0: the previous).
	rollbackTo int
	// run tells this command's events from others' (-o json).
	run string
}

func newProgress(f *cmdutil.Factory) *progress {
	return &progress{f: f, state: &event.State{}, run: event.NewRun()}
}

func (p *progress) event(ev event.Event) {
	p.state.Apply(ev)
	errOut := p.f.IOStreams.ErrOut
	if o := p.f.Globals.Output; o == cmdutil.FormatJSON || o == cmdutil.FormatYAML {
		if ev.Run == "" {
			ev.Run = p.run
		}
		data, err := json.Marshal(ev)
		if err == nil {
			fmt.Fprintf(errOut, "%s\n", data)
		}
		return
	}
	cs := p.f.IOStreams.ColorScheme()
	switch ev.Kind {
	case event.BuildStarted:
		fmt.Fprintf(errOut, "Building %s (%s, %s) on %s\n", cs.Bold(ev.Workload), ev.Lang, strings.Join(ev.Platforms, ","), ev.Base)
	case event.Published:
		what := "built"
		if st, _ := p.state.Workload(ev.Workload); st.Steps[event.PhaseBuild] == "reused" {
			what = "unchanged, reused"
		}
		if !ev.Uploaded {
			what += ", " + destName(ev.Destination) + " already up to date"
		}
		fmt.Fprintf(errOut, "%s %s %s: %s (%s)\n", cs.SuccessIcon(), ev.Workload, what, ev.Reference, ev.Digest)
	case event.Signed:
		what := "signed"
		if !ev.Uploaded {
			what = "already signed"
		}
		fmt.Fprintf(errOut, "%s %s %s: %s\n", cs.SuccessIcon(), ev.Workload, what, ev.Message)
	case event.Verified:
		fmt.Fprintf(errOut, "%s %s verified (%s): %s\n", cs.SuccessIcon(), ev.Workload, shortImage(ev.Reference), ev.Message)
	case event.DeployStarted:
		which := "base chart"
		if ev.OwnChart {
			which = "its own chart"
		}
		env := ""
		if ev.Environment != "" {
			env = " (environment " + ev.Environment + ")"
		}
		fmt.Fprintf(errOut, "Deploying %s (%s) to %s%s with %s...\n", cs.Bold(ev.Workload), shortImage(ev.Image), ev.Namespace, env, which)
		p.stopSpin = p.f.IOStreams.StartProgress("waiting for " + ev.Workload + " to be ready")
	case event.Interrupted:
		p.spinDone()
		fmt.Fprintln(errOut, "Interrupted: stopping "+ev.Workload+"'s deploy, rolling back what it changed (Ctrl-C again to quit now and leave it pending)")
	case event.Deployed:
		p.spinDone()
		fmt.Fprintf(errOut, "%s %s ready: revision %d, %s pods, in %s\n", cs.SuccessIcon(), ev.Workload, ev.Revision, ev.Ready, ev.Duration.Round(time.Second))
		if ev.URL != "" {
			fmt.Fprintf(errOut, "  public at %s\n", ev.URL)
		}
	case event.Failed:
		p.spinDone()
		if ev.Release != "" && ev.Duration > 0 {
			fmt.Fprintf(errOut, "%s %s failed after %s\n", cs.FailureIcon(), ev.Workload, ev.Duration.Round(time.Second))
		}
	case event.RollbackStarted:
		p.rollbackTo = ev.Revision
		fmt.Fprintf(errOut, "Rolling %s back...\n", ev.Release)
		p.stopSpin = p.f.IOStreams.StartProgress("waiting for " + ev.Workload + " to be ready")
	case event.RolledBack:
		p.spinDone()
		to := "the previous revision"
		if p.rollbackTo > 0 {
			to = fmt.Sprintf("revision %d", p.rollbackTo)
		}
		fmt.Fprintf(errOut, "%s %s rolled back to %s (now revision %d)\n", cs.SuccessIcon(), ev.Workload, to, ev.Revision)
	case event.Deleted:
		switch what, name, _ := strings.Cut(ev.Object, "/"); what {
		case "release":
			fmt.Fprintf(errOut, "%s Deleted %s from namespace %s\n", cs.SuccessIcon(), ev.Workload, ev.Namespace)
		case "consumers":
			fmt.Fprintf(errOut, "%s Deleted the consumers of %s's triggers\n", cs.SuccessIcon(), ev.Workload)
		case "secret":
			fmt.Fprintf(errOut, "%s Deleted the secrets of %s\n", cs.SuccessIcon(), ev.Workload)
		case "pull-secret":
			fmt.Fprintf(errOut, "%s Deleted the pull secret %s\n", cs.SuccessIcon(), name)
		}
	case event.Notice:
		fmt.Fprintln(errOut, ev.Message)
	}
}

func (p *progress) spinDone() {
	if p.stopSpin != nil {
		p.stopSpin()
		p.stopSpin = nil
	}
}
