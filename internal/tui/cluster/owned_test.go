package cluster

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The events pane shows what happens to a workload: its own objects,
// KEDA's scaling of it among them, and nothing of a workload whose name
// merely starts the same.
func TestOwnedBy(t *testing.T) {
	for _, tc := range []struct {
		kind, name string
		want       bool
	}{
		{"Deployment", "thumbs", true},
		{"ScaledObject", "thumbs", true}, // KEDAScaleTargetActivated, ...
		{"InterceptorRoute", "thumbs", true},
		{"ReplicaSet", "thumbs-7c9f8d", true}, // ScalingReplicaSet
		{"Pod", "thumbs-7c9f8d-x2x4q", true},
		{"Service", "thumbs-pods", false}, // not an event source skiff shows
		{"Deployment", "thumbs-api", false},
		{"Pod", "thumbs-api-7c9f8d-x2x4q", false},
	} {
		if got := ownedBy(corev1.ObjectReference{Kind: tc.kind, Name: tc.name}, "thumbs"); got != tc.want {
			t.Errorf("ownedBy(%s %s, thumbs) = %t, want %t", tc.kind, tc.name, got, tc.want)
		}
	}
}
