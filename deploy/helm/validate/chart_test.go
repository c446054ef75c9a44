package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// helm returns the helm binary scripts/test built (EDDY_TEST_HELM); the
// test fails without it rather than skipping.
func helm(t *testing.T) string {
	t.Helper()
	h := os.Getenv("EDDY_TEST_HELM")
	if h == "" {
		t.Fatal("EDDY_TEST_HELM is not set: run ./scripts/test helm, which builds helm from its Go module")
	}
	return h
}

const chart = "../eddy"

func render(t *testing.T, args ...string) (map[string][]byte, error) {
	t.Helper()
	cmd := exec.Command(helm(t), append([]string{"template", "rel", chart}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, &renderError{errb.String()}
	}
	docs, err := split(&out)
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]byte{}
	kinds := map[string]int{}
	for _, d := range docs {
		if err := check(d, kinds); err != nil {
			t.Fatalf("helm template %v: invalid manifest: %v", args, err)
		}
		js, _ := yaml.YAMLToJSON(d)
		var h struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(js, &h)
		byKind[h.Kind+"/"+h.Metadata.Name] = js
	}
	return byKind, nil
}

type renderError struct{ msg string }

func (e *renderError) Error() string { return e.msg }

func TestChartLints(t *testing.T) {
	for _, set := range [][]string{nil, {"--set", "replicaCount=3,redis.url=redis://r:6379/0,ingress.enabled=true,autoscaling.enabled=true,serviceMonitor.enabled=true,gatewayRoute.enabled=true"}} {
		out, err := exec.Command(helm(t), append([]string{"lint", "--strict", chart}, set...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("helm lint %v: %v\n%s", set, err, out)
		}
	}
}

func TestDefaultsOneNodeReadyOnReadyz(t *testing.T) {
	objs, err := render(t)
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := json.Unmarshal(objs["Deployment/rel-eddy"], &d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if *d.Spec.Replicas != 1 || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Fatalf("replicas %d, readiness %s, liveness %s", *d.Spec.Replicas, c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path)
	}
	// preStop 5 s + shutdown_timeout 10 s + 5 s margin
	if g := *d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != 20 {
		t.Fatalf("terminationGracePeriodSeconds %d, want 20", g)
	}
	if c.Lifecycle.PreStop.Sleep.Seconds != 5 {
		t.Fatalf("preStop %+v", c.Lifecycle.PreStop)
	}
	if !*c.SecurityContext.ReadOnlyRootFilesystem || !*d.Spec.Template.Spec.SecurityContext.RunAsNonRoot {
		t.Fatal("container not read-only or not non-root")
	}
	if c.EnvFrom[0].SecretRef.Name != "rel-eddy-keys" || objs["Secret/rel-eddy-keys"] == nil {
		t.Fatalf("keys not from the generated Secret: %+v", c.EnvFrom)
	}
	for _, k := range []string{"PodDisruptionBudget/rel-eddy", "Service/rel-eddy", "ConfigMap/rel-eddy"} {
		if objs[k] == nil {
			t.Fatalf("%s missing", k)
		}
	}
	for _, k := range []string{"Ingress/rel-eddy", "HorizontalPodAutoscaler/rel-eddy", "ServiceMonitor/rel-eddy", "Deployment/rel-eddy-redis"} {
		if objs[k] != nil {
			t.Fatalf("%s rendered although off by default", k)
		}
	}
}

func TestClusterWithIngressHPAAndExistingSecret(t *testing.T) {
	objs, err := render(t, "--set", "replicaCount=3,redis.url=redis://redis:6379/0,shutdownTimeout=1m30s,existingSecret=mine,ingress.enabled=true,ingress.host=rt.example.com,autoscaling.enabled=true,serviceMonitor.enabled=true,gatewayRoute.enabled=true,gatewayRoute.parentRefs[0].name=gw")
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	_ = json.Unmarshal(objs["Deployment/rel-eddy"], &d)
	if d.Spec.Replicas != nil {
		t.Fatal("replicas set although the HPA owns them")
	}
	if g := *d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != 100 {
		t.Fatalf("terminationGracePeriodSeconds %d for 1m30s, want 100", g)
	}
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["EDDY_REDIS"] != "redis://redis:6379/0" {
		t.Fatalf("EDDY_REDIS %q", env["EDDY_REDIS"])
	}
	if objs["Secret/rel-eddy-keys"] != nil || d.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef.Name != "mine" {
		t.Fatal("existingSecret not used")
	}
	var ing networkingv1.Ingress
	_ = json.Unmarshal(objs["Ingress/rel-eddy"], &ing)
	if ing.Annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] != "3600" || ing.Spec.Rules[0].Host != "rt.example.com" {
		t.Fatalf("ingress %+v", ing.ObjectMeta.Annotations)
	}
	for _, k := range []string{"HorizontalPodAutoscaler/rel-eddy", "ServiceMonitor/rel-eddy", "HTTPRoute/rel-eddy"} {
		if objs[k] == nil {
			t.Fatalf("%s missing", k)
		}
	}
}

func TestBundledRedisForTryingOut(t *testing.T) {
	objs, err := render(t, "--set", "replicaCount=2,redis.bundled=true")
	if err != nil {
		t.Fatal(err)
	}
	if objs["Deployment/rel-eddy-redis"] == nil || objs["Service/rel-eddy-redis"] == nil {
		t.Fatal("bundled Redis not rendered")
	}
	if !strings.Contains(string(objs["Deployment/rel-eddy"]), "redis://rel-eddy-redis:6379/0") {
		t.Fatal("nodes not pointed at the bundled Redis")
	}
}

func TestSeveralNodesWithoutRedisRefused(t *testing.T) {
	_, err := render(t, "--set", "replicaCount=3")
	if err == nil || !strings.Contains(err.Error(), "needs Redis") {
		t.Fatalf("3 nodes without Redis: %v, want a refusal naming Redis", err)
	}
}

func TestValidatorCatchesAMisspeltField(t *testing.T) {
	bad := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"
	if err := check([]byte(bad), map[string]int{}); err == nil {
		t.Fatal("a misspelt field passed validation")
	}
}
