package event

import (
	"slices"
	"sync"
	"time"
)

// WorkloadState is where one workload stands, folded from its events: what
// a renderer that starts late (the dashboard attaching, dev's panel drawn
// anew) shows before the next event comes.
type WorkloadState struct {
	Workload string
	// Kind, Phase and Status are those of the workload's last step.
	Kind   Kind
	Phase  string
	Status string
	// Since is when the last step was reported.
	Since time.Time
	// Took is how long the last finished step took (0: none reported).
	Took time.Duration
	// Steps is the status of the last event of each phase ("build":
	// "reused", "deploy": "succeeded", ...).
	Steps map[string]string
	// Revision, Image and URL are the last ones reported.
	Revision int
	Image    string
	URL      string
	// Error is the last failure's message, until a step succeeds.
	Error string
}

// State folds events into the current state of each workload. Apply and
// the readers may be called from any goroutine. The zero State is empty
// and ready.
type State struct {
	mu    sync.Mutex
	order []string
	by    map[string]*WorkloadState
}

// Fold returns the state that events leave.
func Fold(events ...Event) *State {
	s := &State{}
	for _, ev := range events {
		s.Apply(ev)
	}
	return s
}

// Apply folds one event in. Events of no workload (the run's), log lines
// and notices change no workload's state.
func (s *State) Apply(ev Event) {
	if ev.Workload == "" || ev.Kind == Log || ev.Kind == Notice {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[string]*WorkloadState{}
	}
	w := s.by[ev.Workload]
	if w == nil {
		w = &WorkloadState{Workload: ev.Workload, Steps: map[string]string{}}
		s.by[ev.Workload] = w
		s.order = append(s.order, ev.Workload)
	}
	phase, status := ev.PhaseStatus()
	w.Kind, w.Phase, w.Status, w.Since = ev.Kind, phase, status, ev.Time
	w.Steps[phase] = status
	if ev.Duration > 0 {
		w.Took = ev.Duration
	}
	if ev.Revision > 0 {
		w.Revision = ev.Revision
	}
	if ev.Image != "" {
		w.Image = ev.Image
	}
	if ev.URL != "" {
		w.URL = ev.URL
	}
	switch msg := ev.ErrorText(); {
	case msg != "":
		w.Error = msg
	case status == "succeeded" || status == "unchanged" || status == "reused":
		w.Error = ""
	}
}

// Workload returns the state of one workload; ok is false when none of
// its events was folded in.
func (s *State) Workload(name string) (st WorkloadState, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.by[name]
	if w == nil {
		return WorkloadState{}, false
	}
	return w.copy(), true
}

// Workloads returns the state of every workload seen, in the order of
// their first events.
func (s *State) Workloads() []WorkloadState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WorkloadState, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, s.by[n].copy())
	}
	return out
}

func (w *WorkloadState) copy() WorkloadState {
	c := *w
	c.Steps = make(map[string]string, len(w.Steps))
	for k, v := range w.Steps {
		c.Steps[k] = v
	}
	return c
}

// Names returns the workloads seen, in the order of their first events.
func (s *State) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}
