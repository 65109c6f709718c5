//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/natstest"
)

// busAddr is the bus's Service address, which the host reaches directly:
// the tests' own client (nats.go) needs no port-forward of skiff's.
func (c *cluster) busAddr(t *testing.T) string {
	t.Helper()
	svc, err := c.kc.Clientset.CoreV1().Services("nats").Get(context.Background(), "nats", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.ClusterIP + ":4222"
}

// natsClient connects nats.go to the bus with opts and returns the server's
// asynchronous errors (permission violations) as they come.
func natsClient(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, chan error, error) {
	t.Helper()
	errs := make(chan error, 64)
	opts = append(opts, nats.Timeout(10*time.Second), nats.MaxReconnects(0), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, errs, nil
}

// refusedBy waits for the server to say it refused subject.
func refusedBy(t *testing.T, errs chan error, what, subject string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if strings.Contains(err.Error(), "Permissions Violation") && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
		case <-timeout:
			t.Errorf("%s: the bus did not refuse %s", what, subject)
			return
		}
	}
}

// TestEventsAuth is issue 29 on the test cluster, whose nats-server runs
// in operator mode: checked with nats.go itself, never skiff's client. The
// bus refuses a client without credentials; deploy mints the relay's user
// into the Secret thumbs-nats, and with it the relay delivers (a reply is
// stored), while the same user cannot purge the stream, delete or read
// another workload's consumer or read another project's stream; the stream
// has skiff.yaml's limits, read back from the server; bad or expired
// credentials fail the deploy before it changes anything; doctor says the
// cluster's bus refuses clients without credentials and that an open one
// is open; and the whole path runs over TLS (tls:// with the cluster's CA).
func TestEventsAuth(t *testing.T) {
	c := needCluster(t)
	creds, caFile := os.Getenv("SKIFF_TEST_NATS_CREDS"), os.Getenv("SKIFF_TEST_NATS_CA")
	if creds == "" || caFile == "" {
		t.Skip("the test cluster's bus has no accounts: `ci.sh env` prints SKIFF_TEST_NATS_CREDS and SKIFF_TEST_NATS_CA")
	}
	ctx := context.Background()
	ns := c.restrictedNamespace(t, "e2e-busauth")
	relayRef := c.relayImage(t)
	addr := c.busAddr(t)
	stream := strings.ReplaceAll(ns, "-", "_")

	// Without credentials: refused.
	if _, _, _, err := natsClient(t, "nats://"+addr); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("a client without credentials: %v, want an authorization violation", err)
	}
	_, admin, _, err := natsClient(t, "nats://"+addr, nats.UserCredentials(creds))
	if err != nil {
		t.Fatalf("the test user: %v", err)
	}
	// Another project's stream, and another workload's consumer on ours
	// (as deploy makes them), made by the test user.
	other := stream + "_other"
	for _, s := range []string{other, stream} {
		if _, err := admin.CreateStream(ctx, jetstream.StreamConfig{Name: s, Subjects: []string{s + ".>"}, MaxAge: time.Hour}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.DeleteStream(context.Background(), s) })
	}
	t.Cleanup(func() { admin.DeleteStream(context.Background(), stream+"-dlq") })
	for _, s := range []string{other, stream} {
		if _, err := admin.CreateOrUpdateConsumer(ctx, s, jetstream.ConsumerConfig{Durable: "orders-1", FilterSubjects: []string{s + ".com.example.>"},
			AckPolicy: jetstream.AckExplicitPolicy, Metadata: map[string]string{"skiff.dev/workload": "orders"}}); err != nil {
			t.Fatal(err)
		}
	}

	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--template", "cloudevents", "--name", "thumbs",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	manifest := filepath.Join(root, "skiff.yaml")
	replaceInFile(t, manifest, "workloads:\n", "events:\n  bus: "+testBus+"\n  stream: "+stream+
		"\n  relayImage: "+relayRef+"\n  retention: {maxAge: 36h, maxBytes: 64MiB, deadLetterMaxAge: 3d}\nworkloads:\n")
	replaceInFile(t, manifest, "  - name: thumbs\n", "  - name: thumbs\n    triggers:\n      - event: com.example.image.uploaded\n      - schedule: \"0 0 1 1 *\"\n")

	// Bad credentials: named, and deploy changes nothing.
	for env, want := range map[string]string{
		"SKIFF_NATS_CREDS=" + os.Getenv("SKIFF_TEST_NATS_EXPIRED_CREDS"):  "expired at",
		"SKIFF_NATS_CREDS=" + os.Getenv("SKIFF_TEST_NATS_STRANGER_CREDS"): "were refused by the bus",
		"SKIFF_NATS_CREDS=" + filepath.Join(root, "missing.creds"):        "cannot be read",
	} {
		file := strings.TrimPrefix(env, "SKIFF_NATS_CREDS=")
		out, errOut, code := run(t, root, append(append([]string{}, c.env...), env), c.skiff, "deploy", "--timeout", "4m")
		if code != 1 || !strings.Contains(errOut, file) || !strings.Contains(errOut, want) || !strings.Contains(errOut, "deploy changed nothing") {
			t.Errorf("deploy with %s: exit %d, want 1 naming the file and %q\n%s\n%s", file, code, want, out, errOut)
		}
		if seed := secretOf(t, file); seed != "" && strings.Contains(out+errOut, seed) {
			t.Errorf("deploy with %s printed the user's seed", file)
		}
	}
	// A signing key that is not the account's: its users would be refused.
	stranger, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := stranger.Seed()
	wrongKey := filepath.Join(t.TempDir(), "wrong.nk")
	if err := os.WriteFile(wrongKey, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, root, append(append([]string{}, c.env...), "SKIFF_NATS_SIGNING_KEY="+wrongKey), c.skiff, "deploy", "--timeout", "4m")
	if code != 1 || !strings.Contains(errOut, wrongKey) || !strings.Contains(errOut, "not one of that account's signing keys") || strings.Contains(out+errOut, string(seed)) {
		t.Errorf("deploy with another account's signing key: exit %d\n%s\n%s", code, out, errOut)
	}
	if st := c.status(t, root)["thumbs"]; st.State != "NotDeployed" {
		t.Errorf("after the deploys with bad credentials, thumbs is %s", st.State)
	}
	if s, err := admin.Stream(ctx, stream+"-dlq"); err == nil {
		t.Errorf("a deploy with bad credentials made the stream %s", s.CachedInfo().Config.Name)
	}

	out, errOut, code = c.skiffIn(t, root, "deploy", "--timeout", "4m")
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(errOut, "without credentials") {
		t.Errorf("deploy with credentials warns of an open bus:\n%s", errOut)
	}
	// The limits, read back from the server (deploy updated the stream
	// the test made, and created the dead letters').
	for name, want := range map[string]time.Duration{stream: 36 * time.Hour, stream + "-dlq": 72 * time.Hour} {
		s, err := admin.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := s.CachedInfo().Config; cfg.MaxAge != want || cfg.MaxBytes != 64<<20 {
			t.Errorf("stream %s: maxAge %s, maxBytes %d; want %s and 64MiB", name, cfg.MaxAge, cfg.MaxBytes, want)
		}
	}

	// The relay's user, from its Secret.
	sec, err := c.kc.Clientset.CoreV1().Secrets(ns).Get(ctx, "thumbs-nats", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	relayCreds := filepath.Join(t.TempDir(), "relay.creds")
	if err := os.WriteFile(relayCreds, sec.Data["relay.creds"], 0o600); err != nil {
		t.Fatal(err)
	}
	if len(sec.Data) != 2 {
		t.Errorf("the Secret holds %d keys, want the relay's and the schedule's users", len(sec.Data))
	}
	inbox := relayEnv(t, c, ns, "SKIFF_RELAY_INBOX")
	nc, js, errs, err := natsClient(t, "nats://"+addr, nats.UserCredentials(relayCreds), nats.CustomInboxPrefix(inbox))
	if err != nil {
		t.Fatalf("the relay's user: %v", err)
	}
	// It works: an event published through the CLI is delivered by the
	// relay, whose reply (stored with the same user) is on the stream.
	replies := collectReplies(t, admin, stream)
	c.mustSkiff(t, root, "events", "publish", "com.example.image.uploaded", "--id", "a0", "--data", `{"name":"Ada"}`)
	replies.wait(t, 3*time.Minute, "a", 1)
	if _, err := js.Publish(ctx, stream+".com.example.emitted", []byte(`{}`)); err != nil {
		t.Errorf("the relay's user cannot store an event (K_SINK): %v", err)
	}
	// What it may not do, each refused by the server.
	s, _ := admin.Stream(ctx, stream)
	before := s.CachedInfo().State.Msgs
	for _, subject := range []string{
		"$JS.API.STREAM.PURGE." + stream,
		"$JS.API.STREAM.DELETE." + stream,
		"$JS.API.CONSUMER.DELETE." + stream + ".orders-1",
		"$JS.API.CONSUMER.MSG.NEXT." + stream + ".orders-1",
		"$JS.API.CONSUMER.INFO." + stream + ".orders-1",
		"$JS.API.CONSUMER.CREATE." + stream + ".spy." + stream + ".>",
		"$JS.API.STREAM.INFO." + other,
		"$JS.API.CONSUMER.MSG.NEXT." + other + ".orders-1",
		"$JS.API.STREAM.MSG.GET." + other,
		other + ".com.example.a",
	} {
		if err := nc.PublishRequest(subject, inbox+".x", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		refusedBy(t, errs, "the relay's user", subject)
	}
	for _, subject := range []string{other + ".>", stream + ".>", "_INBOX.>"} {
		if _, err := nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		refusedBy(t, errs, "the relay's user", subject)
	}
	s, _ = admin.Stream(ctx, stream)
	if info, err := s.Info(ctx); err != nil || info.State.Msgs < before {
		t.Errorf("stream %s after the refusals: %+v, %v (had %d)", stream, info, err, before)
	}
	for _, st := range []string{stream, other} {
		if _, err := admin.Consumer(ctx, st, "orders-1"); err != nil {
			t.Errorf("the consumer orders-1 of %s: %v", st, err)
		}
	}
	if _, err := admin.Consumer(ctx, stream, "spy"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("a consumer spy was made: %v", err)
	}

	// doctor: the cluster's bus refuses clients without credentials; an
	// open bus (a second nats-server, on loopback) is said to be open.
	rs, _ := c.doctor(t, root, c.env)
	if r := rs["bus access"]; r.Status != "ok" || !strings.Contains(r.Detail, "refused a client without credentials") {
		t.Errorf("doctor's bus access on the cluster's bus: %+v", r)
	}
	if r := rs["event bus"]; r.Status != "ok" || !strings.Contains(r.Detail, "as user e2e") {
		t.Errorf("doctor's event bus: %+v", r)
	}
	openRoot := filepath.Join(t.TempDir(), "open")
	c.mustSkiff(t, "", "init", openRoot, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-open", "-n", ns, "--non-interactive")
	replaceInFile(t, filepath.Join(openRoot, "skiff.yaml"), "workloads:\n", "events: {bus: "+natstest.Start(t)+"}\nworkloads:\n")
	rs, _ = c.doctor(t, openRoot, append(append([]string{}, c.env...), "SKIFF_NATS_CREDS="))
	if r := rs["bus access"]; r.Status != "warn" || !strings.Contains(r.Detail, "is open") {
		t.Errorf("doctor's bus access on an open bus: %+v", r)
	}

	// TLS end to end: the CLI (through its port-forward), the relay and the
	// schedule's CronJob reach tls://, checking the cluster's CA.
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tlsBus := strings.Replace(testBus, "nats://", "tls://", 1)
	if _, _, _, err := natsClient(t, "tls://"+addr, nats.UserCredentials(creds), nats.Secure(&tls.Config{ServerName: "nats.nats.svc.cluster.local", RootCAs: x509.NewCertPool()})); err == nil {
		t.Error("a TLS client that trusts no CA connected")
	}
	replaceInFile(t, manifest, "  bus: "+testBus+"\n", "  bus: "+tlsBus+"\n  tls: {ca: "+caFile+"}\n")
	out, errOut, code = c.skiffIn(t, root, "deploy", "--timeout", "4m")
	if code != 0 {
		t.Fatalf("deploy over TLS: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := relayEnv(t, c, ns, "SKIFF_RELAY_BUS"); got != tlsBus || relayEnv(t, c, ns, "SKIFF_RELAY_CA") == "" {
		t.Errorf("the relay's bus %q (CA %q)", got, relayEnv(t, c, ns, "SKIFF_RELAY_CA"))
	}
	c.mustSkiff(t, root, "events", "publish", "com.example.image.uploaded", "--id", "a1", "--data", `{"name":"Bo"}`)
	replies.wait(t, 3*time.Minute, "a", 2)
	// The server says the relay's connection is TLS.
	body, err := c.kc.Clientset.CoreV1().Services("nats").ProxyGet("http", "nats", "8222", "/connz", map[string]string{"auth": "true", "acc": accountOf(t, creds), "limit": "1024"}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var connz struct {
		Connections []struct {
			Name       string `json:"name"`
			TLSVersion string `json:"tls_version"`
		} `json:"connections"`
	}
	if err := json.Unmarshal(body, &connz); err != nil {
		t.Fatal(err)
	}
	tlsRelay := false
	for _, cn := range connz.Connections {
		tlsRelay = tlsRelay || (cn.Name == "skiff-relay thumbs" && cn.TLSVersion != "")
	}
	if !tlsRelay {
		t.Errorf("no TLS connection of the relay in the server's connz: %s", body)
	}
}

// relayEnv is the value of name in the relay sidecar of thumbs's
// Deployment.
func relayEnv(t *testing.T, c *cluster, ns, name string) string {
	t.Helper()
	d, err := c.kc.Clientset.AppsV1().Deployments(ns).Get(context.Background(), "thumbs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var relay *corev1.Container
	for i := range d.Spec.Template.Spec.InitContainers {
		if d.Spec.Template.Spec.InitContainers[i].Name == "skiff-relay" {
			relay = &d.Spec.Template.Spec.InitContainers[i]
		}
	}
	if relay == nil {
		t.Fatal("thumbs has no skiff-relay")
	}
	for _, e := range relay.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// secretOf is the seed in a .creds file ("" when it has none).
func secretOf(t *testing.T, file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "SU") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// accountOf is the account of the user in a .creds file: the issuer
// account of its JWT.
func accountOf(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseDecoratedJWT(data)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		t.Fatal(err)
	}
	return uc.IssuerAccount
}
