package chart

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// With a signing key, render names the workload's Secret of bus users
// (mounted by the relay, each CronJob its own key) but holds no Secret:
// only deploy fills it. Deploy's values (events.auth.data) make the
// Secret, which then holds exactly those keys.
func TestRenderBusUsers(t *testing.T) {
	doc := strings.Replace(eventsDoc, "  relayImage:", "  credentials: nats/cli.creds\n  signingKey: nats/account.nk\n  tls: {ca: nats/ca.pem}\n  relayImage:", 1)
	doc = strings.Replace(doc, "nats://", "tls://", 1)
	objs := renderAll(t, doc, "thumbs")
	if _, ok := objs["Secret/thumbs-nats"]; ok {
		t.Fatal("render holds the bus users' Secret: only deploy mints them")
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(objs["Deployment/thumbs"]), &d); err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	assertRestricted(t, spec)
	rc := spec.InitContainers[0]
	re := env(rc)
	if re["SKIFF_RELAY_CREDS"] != "/etc/skiff/nats/relay.creds" || re["SKIFF_RELAY_CA"] != "/etc/skiff/nats/ca.crt" || re["SKIFF_RELAY_INBOX"] != "_INBOX_shop_thumbs" {
		t.Errorf("relay env: %v", re)
	}
	if len(rc.VolumeMounts) != 1 || rc.VolumeMounts[0].MountPath != "/etc/skiff/nats" || !rc.VolumeMounts[0].ReadOnly {
		t.Errorf("relay mounts: %+v", rc.VolumeMounts)
	}
	for _, c := range spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.Name == "skiff-nats" {
				t.Errorf("the workload's container %s mounts the bus users", c.Name)
			}
		}
	}
	var vol *corev1.Volume
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == "skiff-nats" {
			vol = &spec.Volumes[i]
		}
	}
	if vol == nil || vol.Secret == nil || vol.Secret.SecretName != "thumbs-nats" || len(vol.Secret.Items) != 2 ||
		vol.Secret.Items[0].Key != "relay.creds" || vol.Secret.Items[1].Key != "ca.crt" {
		t.Fatalf("the relay's volume: %+v (want relay.creds and ca.crt of Secret thumbs-nats only)", vol)
	}
	var cj *batchv1.CronJob
	for k, v := range objs {
		if strings.HasPrefix(k, "CronJob/") {
			cj = &batchv1.CronJob{}
			if err := yaml.UnmarshalStrict([]byte(v), cj); err != nil {
				t.Fatal(err)
			}
		}
	}
	if cj == nil {
		t.Fatal("no CronJob")
	}
	js := cj.Spec.JobTemplate.Spec.Template.Spec
	ce := env(js.Containers[0])
	if ce["SKIFF_RELAY_CREDS"] != "/etc/skiff/nats/user.creds" || ce["SKIFF_RELAY_INBOX"] != "_INBOX_shop_"+cj.Name {
		t.Errorf("CronJob env: %v", ce)
	}
	if len(js.Volumes) != 1 || js.Volumes[0].Secret.Items[0].Key != cj.Name+".creds" || js.Volumes[0].Secret.Items[0].Path != "user.creds" {
		t.Errorf("the CronJob mounts %+v, want its own user only", js.Volumes)
	}

	deployed := renderAllWith(t, doc, "thumbs", map[string]any{"events": map[string]any{"auth": map[string]any{
		"data": map[string]any{"relay.creds": "RELAY", cj.Name + ".creds": "TICK", "ca.crt": "CA"}}}})
	var sec corev1.Secret
	if err := yaml.UnmarshalStrict([]byte(deployed["Secret/thumbs-nats"]), &sec); err != nil {
		t.Fatalf("deploy's Secret: %v\n%s", err, deployed["Secret/thumbs-nats"])
	}
	if string(sec.Data["relay.creds"]) != "RELAY" || string(sec.Data[cj.Name+".creds"]) != "TICK" || string(sec.Data["ca.crt"]) != "CA" || len(sec.Data) != 3 {
		t.Errorf("the Secret holds %v", sec.Data)
	}
}

// Without a signing key or TLS, nothing of the above is rendered.
func TestRenderOpenBus(t *testing.T) {
	objs := renderAll(t, eventsDoc, "thumbs")
	if strings.Contains(objs["Deployment/thumbs"], "skiff-nats") || strings.Contains(objs["Deployment/thumbs"], "SKIFF_RELAY_CREDS") {
		t.Error("an open bus's relay mounts bus users")
	}
}
