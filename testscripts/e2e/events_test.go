//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/relay"
)

const testBus = "nats://nats.nats.svc.cluster.local:4222"

// testBusAuth is the test cluster's user for the tests' own reads of the
// bus (`ci.sh env`: the bus runs with accounts).
func testBusAuth() bus.Auth { return bus.Auth{Creds: os.Getenv("SKIFF_TEST_NATS_CREDS")} }

var relayOnce struct {
	sync.Once
	ref string
	err error
}

// relayImage builds skiff-relay from this checkout with skiff's own
// pipeline (hack/relayimage) and pushes it to the test registry, once.
func (c *cluster) relayImage(t *testing.T) string {
	t.Helper()
	relayOnce.Do(func() {
		cmd := exec.Command("go", "run", "./hack/relayimage", "--registry", c.registry+"/e2e", "--tag", "e2e")
		cmd.Dir = filepath.Join("..", "..")
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				err = fmt.Errorf("%w\n%s", err, ee.Stderr)
			}
			relayOnce.err = err
			return
		}
		relayOnce.ref = strings.TrimSpace(string(out))
	})
	if relayOnce.err != nil {
		t.Fatalf("building the relay image: %v", relayOnce.err)
	}
	return relayOnce.ref
}

// eventsStatus is `skiff events status -o json` by consumer.
func (c *cluster) eventsStatus(t *testing.T, root string) map[string]relay.TriggerStatus {
	t.Helper()
	out, errOut, code := c.skiffIn(t, root, "events", "status", "-o", "json")
	var sts []relay.TriggerStatus
	if code != 0 || json.Unmarshal([]byte(out), &sts) != nil {
		t.Fatalf("events status: exit %d\n%s\n%s", code, out, errOut)
	}
	m := map[string]relay.TriggerStatus{}
	for _, s := range sts {
		m[s.Trigger] = s
	}
	return m
}

// waitZero waits until release has no pods.
func (c *cluster) waitZero(t *testing.T, ns, release string) {
	t.Helper()
	waitFor(t, 3*time.Minute, release+" to scale to zero", func() bool {
		pods, err := c.kc.Clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
		return err == nil && len(pods.Items) == 0
	})
}

// TestEvents is the story of issue 12 on the real cluster, with KEDA and
// nats-server built from their modules: a CloudEvents function with
// `scale: {min: 0}`, an event trigger and a schedule. Events published
// while it has no pods wake it (KEDA's nats-jetstream scaler on its
// consumer's lag) and each is handled (its reply, stored by the relay, is
// on the stream); a poison event lands in the dead letters and replays;
// thousands of events survive its pods being deleted mid-run; the
// schedule wakes it on its minute; delete removes its consumers and its
// CronJob.
func TestEvents(t *testing.T) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-events")
	ctx := context.Background()
	relayRef := c.relayImage(t)

	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--template", "cloudevents", "--name", "thumbs",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	manifest := filepath.Join(root, "skiff.yaml")
	replaceInFile(t, manifest, "workloads:\n", "events:\n  bus: "+testBus+"\n  stream: "+strings.ReplaceAll(ns, "-", "_")+
		"\n  relayImage: "+relayRef+"\nworkloads:\n")
	replaceInFile(t, manifest, "  - name: thumbs\n", "  - name: thumbs\n    scale: {min: 0, max: 2, idle: 8s}\n"+
		"    triggers:\n      - event: com.example.image.uploaded\n      - schedule: \"* * * * *\"\n"+
		"    delivery: {retries: 1, backoff: 200ms, timeout: 10s}\n")
	stream := strings.ReplaceAll(ns, "-", "_")

	// A bus that does not answer fails the deploy before it builds or
	// changes anything.
	replaceInFile(t, manifest, "  bus: "+testBus+"\n", "  bus: nats://127.0.0.1:9\n")
	out, errOut, code := c.skiffIn(t, root, "deploy", "--timeout", "4m")
	if code != 1 || !strings.Contains(errOut, "nats://127.0.0.1:9") || !strings.Contains(errOut, "deploy changed nothing") {
		t.Errorf("deploy with a bus that does not answer: exit %d\n%s\n%s", code, out, errOut)
	}
	if st := c.status(t, root)["thumbs"]; st.State != "NotDeployed" {
		t.Errorf("after the failed deploy, thumbs is %s", st.State)
	}
	replaceInFile(t, manifest, "  bus: nats://127.0.0.1:9\n", "  bus: "+testBus+"\n")

	out, errOut, code = c.skiffIn(t, root, "deploy", "--timeout", "4m")
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	// thumbs is behind a NetworkPolicy that admits nothing but the
	// interceptor: its events come through its relay's pull from the bus.
	if _, err := c.kc.Clientset.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), "thumbs", metav1.GetOptions{}); err != nil {
		t.Errorf("thumbs's NetworkPolicy: %v", err)
	}
	// deploy created the consumers before the release: KEDA reads them.
	st := c.eventsStatus(t, root)
	evTrigger, schedTrigger := st["com.example.image.uploaded"], st["schedule * * * * *"]
	if !evTrigger.Deployed || !schedTrigger.Deployed {
		t.Fatalf("after deploy, the consumers: %+v", st)
	}
	cjs, err := c.kc.Clientset.BatchV1().CronJobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(cjs.Items) != 1 {
		t.Fatalf("CronJobs after deploy: %v, %d", err, len(cjs.Items))
	}

	conn, err := bus.Dial(ctx, c.kc, testBus, testBusAuth())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	replies := collectReplies(t, conn.JS, stream)

	// At zero pods, 20 events and a poison one (its data is no greeting:
	// the handler answers 422) through the CLI.
	c.waitZero(t, ns, "shop-thumbs")
	start := time.Now()
	for i := range 20 {
		c.mustSkiff(t, root, "events", "publish", "com.example.image.uploaded", "--id", fmt.Sprintf("e%d", i), "--data", `{"name":"Ada"}`)
	}
	c.mustSkiff(t, root, "events", "publish", "com.example.image.uploaded", "--id", "poison", "--data", `"not a greeting"`)
	replies.wait(t, 3*time.Minute, "e", 20)
	t.Logf("20 events to a function at zero pods handled in %s", time.Since(start).Round(time.Millisecond))

	var dls []relay.DeadLetter
	waitFor(t, time.Minute, "the poison event in the dead letters", func() bool {
		out, _, code := c.skiffIn(t, root, "events", "dlq", "list", "thumbs", "-o", "json")
		return code == 0 && json.Unmarshal([]byte(out), &dls) == nil && len(dls) == 1
	})
	if dls[0].ID != "poison" || dls[0].Status != 422 || dls[0].Deliveries != 2 {
		t.Errorf("dead letter: %+v", dls[0])
	}
	// Replayed, it fails again (the handler did not change): back in the
	// dead letters, delivered to thumbs alone.
	c.mustSkiff(t, root, "events", "dlq", "replay", "--all")
	waitFor(t, time.Minute, "the replayed poison event back in the dead letters", func() bool {
		out, _, code := c.skiffIn(t, root, "events", "dlq", "list", "-o", "json")
		return code == 0 && json.Unmarshal([]byte(out), &dls) == nil && len(dls) == 1 && dls[0].Seq > 1
	})

	// 10,000 events, published at 500 a second, while a pod is deleted
	// three times: each handled at least once.
	const n, perSecond = 10000, 500
	published := make(chan error, 1)
	go func() {
		begin := time.Now()
		for i := range n {
			time.Sleep(time.Until(begin.Add(time.Duration(i) * time.Second / perSecond))) // pacing, not synchronization
			ev := &relay.Event{Attrs: map[string]string{"specversion": "1.0", "id": fmt.Sprintf("r%d", i), "source": "/e2e", "type": "com.example.image.uploaded"},
				ContentType: "application/json", Data: []byte(`{"name":"Bo"}`)}
			if _, err := relay.Publish(ctx, conn.JS, stream, ev); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	for kill := range 3 {
		// A quarter, a half, three quarters of the way.
		replies.waitCount(t, 3*time.Minute, "r", (kill+1)*n/4)
		pod := c.waitReadyPod(t, ns, "shop-thumbs")
		if err := c.kc.Clientset.CoreV1().Pods(ns).Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Logf("deleted pod %s (%d of 3) after %d replies", pod, kill+1, replies.count("r"))
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	dups := replies.wait(t, 5*time.Minute, "r", n)
	t.Logf("%d events through 3 pod deletions: all handled, %d handled twice or more", n, dups)

	// The bus restarted mid-run (its pod deleted; its store is a volume):
	// the events published before, during and after are each handled. The
	// publisher retries an event until the bus stores it, as a client
	// must; the relays reconnect on their own.
	const m = 2000
	go func() {
		pc, err := bus.Dial(ctx, c.kc, testBus, testBusAuth())
		for i := 0; i < m; {
			if err == nil {
				ev := &relay.Event{Attrs: map[string]string{"specversion": "1.0", "id": fmt.Sprintf("b%d", i), "source": "/e2e", "type": "com.example.image.uploaded"},
					ContentType: "application/json", Data: []byte(`{"name":"Cy"}`)}
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err = relay.Publish(pctx, pc.JS, stream, ev)
				cancel()
				if err == nil {
					i++
					time.Sleep(5 * time.Millisecond) // pacing: 200 a second, not synchronization
					continue
				}
				pc.Close()
			}
			time.Sleep(200 * time.Millisecond) // the bus is restarting: try again
			pc, err = bus.Dial(ctx, c.kc, testBus, testBusAuth())
		}
		pc.Close()
		published <- nil
	}()
	replies.waitCount(t, 3*time.Minute, "b", m/4)
	busPod := c.waitReadyPod(t, "nats", "")
	if err := c.kc.Clientset.CoreV1().Pods("nats").Delete(ctx, busPod, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted the bus's pod %s after %d of %d replies", busPod, replies.count("b"), m)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if conn, err = bus.Dial(ctx, c.kc, testBus, testBusAuth()); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The replies again, from the restarted bus's store.
	dups = collectReplies(t, conn.JS, stream).wait(t, 5*time.Minute, "b", m)
	t.Logf("%d events through a restart of the bus: all handled, %d handled twice or more", m, dups)

	// The schedule: at zero pods, the minute's tick wakes it.
	c.waitZero(t, ns, "shop-thumbs")
	before := c.eventsStatus(t, root)["schedule * * * * *"]
	var tick relay.TriggerStatus
	waitFor(t, 3*time.Minute, "a schedule tick to be handled", func() bool {
		tick = c.eventsStatus(t, root)["schedule * * * * *"]
		return tick.Delivered > before.Delivered && tick.Pending == 0 && tick.AckPending == 0 && tick.LastDone != nil
	})
	minute := tick.LastDone.Truncate(time.Minute)
	t.Logf("the tick of %s was handled %s after its minute", minute.Format(time.TimeOnly), tick.LastDone.Sub(minute).Round(time.Millisecond))
	jobs, err := c.kc.Clientset.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil || !hasSucceeded(jobs.Items) {
		t.Errorf("the schedule's Jobs: %v %+v", err, jobs)
	}

	// delete: the release, its CronJob and its consumers.
	c.mustSkiff(t, root, "delete", "thumbs")
	for _, s := range c.eventsStatus(t, root) {
		if s.Deployed {
			t.Errorf("after delete, the consumer %s is still there", s.Consumer)
		}
	}
	if cjs, err := c.kc.Clientset.BatchV1().CronJobs(ns).List(ctx, metav1.ListOptions{}); err != nil || len(cjs.Items) != 0 {
		t.Errorf("after delete, CronJobs: %v, %d", err, len(cjs.Items))
	}
}

func hasSucceeded(jobs []batchv1.Job) bool {
	for _, j := range jobs {
		if j.Status.Succeeded > 0 {
			return true
		}
	}
	return false
}

// waitReadyPod waits for a ready pod of release (of the bus, with none)
// and returns its name.
func (c *cluster) waitReadyPod(t *testing.T, ns, release string) string {
	t.Helper()
	var name string
	selector := "app.kubernetes.io/instance=" + release
	if release == "" {
		selector = "app.kubernetes.io/name=nats" // the bus
	}
	waitFor(t, 3*time.Minute, "a ready pod of "+selector, func() bool {
		pod, err := readyPod(context.Background(), c.kc.Clientset, ns, selector)
		if err == nil {
			name = pod.Name
		}
		return err == nil
	})
	return name
}

// replySet collects the template's reply events from the stream: their
// subject is the id of the event they answer.
type replySet struct {
	mu  sync.Mutex
	got map[string]int
	new chan struct{}
}

func collectReplies(t *testing.T, js jetstream.JetStream, stream string) *replySet {
	t.Helper()
	cons, err := js.OrderedConsumer(context.Background(), stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{stream + ".com.example.greeting.reply"}})
	if err != nil {
		t.Fatal(err)
	}
	rs := &replySet{got: map[string]int{}, new: make(chan struct{}, 1)}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		ev, err := relay.FromMessage(msg.Headers(), msg.Data())
		if err != nil {
			return
		}
		rs.mu.Lock()
		rs.got[ev.Attrs["subject"]]++
		rs.mu.Unlock()
		select {
		case rs.new <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return rs
}

func (rs *replySet) count(prefix string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	n := 0
	for id := range rs.got {
		if strings.HasPrefix(id, prefix) {
			n++
		}
	}
	return n
}

// waitCount waits until at least n events of prefix have a reply.
func (rs *replySet) waitCount(t *testing.T, d time.Duration, prefix string, n int) {
	t.Helper()
	deadline := time.After(d)
	for rs.count(prefix) < n {
		select {
		case <-rs.new:
		case <-deadline:
			t.Fatalf("after %s, %d events (%s*) have a reply, want %d", d, rs.count(prefix), prefix, n)
		}
	}
}

// wait waits until the events prefix0..prefix<n-1> all have a reply, and
// returns how many have more than one.
func (rs *replySet) wait(t *testing.T, d time.Duration, prefix string, n int) int {
	t.Helper()
	deadline := time.After(d)
	for {
		rs.mu.Lock()
		missing, dups := 0, 0
		for i := range n {
			switch rs.got[fmt.Sprintf("%s%d", prefix, i)] {
			case 0:
				missing++
			case 1:
			default:
				dups++
			}
		}
		rs.mu.Unlock()
		if missing == 0 {
			return dups
		}
		select {
		case <-rs.new:
		case <-deadline:
			t.Fatalf("after %s, %d of %d events (%s*) have no reply", d, missing, n, prefix)
		}
	}
}
