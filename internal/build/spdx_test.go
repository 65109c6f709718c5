package build

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestSPDXIsDeterministicAndComplete(t *testing.T) {
	sub := Subject{Name: "skiff/skiff", ID: "SPDXRef-Application", Version: "v1.0.0", SHA256: "ab12", Purpose: "APPLICATION",
		PURL: "pkg:golang/github.com/skiffdev/skiff@v1.0.0", Created: time.Unix(1700000000, 0), Tool: "v1.0.0"}
	pkgs := []Package{{Name: "b.example/mod", Version: "v2"}, {Name: "a.example/mod", Version: "v1", PURL: "pkg:golang/a.example/mod@v1"},
		{Name: "a.example/mod", Version: "v1"}}
	one, err := SPDX(sub, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	two, _ := SPDX(sub, []Package{pkgs[2], pkgs[0], pkgs[1]})
	if string(one) != string(two) {
		t.Error("the same inputs in another order gave another document")
	}
	var doc struct {
		SPDXVersion, DocumentNamespace string
		CreationInfo                   struct{ Created string }
		Packages                       []struct{ SPDXID, Name, PrimaryPackagePurpose string }
		Relationships                  []struct{ RelationshipType string }
	}
	if err := json.Unmarshal(one, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "2023-11-14T22:13:20Z" || !strings.Contains(doc.DocumentNamespace, "skiff/skiff-") {
		t.Errorf("document = %+v", doc)
	}
	if len(doc.Packages) != 3 || doc.Packages[0].SPDXID != "SPDXRef-Application" || doc.Packages[1].Name != "a.example/mod" {
		t.Errorf("packages = %+v (duplicates must collapse, sorted by name)", doc.Packages)
	}
	if len(doc.Relationships) != 3 || doc.Relationships[0].RelationshipType != "DESCRIBES" {
		t.Errorf("relationships = %+v", doc.Relationships)
	}
}
