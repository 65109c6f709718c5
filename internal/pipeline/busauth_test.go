package pipeline

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/natstest"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
	"github.com/skiffdev/skiff/internal/relay/relayplan"
)

const busauthDoc = `apiVersion: skiff.dev/v1alpha1
name: shop
events:
  bus: BUS
  relayImage: r.example/skiff-relay@sha256:1111111111111111111111111111111111111111111111111111111111111111
  credentials: cli.creds
  signingKey: account.nk
  retention: {maxAge: 36h, maxBytes: 64MiB}
workloads:
  - name: thumbs
    kind: function
    lang: go
    triggers:
      - event: com.example.image.uploaded
      - schedule: "0 * * * *"
`

func busSession(t *testing.T, doc, root string, cs *fake.Clientset) (*Session, *deploy.Deployer, *[]Event) {
	t.Helper()
	p, err := project.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &action.Configuration{Releases: storage.Init(driver.NewMemory()), KubeClient: &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities, Log: func(string, ...any) {}}
	d := &deploy.Deployer{Config: func(string) (*action.Configuration, error) { return cfg, nil }}
	var events []Event
	s := NewSession(&Pipeline{Project: p, Root: root, Getenv: func(string) string { return "" }, Events: func(ev Event) { events = append(events, ev) }},
		&kube.Client{Clientset: cs}, d)
	t.Cleanup(s.Close)
	d.Wait = func(context.Context, *deploy.Record) error { return nil }
	return s, d, &events
}

// secretData is the data of Secret name in a release's manifest.
func secretData(t *testing.T, manifest, name string) map[string][]byte {
	t.Helper()
	for _, doc := range strings.Split(manifest, "\n---") {
		if !strings.Contains(doc, "kind: Secret") || !strings.Contains(doc, "name: "+name+"\n") {
			continue
		}
		var sec corev1.Secret
		if err := yaml.Unmarshal([]byte(doc), &sec); err != nil {
			t.Fatal(err)
		}
		return sec.Data
	}
	t.Fatalf("no Secret %s in the release", name)
	return nil
}

// Deploy on a bus with accounts: preflight connects as the CLI's user and
// warns of nothing; the release's Secret thumbs-nats holds a relay user
// and a schedule user minted in the CLI user's account, with their rights
// and nothing else; the stream has skiff.yaml's limits; KEDA reads the
// account. A second deploy keeps the users; a changed trigger re-mints the
// relay's.
func TestDeployMintsBusUsers(t *testing.T) {
	op := natstest.StartOperator(t)
	ctx := context.Background()
	root := t.TempDir()
	for name, from := range map[string]string{"cli.creds": op.WriteUser(t, natstest.User{Name: "cli"}), "account.nk": op.WriteSigningKey(t)} {
		data, _ := os.ReadFile(from)
		if err := os.WriteFile(filepath.Join(root, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := strings.Replace(busauthDoc, "BUS", op.URL, 1)
	cs := fake.NewClientset()
	s, d, events := busSession(t, doc, root, cs)
	if err := s.Preflight(ctx, s.Project.Workloads); err != nil {
		t.Fatal(err)
	}
	for _, ev := range *events {
		if strings.Contains(ev.Message, "warning") {
			t.Errorf("preflight on a bus with accounts: %s", ev.Message)
		}
	}
	image := map[string]string{"thumbs": "r.example/shop/thumbs@sha256:2222222222222222222222222222222222222222222222222222222222222222"}
	if _, err := s.Engine().Deploy(ctx, engine.DeployOptions{}, s.Project.Workloads, image); err != nil {
		t.Fatal(err)
	}
	rel, err := d.Get(ctx, "shop-thumbs", "shop")
	if err != nil {
		t.Fatal(err)
	}
	data := secretData(t, rel.Manifest, "thumbs-nats")
	w, _ := s.Project.Workload("thumbs")
	plan, _ := relayplan.For(s.Project, w)
	if len(data) != 2 || data[relay.RelayCredsKey] == nil || data[relay.ScheduleCredsKey(plan.Schedules[0])] == nil {
		t.Fatalf("the Secret holds %d keys", len(data))
	}
	uc := userClaims(t, data[relay.RelayCredsKey])
	want := relay.RelayRights(plan, "thumbs")
	if uc.IssuerAccount != op.Account || !sameStrings(uc.Pub.Allow, want.Pub) || !sameStrings(uc.Sub.Allow, want.Sub) || uc.Expires == 0 {
		t.Errorf("the relay's user: account %s, pub %v, sub %v, expires %d", uc.IssuerAccount, uc.Pub.Allow, uc.Sub.Allow, uc.Expires)
	}
	if ev, _ := rel.Config["events"].(map[string]any); ev["account"] != op.Account {
		t.Errorf("KEDA's account: %v", ev["account"])
	}
	conn, err := bus.Dial(ctx, nil, op.URL, bus.Auth{Creds: filepath.Join(root, "cli.creds")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := conn.JS.Stream(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if c := st.CachedInfo().Config; c.MaxAge.Hours() != 36 || c.MaxBytes != 64<<20 {
		t.Errorf("stream limits: %s %d", c.MaxAge, c.MaxBytes)
	}

	// As if the release's Secret were applied: the next deploy keeps it.
	if _, err := cs.CoreV1().Secrets("shop").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "thumbs-nats", Namespace: "shop"}, Data: data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s2, d2, _ := busSession(t, doc, root, cs)
	if _, err := s2.Engine().Deploy(ctx, engine.DeployOptions{}, s2.Project.Workloads, image); err != nil {
		t.Fatal(err)
	}
	rel2, _ := d2.Get(ctx, "shop-thumbs", "shop")
	if again := secretData(t, rel2.Manifest, "thumbs-nats"); string(again[relay.RelayCredsKey]) != string(data[relay.RelayCredsKey]) {
		t.Error("a deploy that changed nothing minted a new relay user")
	}
	s3, d3, _ := busSession(t, strings.Replace(doc, "com.example.image.uploaded", "com.example.image.resized", 1), root, cs)
	if _, err := s3.Engine().Deploy(ctx, engine.DeployOptions{}, s3.Project.Workloads, image); err != nil {
		t.Fatal(err)
	}
	rel3, _ := d3.Get(ctx, "shop-thumbs", "shop")
	again := secretData(t, rel3.Manifest, "thumbs-nats")
	if string(again[relay.RelayCredsKey]) == string(data[relay.RelayCredsKey]) {
		t.Error("a changed trigger kept the relay's user")
	}
	if k := relay.ScheduleCredsKey(plan.Schedules[0]); string(again[k]) != string(data[k]) {
		t.Error("an unchanged schedule got a new user")
	}
}

// Preflight on an open bus warns; with credentials that expired, it
// fails naming the file, before anything changes.
func TestPreflightBusAuth(t *testing.T) {
	ctx := context.Background()
	open := strings.NewReplacer("BUS", natstest.Start(t), "  credentials: cli.creds\n", "", "  signingKey: account.nk\n", "").Replace(busauthDoc)
	s, _, events := busSession(t, open, t.TempDir(), fake.NewClientset())
	if err := s.Preflight(ctx, s.Project.Workloads); err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, ev := range *events {
		warned = warned || (ev.Kind == Notice && strings.Contains(ev.Message, "without credentials") && strings.Contains(ev.Message, "docs/security.md"))
	}
	if !warned {
		t.Errorf("no warning of an open bus: %+v", *events)
	}

	op := natstest.StartOperator(t)
	root := t.TempDir()
	expired := op.WriteUser(t, natstest.User{Name: "old", Expires: time.Now().Add(-time.Minute)})
	data, _ := os.ReadFile(expired)
	if err := os.WriteFile(filepath.Join(root, "cli.creds"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, _, _ = busSession(t, strings.Replace(busauthDoc, "BUS", op.URL, 1), root, fake.NewClientset())
	err := s.Preflight(ctx, s.Project.Workloads)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "cli.creds")) || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "deploy changed nothing") {
		t.Errorf("preflight with an expired user: %v", err)
	}

	// A signing key the account does not have: the users deploy would mint
	// would be refused, so it mints none.
	good, _ := os.ReadFile(op.WriteUser(t, natstest.User{Name: "cli"}))
	if err := os.WriteFile(filepath.Join(root, "cli.creds"), good, 0o600); err != nil {
		t.Fatal(err)
	}
	stranger := natstest.StartOperator(t)
	if err := os.WriteFile(filepath.Join(root, "account.nk"), stranger.SigningKey, 0o600); err != nil {
		t.Fatal(err)
	}
	err = s.Preflight(ctx, s.Project.Workloads)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "account.nk")) || !strings.Contains(err.Error(), "not one of that account's signing keys") ||
		!strings.Contains(err.Error(), "deploy changed nothing") || strings.Contains(err.Error(), string(stranger.SigningKey)) {
		t.Errorf("preflight with another account's signing key: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "account.nk"), op.SigningKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Preflight(ctx, s.Project.Workloads); err != nil {
		t.Errorf("preflight with the account's signing key: %v", err)
	}
}

func userClaims(t *testing.T, creds []byte) *jwt.UserClaims {
	t.Helper()
	tok, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		t.Fatal(err)
	}
	return uc
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
