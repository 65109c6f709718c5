package target

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
)

// The serverless engines' APIs skiff's base chart uses for `scale`.
var (
	ScaledObjects     = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}
	InterceptorRoutes = schema.GroupVersionResource{Group: "http.keda.sh", Version: "v1beta1", Resource: "interceptorroutes"}
)

// Scaled is a workload of skiff's base chart with `scale`: KEDA owns its
// Deployment's replica count, down to zero, and its Service leads to the
// KEDA HTTP add-on's interceptor, which holds requests while it wakes.
type Scaled struct{ Deployment }

// Status reads the Deployment, its pods and its ScaledObject. At zero pods
// by design it is Idle; a ScaledObject KEDA does not accept makes it
// Degraded, however many pods run.
func (s *Scaled) Status(ctx context.Context, rel *deploy.Record) (*Status, error) {
	st, err := s.Deployment.Status(ctx, rel)
	if err != nil || rel == nil {
		return st, err
	}
	sc := s.w.Scale
	on := "on request"
	if len(s.w.Triggers) > 0 {
		on = "on request or event"
	}
	st.Scaling = fmt.Sprintf("%d-%d pods %s", sc.Min, sc.Max, on)
	if s.c.Dynamic == nil {
		return st, nil
	}
	so, err := s.c.Dynamic.Resource(ScaledObjects).Namespace(s.c.Namespace).Get(ctx, s.w.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		st.State = StateDegraded
		st.Problems = append(st.Problems, kube.PodProblem{Reason: "NoScaledObject",
			Message: fmt.Sprintf("the release has no ScaledObject %s: nothing scales it; deploy it again", s.w.Name)})
	case err != nil:
		// Reading KEDA's objects may be forbidden; the pods still tell.
	default:
		if ok, msg := condition(so, "Ready"); !ok && msg != "" {
			st.State = StateDegraded
			st.Problems = append(st.Problems, kube.PodProblem{Reason: "ScaledObjectNotReady", Message: "KEDA: " + msg})
		}
	}
	return st, nil
}

// condition returns whether o's condition typ is True, and its message
// when it is not ("" when the condition is not there yet).
func condition(o *unstructured.Unstructured, typ string) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != typ {
			continue
		}
		if m["status"] == "True" {
			return true, ""
		}
		msg, _ := m["message"].(string)
		reason, _ := m["reason"].(string)
		return false, strings.TrimSpace(reason + ": " + msg)
	}
	return false, ""
}

// MissingEngineError says the cluster lacks what scaled workloads need.
type MissingEngineError struct {
	Workloads []string // the scaled workloads
	Missing   []string // what is not there
}

func (e *MissingEngineError) Error() string {
	return fmt.Sprintf("`scale:` of %s in skiff.yaml needs KEDA and its HTTP add-on on the cluster, and it lacks %s; "+
		"install KEDA v2.21+ and the KEDA HTTP add-on v0.15+ (docs/serverless.md says how), or remove `scale:`",
		strings.Join(e.Workloads, ", "), strings.Join(e.Missing, "; "))
}

// CheckEngines fails with a *MissingEngineError when a workload of ws
// scales with KEDA and the cluster lacks KEDA's ScaledObject API, the HTTP
// add-on's InterceptorRoute API or the add-on's interceptor, and with a
// *MissingEdgeError when an exposed one needs Gateway API or cert-manager
// and the cluster lacks it. It changes nothing, so deploy can run it
// before it does.
func (c *Cluster) CheckEngines(ctx context.Context, ws []project.Workload) error {
	if err := c.CheckKEDA(ctx, ws); err != nil {
		return err
	}
	if err := c.checkEdge(ws); err != nil {
		return err
	}
	return c.checkGatewaysExist(ctx, ws)
}

// CheckKEDA is CheckEngines without the edge: KEDA and its HTTP add-on
// for the scaled workloads of ws.
func (c *Cluster) CheckKEDA(ctx context.Context, ws []project.Workload) error {
	var scaled []string
	for _, w := range ws {
		if w.Scale != nil && !hasOwnChart(c.Root, &w) {
			scaled = append(scaled, w.Name)
		}
	}
	if len(scaled) == 0 {
		return nil
	}
	var missing []string
	for _, api := range []struct {
		gvr  schema.GroupVersionResource
		what string
	}{
		{ScaledObjects, "the " + ScaledObjects.GroupVersion().String() + " ScaledObject API (KEDA)"},
		{InterceptorRoutes, "the " + InterceptorRoutes.GroupVersion().String() + " InterceptorRoute API (the KEDA HTTP add-on)"},
	} {
		ok, err := c.serves(api.gvr)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, api.what)
		}
	}
	_, err := c.Clientset.CoreV1().Services(chart.InterceptorNamespace).Get(ctx, chart.InterceptorService, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		missing = append(missing, fmt.Sprintf("the add-on's interceptor (Service %s in namespace %s)", chart.InterceptorService, chart.InterceptorNamespace))
	case apierrors.IsForbidden(err):
		// Not allowed to look: the APIs being there is what can be known.
	case err != nil:
		return fmt.Errorf("looking for the KEDA HTTP add-on's interceptor: %w", err)
	}
	if len(missing) > 0 {
		return &MissingEngineError{Workloads: scaled, Missing: missing}
	}
	return nil
}

// serves reports whether the API server serves resource gvr.
func (c *Cluster) serves(gvr schema.GroupVersionResource) (bool, error) {
	list, err := c.Clientset.Discovery().ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("asking the cluster for %s: %w", gvr.GroupVersion(), err)
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true, nil
		}
	}
	return false, nil
}

// Front forwards a free loopback port to a ready pod of the KEDA HTTP
// add-on's interceptor, on the port its proxy Service leads to; requests
// must carry Host: <workload>.<namespace> to be routed, and wake the
// workload if it sleeps.
func (s *Scaled) Front(ctx context.Context, kc *kube.Client) (*Forwarded, error) {
	ns, name := chart.InterceptorNamespace, chart.InterceptorService
	svc, err := s.c.Clientset.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s has no ready pod, and its requests go through the KEDA HTTP add-on, whose Service %s in %s cannot be read: %w", s.w.Name, name, ns, err)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == chart.InterceptorPort {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return nil, fmt.Errorf("the KEDA HTTP add-on's Service %s in %s has no port %d", name, ns, chart.InterceptorPort)
	}
	pods, err := s.c.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return nil, fmt.Errorf("listing the KEDA HTTP add-on's interceptor pods: %w", err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !kube.PodReady(p) {
			continue
		}
		port, ok := containerPort(p, sp.TargetPort)
		if !ok {
			continue
		}
		fw, err := kc.ForwardPort(ctx, ns, p.Name, port)
		if err != nil {
			return nil, err
		}
		return &Forwarded{Forward: fw, Host: s.w.Name + "." + s.c.Namespace, Via: "the KEDA HTTP interceptor, pod " + p.Name}, nil
	}
	return nil, fmt.Errorf("%s has no ready pod, and no pod of the KEDA HTTP add-on's interceptor in %s is ready to wake it", s.w.Name, ns)
}

// containerPort resolves a Service's target port on pod p.
func containerPort(p *corev1.Pod, target intstr.IntOrString) (int, bool) {
	if target.Type == intstr.Int {
		return target.IntValue(), target.IntValue() > 0
	}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == target.StrVal {
				return int(cp.ContainerPort), true
			}
		}
	}
	return 0, false
}

// Wait waits for the Deployment to roll out, KEDA's ScaledObject and the
// add-on's route to be Ready, and, when it sits at zero pods, for a wake-up
// through the interceptor that proves the new version answers; then, when
// it is exposed, for its public route and certificate.
func (s *Scaled) Wait(ctx context.Context, rel *deploy.Record) error {
	if err := WaitRolledOut(ctx, s.c.Clientset, rel); err != nil {
		return err
	}
	if err := s.WaitReady(ctx); err != nil {
		return err
	}
	if s.c.Client != nil {
		if err := s.WakeIfIdle(ctx, s.c.Client); err != nil {
			return err
		}
	}
	return s.waitExposed(ctx, rel)
}

// WaitReady waits until KEDA accepted the ScaledObject and the add-on its
// InterceptorRoute (both Ready), so requests are routed and counted. ctx
// bounds it.
func (s *Scaled) WaitReady(ctx context.Context) error {
	if s.c.Dynamic == nil {
		return nil
	}
	for _, o := range []struct {
		gvr  schema.GroupVersionResource
		what string
	}{{ScaledObjects, "KEDA's ScaledObject"}, {InterceptorRoutes, "the KEDA HTTP add-on's InterceptorRoute"}} {
		if err := waitCondition(ctx, s.c.Dynamic.Resource(o.gvr).Namespace(s.c.Namespace), s.w.Name, "Ready"); err != nil {
			return fmt.Errorf("%s %s is not ready: %w", o.what, s.w.Name, err)
		}
	}
	return nil
}

// waitCondition watches object name of ri until its condition typ is
// True. The last reason it was not is in the error.
func waitCondition(ctx context.Context, ri dynamic.ResourceInterface, name, typ string) error {
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
	why := "no status yet"
	err := watchUntil(ctx,
		func() (watch.Interface, error) { return ri.Watch(ctx, opts) },
		func() (runtime.Object, error) { return ri.Get(ctx, name, metav1.GetOptions{}) },
		func(o runtime.Object) bool {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				return false
			}
			ready, msg := condition(u, typ)
			if msg != "" {
				why = msg
			}
			return ready
		})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%s (%w)", why, context.Cause(ctx))
	}
	return errors.Join(err, context.Cause(ctx))
}

// WakeIfIdle proves a new version of a workload at zero pods answers: one
// GET of its readiness path through the interceptor, which wakes it (KEDA
// lets it go idle again after scale.idle). A workload with pods has been
// waited for already; one whose interceptor skiff may not reach (RBAC)
// cannot be checked this way and is not. ctx bounds the wait.
func (s *Scaled) WakeIfIdle(ctx context.Context, kc *kube.Client) error {
	dep, err := s.c.Clientset.AppsV1().Deployments(s.c.Namespace).Get(ctx, s.w.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading deployment %s: %w", s.w.Name, err)
	}
	if desired(dep) > 0 {
		return nil
	}
	fw, err := s.Front(ctx, kc)
	if err != nil {
		return nil
	}
	defer fw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+fw.Addr+s.w.Ready, nil)
	if err != nil {
		return err
	}
	req.Host = fw.Host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return fmt.Errorf("%s sat at zero pods, so skiff woke it through the interceptor to see the new version answer, and it did not: %w", s.w.Name, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s sat at zero pods, so skiff woke it through the interceptor to see the new version answer: GET %s answered %s", s.w.Name, s.w.Ready, resp.Status)
	}
	return nil
}
