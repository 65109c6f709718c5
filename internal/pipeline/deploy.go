package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/project"
)

// Releaser runs Helm releases; *deploy.Deployer is the real one.
type Releaser interface {
	Deploy(ctx context.Context, r deploy.Release, workload string) (*deploy.Result, error)
	LastGoodRelease(ctx context.Context, name, namespace string) (*deploy.Record, error)
}

// Readiness is how many pods of a deployed workload are ready, and where
// it is reached in the cluster.
type Readiness struct {
	Ready, Desired int32
	Endpoint       string
	// URL is its public URL, when it is exposed.
	URL string
}

// Releases says how releases are deployed.
type Releases struct {
	Releaser Releaser
	// Overrides are the user's chart values, over skiff's.
	Overrides map[string]any
	// Timeout bounds the wait for each release to be ready.
	Timeout time.Duration
	// Readiness reads a deployed workload's pods (nil: not reported).
	Readiness func(ctx context.Context, w *project.Workload) (*Readiness, error)
	// Bus readies the event bus for each workload of a project with
	// events, before its release (nil: the project has none).
	Bus Subscriber
}

// Subscriber readies the project's event bus for a workload: its stream,
// and a durable consumer per trigger, which hold the workload's events
// from then on, whether its pods run yet or not.
type Subscriber interface {
	Subscribe(ctx context.Context, w *project.Workload) error
}

// BusUsers, when a Subscriber is one, gives the chart values of the
// workload's bus users (events.auth), minted for its release.
type BusUsers interface {
	Users(ctx context.Context, w *project.Workload) (map[string]any, error)
}

// Deployment is one deployed release.
type Deployment = engine.Deployment

// NoDeployedImageError says a workload has no deployed image to reuse.
type NoDeployedImageError = engine.NoDeployedImageError

// Plan says, for each workload, the image it gets: the one given, else
// (with reuse) the one its last good release runs, else none: those are
// returned in build, to be built.
func (p *Pipeline) Plan(ctx context.Context, r Releaser, ws []project.Workload, given map[string]string, reuse bool) (images map[string]string, build []project.Workload, err error) {
	images = map[string]string{}
	for _, w := range ws {
		switch {
		case given[w.Name] != "":
			images[w.Name] = given[w.Name]
		case reuse:
			rel, err := r.LastGoodRelease(ctx, p.Release(&w), p.Project.Namespace)
			var nf *deploy.NotFoundError
			if errors.As(err, &nf) || (err == nil && deploy.ImageOf(rel) == "") {
				return nil, nil, &NoDeployedImageError{Workload: w.Name}
			}
			if err != nil {
				return nil, nil, err
			}
			images[w.Name] = deploy.ImageOf(rel)
		default:
			build = append(build, w)
		}
	}
	return images, build, nil
}

// Release is the Helm release of a workload.
func (p *Pipeline) Release(w *project.Workload) string {
	return chart.ReleaseName(p.Project, w)
}

// Values are the chart values of a workload's release: skiff's (from the
// manifest and the environment), then the user's overrides.
func (p *Pipeline) Values(w *project.Workload, image string, overrides map[string]any) map[string]any {
	return chart.Merge(chart.Values(p.Project, w, p.Project.Namespace, image), overrides)
}

// Deploy installs or upgrades the release of each workload of ws, in the
// order given (dependency order), each with its image, waiting for each
// to be ready before the next. It stops at the first failure.
func (p *Pipeline) Deploy(ctx context.Context, r Releases, ws []project.Workload, images map[string]string) ([]Deployment, error) {
	var out []Deployment
	for _, w := range ws {
		d, err := p.DeployValues(ctx, r, &w, images[w.Name], p.Values(&w, images[w.Name], r.Overrides))
		if err != nil {
			return out, err
		}
		out = append(out, *d)
	}
	return out, nil
}

// DeployValues deploys one workload's release with exactly vals (config
// --apply starts from what runs).
func (p *Pipeline) DeployValues(ctx context.Context, r Releases, w *project.Workload, image string, vals map[string]any) (*Deployment, error) {
	ns := p.Project.Namespace
	rel := p.Release(w)
	c, own, err := chart.Load(p.Root, w)
	if err != nil {
		p.emit(Event{Kind: Failed, Phase: event.PhaseDeploy, Workload: w.Name, Err: err})
		return nil, err
	}
	start := p.now()
	p.emit(Event{Kind: DeployStarted, Workload: w.Name, Environment: p.Project.Env, Namespace: ns, Release: rel, Image: image, OwnChart: own})
	// Said as the user interrupts (the rollback follows), and always
	// before what the deploy then reports.
	said := make(chan struct{})
	stopSaying := context.AfterFunc(ctx, func() {
		defer close(said)
		p.emit(Event{Kind: Interrupted, Workload: w.Name, Release: rel, Namespace: ns})
	})
	interrupted := func() {
		if !stopSaying() {
			<-said
		}
	}
	if r.Bus != nil {
		if err := r.Bus.Subscribe(ctx, w); err != nil {
			interrupted()
			err = fmt.Errorf("readying the event bus for %s: %w", w.Name, err)
			p.emit(Event{Kind: Failed, Workload: w.Name, Release: rel, Namespace: ns, Err: err})
			return nil, err
		}
		if u, ok := r.Bus.(BusUsers); ok {
			ev, err := u.Users(ctx, w)
			if err != nil {
				interrupted()
				err = fmt.Errorf("the bus users of %s: %w", w.Name, err)
				p.emit(Event{Kind: Failed, Workload: w.Name, Release: rel, Namespace: ns, Err: err})
				return nil, err
			}
			if ev != nil {
				vals = chart.Merge(vals, map[string]any{"events": ev})
			}
		}
	}
	desc := "skiff deploy " + image
	if p.Project.Env != "" {
		desc += " (environment " + p.Project.Env + ")"
	}
	res, err := r.Releaser.Deploy(ctx, deploy.Release{Name: rel, Namespace: ns, Chart: c, Values: vals,
		Timeout: r.Timeout, Description: desc}, w.Name)
	interrupted()
	if err != nil {
		p.emit(Event{Kind: Failed, Workload: w.Name, Release: rel, Namespace: ns, Duration: p.since(start), Err: err})
		return nil, err
	}
	d := &Deployment{Workload: w.Name, Environment: p.Project.Env, Release: rel, Namespace: ns, Revision: res.Revision, Image: image}
	if r.Readiness != nil {
		st, err := r.Readiness(ctx, w)
		if err != nil {
			p.emit(Event{Kind: Failed, Workload: w.Name, Release: rel, Namespace: ns, Duration: p.since(start), Err: err})
			return nil, err
		}
		d.Ready, d.Endpoint, d.URL = fmt.Sprintf("%d/%d", st.Ready, st.Desired), st.Endpoint, st.URL
	}
	p.emit(Event{Kind: Deployed, Workload: w.Name, Environment: p.Project.Env, Release: rel, Namespace: ns, Image: image,
		Revision: res.Revision, Ready: d.Ready, URL: d.URL, Duration: p.since(start)})
	return d, nil
}

// Rendered is the YAML of one workload's release.
type Rendered = engine.Rendered

// Render renders the release of each workload of ws with its image and
// the overrides, as a deploy would apply it, without a cluster.
func (p *Pipeline) Render(ctx context.Context, ws []project.Workload, images map[string]string, overrides map[string]any) ([]Rendered, error) {
	var out []Rendered
	for _, w := range ws {
		c, _, err := chart.Load(p.Root, &w)
		if err != nil {
			return nil, err
		}
		rel := p.Release(&w)
		y, err := chart.Render(ctx, c, p.Values(&w, images[w.Name], overrides), rel, p.Project.Namespace)
		if err != nil {
			return nil, err
		}
		env := ""
		if p.Project.Env != "" {
			env = ", environment " + p.Project.Env
		}
		doc := fmt.Sprintf("# skiff render: workload %s, release %s, namespace %s%s\n%s", w.Name, rel, p.Project.Namespace, env,
			strings.TrimPrefix(y, "---\n"))
		out = append(out, Rendered{Workload: w.Name, Release: rel, YAML: doc})
	}
	return out, nil
}
