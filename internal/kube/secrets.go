package kube

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// SetSecretKeys sets keys of Secret name in ns, creating it when missing.
// Other keys stay.
func (c *Client) SetSecretKeys(ctx context.Context, ns, name string, labels map[string]string, data map[string][]byte) error {
	secrets := c.Clientset.CoreV1().Secrets(ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = secrets.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
				Type:       corev1.SecretTypeOpaque,
				Data:       data,
			}, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range data {
			s.Data[k] = v
		}
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
}

// UnsetSecretKeys removes keys from Secret name in ns. It reports the keys
// that were not there.
func (c *Client) UnsetSecretKeys(ctx context.Context, ns, name string, keys []string) (missing []string, err error) {
	secrets := c.Clientset.CoreV1().Secrets(ns)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		missing = nil
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			missing = keys
			return nil
		}
		if err != nil {
			return err
		}
		for _, k := range keys {
			if _, ok := s.Data[k]; !ok {
				missing = append(missing, k)
			}
			delete(s.Data, k)
		}
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
	return missing, err
}

// SecretKeys lists the keys (never the values) of Secret name in ns.
func (c *Client) SecretKeys(ctx context.Context, ns, name string) ([]string, error) {
	s, err := c.Clientset.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// DeleteSecret deletes Secret name in ns; a missing one is not an error.
func (c *Client) DeleteSecret(ctx context.Context, ns, name string) (bool, error) {
	err := c.Clientset.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("deleting Secret %s/%s: %w", ns, name, err)
	}
	return true, nil
}

// ApplyPullSecret creates or refreshes the kubernetes.io/dockerconfigjson
// Secret name in ns with exactly data. It reports whether it changed it.
func (c *Client) ApplyPullSecret(ctx context.Context, ns, name string, labels map[string]string, data []byte) (changed bool, err error) {
	secrets := c.Clientset.CoreV1().Secrets(ns)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = secrets.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
				Type:       corev1.SecretTypeDockerConfigJson,
				Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
			}, metav1.CreateOptions{})
			changed = err == nil
			return err
		}
		if err != nil {
			return err
		}
		if s.Type != corev1.SecretTypeDockerConfigJson {
			return fmt.Errorf("Secret %s/%s exists and is of type %s, not a pull secret; rename or remove it", ns, name, s.Type)
		}
		if string(s.Data[corev1.DockerConfigJsonKey]) == string(data) {
			return nil
		}
		s.Data = map[string][]byte{corev1.DockerConfigJsonKey: data}
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		changed = err == nil
		return err
	})
	return changed, err
}
