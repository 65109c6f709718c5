package target

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffdev/skiff/internal/deploy"
)

// WaitRolledOut waits until every Deployment of rel has rolled out: its
// newest spec observed, all its pods updated and ready, none of the old
// ones left. It watches rather than polls, so it returns as soon as the
// last pod is ready (Helm's own wait looks every 2 s). ctx bounds it.
func WaitRolledOut(ctx context.Context, cs kubernetes.Interface, rel *deploy.Record) error {
	names, err := deployments(rel.Manifest)
	if err != nil {
		return fmt.Errorf("reading the manifest of %s: %w", rel.Name, err)
	}
	for _, name := range names {
		if err := waitDeployment(ctx, cs, rel.Namespace, name); err != nil {
			return err
		}
	}
	return nil
}

func waitDeployment(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	deps := cs.AppsV1().Deployments(ns)
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
	err := watchUntil(ctx,
		func() (watch.Interface, error) { return deps.Watch(ctx, opts) },
		func() (runtime.Object, error) { return deps.Get(ctx, name, metav1.GetOptions{}) },
		func(o runtime.Object) bool { d, ok := o.(*appsv1.Deployment); return ok && d.Name == name && ready(d) })
	if err != nil {
		return waitErr(ctx, ns, name, err)
	}
	return nil
}

// watchUntil waits until done is true of the object get reads or a watch
// reports. It watches, then reads, so a change in between arrives on the
// watch; a watch the server ends is started again. A missing object is
// waited for. ctx bounds it: its error is then ctx's.
func watchUntil(ctx context.Context, watchFn func() (watch.Interface, error), get func() (runtime.Object, error), done func(runtime.Object) bool) error {
	for {
		w, err := watchFn()
		if err != nil {
			return err
		}
		o, err := get()
		if err == nil && done(o) {
			w.Stop()
			return nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			w.Stop()
			return err
		}
		ended := false
		for !ended {
			select {
			case <-ctx.Done():
				w.Stop()
				return ctx.Err()
			case ev, ok := <-w.ResultChan():
				if !ok {
					ended = true
					break
				}
				if ctx.Err() != nil {
					break // cancelled as the event came: ctx decides
				}
				if ev.Type != watch.Deleted && done(ev.Object) {
					w.Stop()
					return nil
				}
			}
		}
		w.Stop()
	}
}

// ready: rolled out, and every pod ready.
func ready(dep *appsv1.Deployment) bool {
	return rolledOut(dep) && dep.Status.ReadyReplicas == desired(dep) && dep.Status.AvailableReplicas == desired(dep)
}

func waitErr(ctx context.Context, ns, name string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("deployment %s/%s is not ready: %w", ns, name, context.Cause(ctx))
	}
	return fmt.Errorf("waiting for deployment %s/%s: %w", ns, name, err)
}
