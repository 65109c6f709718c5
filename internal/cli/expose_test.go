package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/engine"
)

// status and deploy's summary add a URL column when a workload is exposed,
// and keep their columns when none is.
func TestTablesShowThePublicURL(t *testing.T) {
	f, _ := testFactory(t, false)
	out := f.IOStreams.Out.(*bytes.Buffer)
	sts := []*engine.Status{
		{Workload: "front", Kind: "service", State: engine.StateReady, Revision: 1, Ready: 1, Desired: 1, URL: "https://front.example.com/"},
		{Workload: "worker", Kind: "service", State: engine.StateReady, Revision: 1, Ready: 1, Desired: 1},
	}
	if err := printStatus(f, sts); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last(lines[0]) != "URL" || last(lines[1]) != "https://front.example.com/" || last(lines[2]) != "-" {
		t.Errorf("status table:\n%s", out)
	}
	out.Reset()
	if err := printStatus(f, sts[1:]); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "URL") {
		t.Errorf("a URL column without an exposed workload:\n%s", out)
	}
	out.Reset()
	if err := printDeployed(f, []engine.Deployment{{Workload: "front", Revision: 2, Ready: "1/1", URL: "https://front.example.com/"}}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); last(lines[0]) != "URL" || last(lines[1]) != "https://front.example.com/" {
		t.Errorf("deploy summary:\n%s", out)
	}
}

func last(line string) string {
	f := strings.Fields(line)
	return f[len(f)-1]
}
