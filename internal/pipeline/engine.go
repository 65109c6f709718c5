package pipeline

import (
	"context"
	"errors"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/logs"
	"github.com/skiffdev/skiff/internal/project"
)

// Engine returns s as the command layer sees it (engine.Session).
func (s *Session) Engine() engine.Session { return &engineSession{s} }

// Unwrap returns the Session behind es, for what still drives it directly
// (the dashboard's backend and the bus's dial of a Service of the
// cluster, both in package factory; dev's cluster runner, in the command
// layer until it moves there too); es must come from Engine.
func Unwrap(es engine.Session) (*Session, error) {
	if e, ok := es.(*engineSession); ok {
		return e.Session, nil
	}
	return nil, errors.New("this command needs a session on a real cluster")
}

// engineSession adapts a Session to engine.Session: the methods whose
// shapes differ are here, the others are the Session's own.
type engineSession struct{ *Session }

var _ engine.Session = (*engineSession)(nil)

func (e *engineSession) Plan(ctx context.Context, ws []project.Workload, given map[string]string, reuse bool) (map[string]string, []project.Workload, error) {
	return e.Pipeline.Plan(ctx, e.Deployer, ws, given, reuse)
}

func (e *engineSession) Deploy(ctx context.Context, o engine.DeployOptions, ws []project.Workload, images map[string]string) ([]Deployment, error) {
	return e.Pipeline.Deploy(ctx, e.Releases(WithPullSecret(o.Overrides, o.PullSecret), o.Timeout), ws, images)
}

func (e *engineSession) Forward(ctx context.Context, workload string) (*engine.Forward, error) {
	fw, err := e.Session.Forward(ctx, workload)
	if err != nil {
		return nil, err
	}
	return &engine.Forward{Addr: fw.Addr, Host: fw.Host, Via: fw.Via, Close: fw.Close}, nil
}

func (e *engineSession) Logs(ctx context.Context, ws []project.Workload, o engine.LogOptions, lines chan<- engine.LogLine) error {
	var ts []logs.Target
	for _, t := range e.Targets.All(ws) {
		ts = append(ts, logs.Target{Workload: t.Workload(), Selector: t.Selector()})
	}
	return logs.New(e.Kube.Clientset).Stream(ctx, logs.Options{
		Namespace: e.Namespace(), Targets: ts, Container: o.Container, Since: o.Since, Tail: o.Tail,
		Follow: o.Follow, Previous: o.Previous, MaxStreams: o.MaxStreams, Notice: o.Notice,
	}, lines)
}
