package target

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWaitRolledOutReturnsWhenTheLastPodIsReady(t *testing.T) {
	ctx := context.Background()
	d := dep("orders", 2, 1) // one of two ready
	_, cs := cluster(t, t.TempDir(), d)
	rel := deployed("kind: Deployment\nmetadata:\n  name: orders\n")
	rel.Namespace = "shop"

	done := make(chan error, 1)
	go func() { done <- WaitRolledOut(ctx, cs, rel) }()
	// Progress that is not readiness yet: the wait goes on.
	d.Status.ReadyReplicas, d.Status.AvailableReplicas = 2, 1
	if _, err := cs.AppsV1().Deployments("shop").UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("returned %v with a pod not available", err)
	default:
	}
	d.Status.AvailableReplicas = 2
	if _, err := cs.AppsV1().Deployments("shop").UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Already ready: returns at once. Never ready: ctx ends it, named.
	if err := WaitRolledOut(ctx, cs, rel); err != nil {
		t.Fatal(err)
	}
	d.Generation = 2
	if _, err := cs.AppsV1().Deployments("shop").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err := WaitRolledOut(short, cs, rel)
	if err == nil || !strings.Contains(err.Error(), "deployment shop/orders is not ready") {
		t.Fatalf("a new generation not observed: %v", err)
	}
}
