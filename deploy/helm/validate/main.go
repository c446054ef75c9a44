// Command validate checks Kubernetes manifests (a multi-document YAML
// stream on stdin, as `helm template` prints) against the Kubernetes API's
// own Go types: each document is decoded strictly into the type of its
// apiVersion and kind, so an unknown field, a wrong type or a misspelt key
// fails, as kubectl's server-side validation would. It is a separate module
// so the server's module does not depend on the Kubernetes API packages.
//
// Kinds without Go types here (CRDs such as ServiceMonitor and the Gateway
// API's HTTPRoute) get a structural check: apiVersion, kind, metadata.name
// and a spec.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

func typed(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	}
	return nil
}

var crds = map[string]bool{
	"monitoring.coreos.com/v1/ServiceMonitor": true,
	"gateway.networking.k8s.io/v1/HTTPRoute":  true,
}

func main() {
	docs, err := split(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "validate:", err)
		os.Exit(2)
	}
	failed := 0
	kinds := map[string]int{}
	for i, doc := range docs {
		if err := check(doc, kinds); err != nil {
			fmt.Fprintf(os.Stderr, "document %d: %v\n", i+1, err)
			failed++
		}
	}
	for k, n := range kinds {
		fmt.Printf("%s %d\n", k, n)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func check(doc []byte, kinds map[string]int) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec json.RawMessage `json:"spec"`
	}
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return fmt.Errorf("not YAML: %w", err)
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return fmt.Errorf("not an object: %w", err)
	}
	id := head.APIVersion + "/" + head.Kind
	if head.Metadata.Name == "" {
		return fmt.Errorf("%s without metadata.name", id)
	}
	kinds[head.Kind]++
	if crds[id] {
		if len(head.Spec) == 0 {
			return fmt.Errorf("%s %s has no spec", id, head.Metadata.Name)
		}
		return nil
	}
	obj := typed(head.APIVersion, head.Kind)
	if obj == nil {
		return fmt.Errorf("unexpected kind %s (%s)", id, head.Metadata.Name)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return fmt.Errorf("%s %s: %w", id, head.Metadata.Name, err)
	}
	return nil
}

// split cuts a YAML stream at its "---" lines, dropping empty documents.
func split(r io.Reader) ([][]byte, error) {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if strings.TrimSpace(stripComments(cur.String())) != "" {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "---") {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs, sc.Err()
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
