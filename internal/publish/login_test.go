package publish

import (
	"testing"
)

func TestDockerKey(t *testing.T) {
	for host, want := range map[string]string{"docker.io": "https://index.docker.io/v1/", "index.docker.io": "https://index.docker.io/v1/", "registry.example.com:5000": "registry.example.com:5000"} {
		if got := dockerKey(host); got != want {
			t.Errorf("dockerKey(%s) = %s, want %s", host, got, want)
		}
	}
}
