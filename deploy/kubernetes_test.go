package deploy

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// manifest is one decoded Kubernetes object.
type manifest struct {
	kind, name string
	obj        any
}

// newObject returns an empty typed object for kind, or nil for a kind the
// manifests must not use.
func newObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/Service":
		return &corev1.Service{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}
	}
	return nil
}

// decodeStrict decodes a multi-document YAML stream into the k8s.io/api
// types; an unknown field, a wrong type or an unknown kind is an error.
func decodeStrict(t *testing.T, where string, data []byte) []manifest {
	t.Helper()
	var out []manifest
	for i, doc := range bytes.Split(data, []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("%s document %d: %v", where, i, err)
		}
		obj := newObject(head.APIVersion, head.Kind)
		if obj == nil {
			t.Errorf("%s document %d: unexpected kind %s/%s", where, i, head.APIVersion, head.Kind)
			continue
		}
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			t.Errorf("%s %s/%s: %v", where, head.Kind, head.Metadata.Name, err)
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			t.Errorf("%s %s/%s does not decode strictly into the Kubernetes types: %v", where, head.Kind, head.Metadata.Name, err)
			continue
		}
		out = append(out, manifest{kind: head.Kind, name: head.Metadata.Name, obj: obj})
	}
	return out
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}

// kustomize builds the kustomization in dir (relative to deploy/kubernetes)
// from an in-memory copy of deploy/kubernetes, with a placeholder for each
// file `make certs` writes into overlays/dev/secrets.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir("kubernetes", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile("/"+path, data)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range devSecretFiles {
		if err := mem.WriteFile("/kubernetes/overlays/dev/secrets/"+f, []byte("placeholder")); err != nil {
			t.Fatal(err)
		}
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/kubernetes/"+dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// devSecretFiles are the files scripts/gen-dev-certs.sh writes.
var devSecretFiles = []string{"ca.crt", "etcd.crt", "etcd.key", "etcd-client.crt", "etcd-client.key",
	"controlplane.crt", "controlplane.key", "agent.crt", "agent.key", "admin-token", "read-only-token", "agent-token"}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	for _, overlay := range []string{"base", "overlays/dev", "overlays/external-etcd"} {
		t.Run(overlay, func(t *testing.T) {
			ms := decodeStrict(t, overlay, kustomize(t, overlay))
			if len(ms) == 0 {
				t.Fatal("no objects")
			}
			checkWorkloads(t, overlay, ms)
		})
	}
	t.Run("examples", func(t *testing.T) {
		files, _ := filepath.Glob("kubernetes/examples/*.yaml")
		if len(files) == 0 {
			t.Fatal("no examples")
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checkWorkloads(t, f, decodeStrict(t, f, data))
		}
	})
}

func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	bad := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 3\n")
	ft := &recorder{}
	decodeStrictInto(ft, bad)
	if !ft.failed {
		t.Fatal("a Deployment with spec.replica (typo of replicas) decoded: the strict check would pass vacuously")
	}
}

// recorder collects decode failures for the self-test.
type recorder struct{ failed bool }

func decodeStrictInto(r *recorder, doc []byte) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		r.failed = true
		return
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if dec.Decode(&appsv1.Deployment{}) != nil {
		r.failed = true
	}
}
