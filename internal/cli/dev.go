package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/dev"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/project"
)

// DevOptions are the inputs of `skiff dev`.
type DevOptions struct {
	Factory   *cmdutil.Factory
	Workloads []string
	Local     bool
	Keep      bool
	NoSync    bool
	KeepWarm  bool
	Timeout   time.Duration
	Insecure  []string
	NoTUI     bool
}

// DefaultDevTimeout bounds how long a new version has to get ready on the
// cluster before dev gives up on it (and deploy rolls it back).
const DefaultDevTimeout = 90 * time.Second

// NewCmdDev builds `skiff dev`. runF replaces devRun in tests.
func NewCmdDev(f *cmdutil.Factory, runF func(context.Context, *DevOptions) error) *cobra.Command {
	opts := &DevOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "dev [WORKLOAD...]",
		GroupID: "ship",
		Short:   "The inner loop: save a file, see the new code answer",
		Long: heredoc.Doc(`
			Run the named workloads (default: all of the project) and keep them
			current: watch their sources (what their build reads: .skiffignore and
			.gitignore are honoured; .git, node_modules, virtualenvs and build outputs
			are not watched) and skiff.yaml; when a burst of saves settles, rebuild
			only the workloads whose files changed and replace what runs of them.
			A compile error, a failed npm or pip step, or a skiff.yaml that does not
			load is shown in full, the version that ran before keeps serving, and
			the next save tries again.

			On the cluster (the default), dev deploys through the same pipeline as
			skiff deploy, in the namespace of skiff.yaml (or -n, or --env): build,
			push to the project's registry, upgrade the release and wait until its
			new pods are ready, with probes asked every second. A skiff.yaml edit that
			changes no image (env, config, replicas) redeploys without a rebuild. The
			logs of every pod of the watched workloads stream on stdout through each
			rollout, and each workload answers on a stable local port printed at
			start (its container port plus 10000 when free), forwarded to its newest
			ready pod. A version that crashes or never gets ready is shown with why,
			and rolled back by deploy: the previous pods keep serving.

			Live updates: with a skiff-relay image (skiff.yaml's events.relayImage,
			$SKIFF_RELAY_IMAGE, or the one a release of skiff pins), dev's pods run
			the workload under skiff-relay supervise, from a writable copy of its
			app folder. When a new image differs from what the pods run in its app
			folder alone (same base, entrypoint, environment and settings), dev
			sends the changed files into each running pod, which restarts the
			process on them and answers once it is ready; a version that does not
			get ready is shown and the pod serves the old files again. Anything
			else, a pod that started since, or a workload with scale or autoscale
			(whose pods come and go on their own) takes a rollout. --no-sync always
			rolls out.

			Ctrl-C stops watching and leaves the cluster as dev found it: releases
			dev installed are uninstalled, releases that existed are rolled back to
			the revision they had (--keep leaves them as they are). A second Ctrl-C
			quits at once and says what it left.

			With --local the workloads run on this machine, as skiff run runs them:
			Go is built with go build, TypeScript with npm run build, Node.js and
			Python restart. Each answers on its own port. A project with events
			gets a bus inside skiff (NATS JetStream, stored in .skiff/): its
			streams and consumers as a deploy makes them, the relay's deliveries,
			schedules and K_SINK, for skiff events to publish, tail and replay
			(events.bus is for deploy, and may be left out). A config edit of a
			liveConfig workload reaches it without a restart. A scale.min 0
			workload starts on its first request or event and stops after
			scale.idle (--keep-warm runs it all the time).

			On a terminal, a line per workload (its state, how long its last cycle
			took, where it answers) stays below the logs and messages, which scroll
			above it. Without a terminal, or with --no-tui, the logs go to stdout and
			the loop's events to stderr, one a line (one JSON object a line with
			-o json, as are the logs).
		`),
		Example: heredoc.Doc(`
			skiff dev
			skiff dev orders payments -e staging
			skiff dev --keep
			skiff dev --local
			skiff dev --local -o json
			skiff dev --local --keep-warm
		`),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			if err := checkTimeout(opts.Timeout); err != nil {
				return err
			}
			if opts.Local && opts.Keep {
				return cmdutil.Usagef("--keep is for the cluster: with --local, Ctrl-C stops the workloads")
			}
			if opts.KeepWarm && !opts.Local {
				return cmdutil.Usagef("--keep-warm is for --local: on the cluster, set scale.min 1 in an environment to keep a pod")
			}
			if opts.Local && opts.NoSync {
				return cmdutil.Usagef("--no-sync is for the cluster: with --local, every change restarts the process")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return devRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Local, "local", false, "run the workloads on this machine, without a cluster")
	fl.BoolVar(&opts.Keep, "keep", false, "on Ctrl-C, leave the releases as dev deployed them")
	fl.BoolVar(&opts.KeepWarm, "keep-warm", false, "with --local, run scale.min 0 workloads all the time instead of on their first request or event")
	fl.BoolVar(&opts.NoSync, "no-sync", false, "roll out new pods for every change, instead of putting new app files into the running ones")
	fl.DurationVar(&opts.Timeout, "timeout", DefaultDevTimeout, "how long a new version may take to be ready on the cluster")
	fl.StringArrayVar(&opts.Insecure, "insecure-registry", nil, "allow plain HTTP to this registry host (loopback hosts always are)")
	fl.BoolVar(&opts.NoTUI, "no-tui", false, "plain lines, one event a line, even on a terminal")
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func devRun(ctx context.Context, opts *DevOptions) error {
	f := opts.Factory
	pc, err := loadProjectContext(f, opts.Workloads)
	if err != nil {
		return err
	}
	names := make([]string, len(pc.workloads))
	for i, w := range pc.workloads {
		names[i] = w.Name
	}
	parent := ctx
	ctx, stopSession := context.WithCancel(ctx)
	defer stopSession()
	intr := catchInterrupts(parent, stopSession, f.Quit)
	defer intr.close()
	run := event.NewRun()
	out := newDevOutput(f, opts.NoTUI, names, intr.interrupt, run)
	defer out.stop()
	events := &dev.Emitter{Sink: out.event, Run: run}
	s := &dev.Session{
		Project:   pc.project,
		Root:      pc.root,
		Manifest:  filepath.Join(pc.root, project.FileName),
		Workloads: names,
		Load: func() (*project.Project, error) {
			_, p, err := loadProject(f)
			return p, err
		},
		Events: events,
		// A change under a Go replace folder cycles every workload built from it.
		Outside: (&build.Builder{}).OutsideInputs,
	}
	if !opts.Local {
		return devCluster(ctx, opts, pc, s, out, intr)
	}
	if err := checkPorts(pc.workloads); err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "skiff-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	local := &dev.Local{Project: pc.project, Root: pc.root, Logs: out.logs, LogEvents: out.logEvents, BinDir: bin, Events: events,
		KeepWarm: opts.KeepWarm}
	if dev.HasEvents(pc.project) {
		lb, err := f.DevLocalBus(ctx, engine.DevBusConfig{Root: pc.root, Project: pc.project, Workloads: names,
			Logs: out.logs, LogEvents: out.logEvents, KeepWarm: opts.KeepWarm})
		if err != nil {
			return err
		}
		defer lb.Close()
		local.Bus = lb
		fmt.Fprintln(out.messages, localBusNotice(pc.project, lb))
	}
	s.Runner = local
	fmt.Fprintf(out.messages, "Watching %s — Ctrl-C stops\n", strings.Join(names, ", "))
	return s.Run(ctx)
}

// localBusNotice says where dev --local's bus is, and that skiff.yaml's
// events.bus is not it.
func localBusNotice(p *project.Project, lb engine.DevBus) string {
	at := lb.Info()
	ignored := ""
	if p.Events != nil && p.Events.Bus != "" {
		ignored = " (events.bus " + p.Events.Bus + " is for deploy: not used locally)"
	}
	return fmt.Sprintf("Events: a bus in this process at %s, stream %s%s; K_SINK %s; skiff events and skiff invoke --event find it", at.URL, at.Stream, ignored, at.Sink)
}

// devCluster is the loop on the cluster: forwards and logs for the whole
// session, a deploy per cycle, and the cluster restored at the end.
func devCluster(ctx context.Context, opts *DevOptions, pc *projectContext, s *dev.Session, out *devOutput, intr *interrupts) error {
	f := opts.Factory
	if pc.project.Registry == "" {
		return cmdutil.Manifestf("skiff.yaml names no registry the cluster can pull from%s; add `registry: HOST/PATH`, or use skiff dev --local", envSuffix(pc.project))
	}
	if !f.Globals.Verbose {
		// client-go reports, through klog on stderr, each connection that
		// reached a pod as it stopped during a rollout: noise in the loop's
		// output (the next connection goes to the new pod). -v keeps them.
		defer klog.CaptureState().Restore()
		klog.SetOutput(io.Discard)
		klog.LogToStderr(false)
	}
	es, err := pc.session(ctx, f, devNotices(out, s.Events))
	if err != nil {
		return err
	}
	defer es.Close()
	if err := es.Preflight(ctx, pc.workloads); err != nil {
		return preflightErr(err)
	}
	bopts := &BuildOptions{Factory: f, Workloads: s.Workloads, Push: true, SBOM: "none", Tag: "dev", Insecure: opts.Insecure}
	plan, err := planBuild(bopts, pc)
	if err != nil {
		return err
	}
	cfg, err := buildConfig(f, bopts, plan)
	if err != nil {
		return err
	}
	if cfg.CheckKey, err = devKey(f, pc); err != nil {
		return err
	}
	dcfg := engine.DevConfig{Project: pc.project, Root: pc.root, Workloads: pc.workloads, Build: cfg,
		Pull: pullOptions(f, opts.Insecure), Timeout: opts.Timeout, Events: s.Events}
	if img := relayImage(f, pc.project); img != "" && !opts.NoSync {
		dcfg.SyncImage = img
	}
	cl, err := f.DevCluster(ctx, es, dcfg)
	if err != nil {
		return adviseBuild(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	stopForwards, err := cl.Forward(runCtx)
	if err != nil {
		return err
	}
	logsDone := devLogs(runCtx, f, es, pc, out)
	s.Runner = cl
	fmt.Fprintf(out.messages, "Watching %s in namespace %s — Ctrl-C stops and restores the cluster\n", strings.Join(s.Workloads, ", "), pc.namespace)
	runErr := s.Run(runCtx)
	stopRun()
	stopForwards()
	<-logsDone

	intr.sessionOver()
	if !opts.Keep {
		fmt.Fprintln(out.messages, "Restoring the cluster as dev found it (Ctrl-C again quits at once)")
	}
	left := cl.Restore(intr.restore, opts.Keep, opts.Timeout)
	if runErr != nil {
		return runErr
	}
	if left > 0 && !opts.Keep {
		return fmt.Errorf("%d release(s) left as dev deployed them, named above; `skiff history` and `skiff rollback`, or `skiff delete`, put them back", left)
	}
	return nil
}

// interrupts counts dev's interrupts: main's (its context ends at the
// first signal, Quit closes at the second; dev installs no handler of its
// own) and the panel's Ctrl-C keys (the terminal is raw while it runs).
// The first ends the session; the next one (or the first, once the session
// is over by itself) cuts the restore short, so dev quits at once and says
// what it left.
type interrupts struct {
	// restore ends on the interrupt that cuts the restore short.
	restore context.Context
	cut     context.CancelFunc
	keys    chan struct{}
	over    chan struct{}
	done    chan struct{}
	ended   chan struct{}
	once    sync.Once
	// parent is main's context; byInterrupt says whether it had ended
	// (the first signal) when the session did.
	parent      context.Context
	byInterrupt bool
}

func catchInterrupts(parent context.Context, stopSession func(), quit <-chan struct{}) *interrupts {
	i := &interrupts{keys: make(chan struct{}, 2), over: make(chan struct{}), done: make(chan struct{}),
		ended: make(chan struct{}), parent: parent}
	i.restore, i.cut = context.WithCancel(context.Background())
	go func() {
		defer close(i.ended)
		signalled := parent.Done()
		seen := 0
		for {
			select {
			case <-i.done:
				return
			case <-quit: // the second signal
				i.cut()
				return
			case <-signalled: // the first signal
				signalled = nil
				if i.isOver() && !i.byInterrupt {
					i.cut() // the session was over by itself: it cuts the restore
					return
				}
				seen++ // it ended the session (main's context is the session's)
				continue
			case <-i.keys:
			}
			seen++
			if interruptAction(seen, i.isOver()) == cutTheRestore {
				i.cut()
				return
			}
			stopSession()
		}
	}()
	return i
}

type interruptActions int

const (
	stopTheSession interruptActions = iota
	cutTheRestore
)

// interruptAction is what the seen-th interrupt does: the first stops the
// session, the next cuts the restore short; once the session is over by
// itself, the first cuts it too.
func interruptAction(seen int, over bool) interruptActions {
	if seen == 1 && !over {
		return stopTheSession
	}
	return cutTheRestore
}

func (i *interrupts) isOver() bool {
	select {
	case <-i.over:
		return true
	default:
		return false
	}
}

// interrupt is a Ctrl-C typed on the panel.
func (i *interrupts) interrupt() {
	select {
	case i.keys <- struct{}{}:
	default:
	}
}

// sessionOver says the next interrupt cuts the restore.
func (i *interrupts) sessionOver() {
	i.once.Do(func() {
		i.byInterrupt = i.parent.Err() != nil
		close(i.over)
	})
}

func (i *interrupts) close() {
	i.cut()
	close(i.done)
	<-i.ended
}

// devLogs follows the logs of every pod of the workloads, from now on,
// through each rollout; the channel closes when it has stopped.
func devLogs(ctx context.Context, f *cmdutil.Factory, sess engine.Session, pc *projectContext, out *devOutput) <-chan struct{} {
	lines := make(chan engine.LogLine, 256)
	done := make(chan struct{})
	go func() {
		_ = sess.Logs(ctx, pc.workloads, engine.LogOptions{Follow: true, Since: time.Second, Tail: -1,
			Notice: func(s string) { fmt.Fprintln(out.messages, "skiff dev: logs:", s) }}, lines)
		close(lines)
	}()
	go func() {
		defer close(done)
		if out.logEvents != nil {
			for l := range lines {
				out.logEvents.Emit(event.Event{Kind: event.Log, Workload: l.Workload, Pod: l.Pod, Container: l.Container, Message: l.Message})
			}
			return
		}
		if err := printLogs(f, out.logs, lines, "", len(pc.workloads) > 1); err != nil {
			for range lines { // stdout is gone: drain
			}
		}
	}()
	return done
}

// checkPorts refuses two workloads on one port: on this machine, each
// listens on its own.
func checkPorts(ws []project.Workload) error {
	seen := map[int]string{}
	for _, w := range ws {
		if other, ok := seen[w.Port]; ok {
			return cmdutil.Manifestf("%s and %s both listen on port %d; on this machine each needs its own: give one another port in skiff.yaml", other, w.Name, w.Port)
		}
		seen[w.Port] = w.Name
	}
	return nil
}

// devNotices prints the session's notices (a namespace created, the pull
// Secret) among dev's messages.
func devNotices(out *devOutput, events *dev.Emitter) func(event.Event) {
	return func(ev event.Event) {
		switch {
		case ev.Kind == event.Notice:
			fmt.Fprintln(out.messages, ev.Message)
		case out.logEvents != nil:
			events.Emit(ev) // -o json: every event of the session
		}
	}
}

// devPrinter renders the loop's events on errOut, a line each (-o json:
// newDevOutput writes them as JSON lines instead).
func devPrinter(f *cmdutil.Factory, errOut io.Writer) func(dev.Event) {
	cs := f.IOStreams.ColorScheme()
	return func(ev dev.Event) {
		switch ev.Kind {
		case dev.Watching:
			fmt.Fprintf(errOut, "  %s  %s\n", cs.Bold(ev.Workload), ev.URL)
		case dev.CycleStarted:
			fmt.Fprintf(errOut, "Building %s...\n", ev.Workload)
		case dev.Ready:
			rev := ""
			if ev.Revision > 0 {
				rev = fmt.Sprintf(" (revision %d)", ev.Revision)
			}
			fmt.Fprintf(errOut, "%s %s ready in %s at %s%s\n", cs.SuccessIcon(), ev.Workload, ev.Duration.Round(time.Millisecond), ev.URL, rev)
		case dev.Unchanged:
			fmt.Fprintf(errOut, "%s %s unchanged, still at %s\n", cs.SuccessIcon(), ev.Workload, ev.URL)
		case event.Deployed:
			// On the cluster: where an exposed workload is public, as deploy says it.
			if ev.URL != "" {
				fmt.Fprintf(errOut, "  %s public at %s\n", ev.Workload, ev.URL)
			}
		case dev.Failed:
			fmt.Fprintf(errOut, "%s %s: %s\n", cs.FailureIcon(), ev.Workload, ev.Error)
			if out := strings.TrimRight(ev.Output, "\n"); out != "" {
				fmt.Fprintf(errOut, "  %s\n", strings.ReplaceAll(out, "\n", "\n  "))
			}
		case dev.Exited:
			fmt.Fprintf(errOut, "%s %s: %s\n", cs.WarningIcon(), ev.Workload, ev.Error)
		case dev.ManifestError:
			fmt.Fprintf(errOut, "%s %s\n", cs.FailureIcon(), ev.Error)
		case dev.Stopped:
			fmt.Fprintf(errOut, "Stopped %s\n", ev.Workload)
		case event.Notice:
			fmt.Fprintln(errOut, ev.Message)
		case dev.Restored:
			fmt.Fprintf(errOut, "%s %s: back to revision %d\n", cs.SuccessIcon(), ev.Release, ev.Revision)
		case dev.Removed:
			fmt.Fprintf(errOut, "%s %s: uninstalled (dev installed it)\n", cs.SuccessIcon(), ev.Release)
		case dev.Left:
			name := ev.Release
			if name == "" {
				name = ev.Workload
			}
			fmt.Fprintf(errOut, "%s %s left as dev deployed it: %s\n", cs.WarningIcon(), name, ev.Error)
		}
	}
}
