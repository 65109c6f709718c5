package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/stats"
)

// servingFlags are the flags of the commands that print how workloads
// serve (status, top).
type servingFlags struct {
	Window     time.Duration
	Prometheus string
}

func (s *servingFlags) add(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&s.Window, "window", engine.DefaultWindow, "how far back the request figures go")
	cmd.Flags().StringVar(&s.Prometheus, "prometheus", "", "read the figures from this Prometheus (its base URL) instead of metrics.prometheus or the pods")
}

// check validates the flags alone.
func (s *servingFlags) check() error {
	if s.Window < 10*time.Second {
		return cmdutil.Usagef("--window %s is too short; use 10s or more, e.g. --window 5m", s.Window)
	}
	if s.Prometheus != "" {
		if why := project.CheckPrometheusURL(s.Prometheus); why != "" {
			return cmdutil.Usagef("--prometheus %s; give the base URL of a Prometheus, e.g. --prometheus http://127.0.0.1:9090", why)
		}
	}
	return nil
}

// checkFor validates the window against where the figures come from: the
// pods keep engine.PodsKeep.
func (s *servingFlags) checkFor(p *project.Project) error {
	if s.Prometheus == "" && p.Metrics.PrometheusURL() == "" && s.Window > engine.PodsKeep {
		return cmdutil.Usagef("--window %s is longer than the %s each pod keeps; use --window %s or less, or read a Prometheus (--prometheus URL, or metrics.prometheus in skiff.yaml)",
			s.Window, engine.PodsKeep, engine.PodsKeep)
	}
	return nil
}

func (s *servingFlags) options() engine.StatsOptions {
	return engine.StatsOptions{Window: s.Window, Prometheus: s.Prometheus}
}

// servingHeader are the columns -o wide adds.
const servingHeader = "RPS\tERR%\tP50\tP99\tCOLD STARTS\tEVENTS"

// servingCells are a workload's cells under servingHeader.
func servingCells(s *engine.Serving, lag *engine.EventLag) string {
	events := "-"
	if lag != nil {
		events = fmt.Sprintf("lag %d", lag.Lag)
		if lag.DeadLetters > 0 {
			events += fmt.Sprintf(", %d dead", lag.DeadLetters)
		}
	}
	switch {
	case s == nil:
		return "?\t?\t?\t?\t?\t" + events
	case s.Idle && s.Pods == 0:
		// No pod served in the window (none runs, read from the pods).
		return "idle\t-\t-\t-\t" + cold(s) + "\t" + events
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", stats.FormatRate(s.RPS), percent(s.ErrorPercent), seconds(s.P50), seconds(s.P99), cold(s), events)
}

// triggerRows are one row per trigger, under a workload's row: the
// deliveries' rate, failure share, latency and what became of the
// failures. cols is how many columns precede servingHeader's.
func triggerRows(w io.Writer, s *engine.Serving, cols int) {
	if s == nil {
		return
	}
	for _, t := range s.Triggers {
		failed := 0.0
		if n := t.Delivered + t.Failed; n > 0 {
			failed = 100 * float64(t.Failed) / float64(n)
		}
		fmt.Fprintf(w, "  └ %s%s\t%s\t%s\t%s\t%s\t-\t%s\n", t.Trigger, strings.Repeat("\t", cols-1),
			stats.FormatRate(t.PerSecond), percent(failed), seconds(t.P50), seconds(t.P99),
			fmt.Sprintf("%d delivered, %d retried, %d dead, lag %d", t.Delivered, t.Retried, t.DeadLettered, t.Pending))
	}
}

// servingNotes says, on stderr, what the figures leave out: workloads idle
// at zero pods, and pods whose figures could not be read.
// kept says since when the reader kept what it read ("": nothing).
func servingNotes(w io.Writer, workload string, s *engine.Serving, kept string) {
	if s == nil {
		return
	}
	if s.Source == engine.SourcePods && s.Pods == 0 && len(s.Unread) == 0 {
		if kept != "" {
			fmt.Fprintf(w, "%s: idle: no pod ran %s\n", workload, kept)
		} else {
			fmt.Fprintf(w, "%s: idle: no pod runs, so there is nothing served in the last %s to read (skiff top keeps what it saw while it runs; a Prometheus keeps it all: --prometheus)\n", workload, s.Window)
		}
	}
	for _, pod := range sortedKeys(s.Unread) {
		fmt.Fprintf(w, "%s: the figures of pod %s are left out: %s\n", workload, pod, s.Unread[pod])
	}
}

func percent(v float64) string {
	if v == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.1f%%", v)
}

// seconds writes a duration in seconds as a person reads it: "0.4ms",
// "3.7ms", "120ms", "1.25s"; "-" for none.
func seconds(v *float64) string {
	if v == nil {
		return "-"
	}
	return stats.FormatSeconds(*v)
}

// cold is the cold starts and their callers' mean wait: "1 (820ms)".
func cold(s *engine.Serving) string {
	if s.ColdStarts == 0 {
		return "0"
	}
	if s.ColdStartWait == nil {
		return fmt.Sprint(s.ColdStarts)
	}
	return fmt.Sprintf("%d (%s)", s.ColdStarts, stats.FormatSeconds(*s.ColdStartWait))
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
