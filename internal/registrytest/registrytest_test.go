package registrytest

import (
	"net/http"
	"testing"
)

func TestBasicAuth(t *testing.T) {
	host := BasicAuth(t, "ci", "right")
	for _, tc := range []struct {
		name       string
		user, pass string
		auth       bool
		want       int
	}{
		{"right credentials", "ci", "right", true, http.StatusOK},
		{"wrong password", "ci", "wrong", true, http.StatusUnauthorized},
		{"no credentials", "", "", false, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://"+host+"/v2/", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("GET /v2/ = %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Basic realm="test"` {
				t.Errorf("WWW-Authenticate = %q, want a Basic challenge", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}
