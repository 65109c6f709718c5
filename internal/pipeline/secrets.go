package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/target"
)

// DefaultTimeout bounds how long skiff waits for a release to be ready (or
// gone).
const DefaultTimeout = engine.DefaultTimeout

// ShortDigest splits an image reference by digest into what comes before
// "@sha256:" and the digest's first 12 hex digits; ok is false when ref
// has no digest.
func ShortDigest(ref string) (repo, short string, ok bool) { return deploy.ShortDigest(ref) }

// UserValues reads the user's chart overrides as Helm's flags take them
// (-f, --set, --set-string, --set-file).
func UserValues(files, set, setString, setFile []string) (map[string]any, error) {
	return deploy.MergeValues(files, set, setString, setFile)
}

// SecretName is the Secret that holds a workload's `skiff secret` values.
func SecretName(workload string) string { return chart.SecretName(workload) }

// SetSecrets sets keys of the workload's Secret (creating the namespace
// and the Secret when missing), and returns the Secret's name.
func (s *Session) SetSecrets(ctx context.Context, workload string, values map[string][]byte) (string, error) {
	w, err := s.workload(workload)
	if err != nil {
		return "", err
	}
	if err := s.EnsureNamespace(ctx); err != nil {
		return "", err
	}
	name := chart.SecretName(w.Name)
	return name, s.Kube.SetSecretKeys(ctx, s.Namespace(), name, map[string]string{"app.kubernetes.io/managed-by": "skiff"}, values)
}

// UnsetSecrets removes keys of the workload's Secret; a key it does not
// hold is an error naming it.
func (s *Session) UnsetSecrets(ctx context.Context, workload string, keys []string) (string, error) {
	w, err := s.workload(workload)
	if err != nil {
		return "", err
	}
	if err := s.EnsureNamespace(ctx); err != nil {
		return "", err
	}
	name := chart.SecretName(w.Name)
	missing, err := s.Kube.UnsetSecretKeys(ctx, s.Namespace(), name, keys)
	if err == nil && len(missing) > 0 {
		return name, fmt.Errorf("no secret %v to remove; `skiff secret list` shows them", missing)
	}
	return name, err
}

// SecretKeys lists the keys of the workload's Secret (never the values).
func (s *Session) SecretKeys(ctx context.Context, workload string) ([]string, error) {
	w, err := s.workload(workload)
	if err != nil {
		return nil, err
	}
	return s.Kube.SecretKeys(ctx, s.Namespace(), chart.SecretName(w.Name))
}

// Restart rolls the workload's pods; restarted is false when nothing of it
// runs yet (its next deploy starts pods anyway).
func (s *Session) Restart(ctx context.Context, workload string) (restarted bool, err error) {
	t, err := s.Target(workload)
	if err != nil {
		return false, err
	}
	var notRunning *target.NotRunningError
	switch err := t.Restart(ctx); {
	case errors.As(err, &notRunning):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
