package project

import "testing"

// FuzzParse checks that no input can panic the loader, and that whatever it
// accepts survives a Marshal/Parse round trip.
func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- {name: x, kind: service, lang: go, dependsOn: [x]}"))
	f.Add([]byte("apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads: &a [*a]"))
	f.Add([]byte("- [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		out, err := Marshal(p)
		if err != nil {
			t.Fatalf("Marshal of an accepted manifest: %v", err)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("re-Parse of marshalled manifest: %v\n%s", err, out)
		}
	})
}
