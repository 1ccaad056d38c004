package deploy

import (
	"fmt"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// checkWorkloads checks what the deploy guide promises of the objects of
// one build: hardened pods, probes where the binaries serve them, the
// control plane's replicas, PDB and anti-affinity, a 3-member etcd with
// TLS, command lines and HANGAR_* variables the binaries accept, and every
// Secret, ConfigMap and Service a pod or monitor names.
func checkWorkloads(t *testing.T, where string, ms []manifest) {
	t.Helper()
	byKind := map[string]map[string]any{}
	for _, m := range ms {
		if byKind[m.kind] == nil {
			byKind[m.kind] = map[string]any{}
		}
		byKind[m.kind][m.name] = m.obj
	}
	has := func(kind, name string) bool { _, ok := byKind[kind][name]; return ok }
	full := strings.HasPrefix(where, "overlays/dev")
	for _, m := range ms {
		var spec *corev1.PodSpec
		var podLabels map[string]string
		switch o := m.obj.(type) {
		case *appsv1.Deployment:
			spec, podLabels = &o.Spec.Template.Spec, o.Spec.Template.Labels
			if m.name == "hangar-controlplane" {
				checkControlPlane(t, where, o, byKind)
			}
		case *appsv1.StatefulSet:
			spec, podLabels = &o.Spec.Template.Spec, o.Spec.Template.Labels
			if m.name == "hangar-etcd" {
				checkEtcd(t, where, o)
			}
		case *appsv1.DaemonSet:
			spec, podLabels = &o.Spec.Template.Spec, o.Spec.Template.Labels
		case *monitoringv1.ServiceMonitor:
			if !has("Service", m.name) {
				t.Errorf("%s: ServiceMonitor %s selects no Service of that name", where, m.name)
			}
		}
		if spec == nil {
			continue
		}
		name := fmt.Sprintf("%s %s/%s", where, m.kind, m.name)
		if len(podLabels) == 0 {
			t.Errorf("%s: pod template without labels", name)
		}
		checkPod(t, name, spec)
		if !full {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Secret != nil && !has("Secret", v.Secret.SecretName) {
				t.Errorf("%s: volume %s names Secret %s, which the build does not create", name, v.Name, v.Secret.SecretName)
			}
			if v.ConfigMap != nil && !has("ConfigMap", v.ConfigMap.Name) {
				t.Errorf("%s: volume %s names ConfigMap %s, which the build does not create", name, v.Name, v.ConfigMap.Name)
			}
		}
	}
	for _, o := range byKind["PodDisruptionBudget"] {
		pdb := o.(*policyv1.PodDisruptionBudget)
		if !selectsSome(pdb.Spec.Selector.MatchLabels, ms) {
			t.Errorf("%s: PodDisruptionBudget %s selects no pod template", where, pdb.Name)
		}
	}
}

func selectsSome(sel map[string]string, ms []manifest) bool {
	s := labels.SelectorFromSet(sel)
	for _, m := range ms {
		switch o := m.obj.(type) {
		case *appsv1.Deployment:
			if s.Matches(labels.Set(o.Spec.Template.Labels)) {
				return true
			}
		case *appsv1.StatefulSet:
			if s.Matches(labels.Set(o.Spec.Template.Labels)) {
				return true
			}
		}
	}
	return false
}

// checkPod checks the hardening every Hangar pod has and the command line
// of every Hangar container.
func checkPod(t *testing.T, name string, spec *corev1.PodSpec) {
	t.Helper()
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pod does not set runAsNonRoot", name)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: pod mounts a Kubernetes API token it does not need", name)
	}
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		bin := hangarBinary(c.Image)
		if bin == "" {
			continue
		}
		cn := name + " container " + c.Name
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || len(sc.Capabilities.Drop) == 0 {
			t.Errorf("%s: needs allowPrivilegeEscalation false, readOnlyRootFilesystem true and capabilities dropped", cn)
		}
		checkArgs(t, cn, bin, c.Args)
		for _, e := range c.Env {
			if flag, ok := strings.CutPrefix(e.Name, "HANGAR_"); ok {
				f := "--" + strings.ReplaceAll(strings.ToLower(flag), "_", "-")
				if err := argsError(bin, append(append([]string{}, c.Args...), f+"=x")); err != nil && strings.Contains(err.Error(), "unknown flag") {
					t.Errorf("%s: %s matches no flag of %s (%s)", cn, e.Name, bin, f)
				}
			}
		}
		probe := c.ReadinessProbe
		if probe == nil {
			probe = c.StartupProbe
		}
		if bin == "hangar-agent" || bin == "hangar-controlplane" {
			want := map[string]string{"hangar-agent": "/health/ready", "hangar-controlplane": "/readyz"}[bin]
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want {
				t.Errorf("%s: readiness (or startup) probe must GET %s", cn, want)
			}
		}
	}
}

// hangarBinary returns the binary a container image holds, "" for others.
func hangarBinary(image string) string {
	image = image[strings.LastIndex(image, "/")+1:]
	name, _, _ := strings.Cut(image, ":")
	switch name {
	case "hangar-agent", "hangar-controlplane", "hangarctl", "mcp-math":
		return name
	}
	return ""
}

func checkControlPlane(t *testing.T, where string, d *appsv1.Deployment, byKind map[string]map[string]any) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("%s: the control plane runs %v replicas, want 3", where, d.Spec.Replicas)
	}
	a := d.Spec.Template.Spec.Affinity
	if a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution)+
		len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Errorf("%s: the control plane has no pod anti-affinity", where)
	}
	if _, ok := byKind["PodDisruptionBudget"]["hangar-controlplane"]; !ok {
		t.Errorf("%s: no PodDisruptionBudget for the control plane", where)
	}
	if _, ok := byKind["NetworkPolicy"]["hangar-controlplane"]; !ok {
		t.Errorf("%s: no NetworkPolicy for the control plane", where)
	}
	if _, ok := byKind["ServiceMonitor"]["hangar-controlplane"]; !ok {
		t.Errorf("%s: no ServiceMonitor for the control plane", where)
	}
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	for _, k := range []string{"HANGAR_TLS_CERT_FILE", "HANGAR_TLS_CLIENT_CA_FILE", "HANGAR_ETCD_ENDPOINTS", "HANGAR_ETCD_CA_FILE"} {
		if env[k] == "" {
			t.Errorf("%s: the control plane does not set %s (TLS to agents and etcd)", where, k)
		}
	}
	if _, ok := byKind["StatefulSet"]["hangar-etcd"]; !ok && strings.Contains(env["HANGAR_ETCD_ENDPOINTS"], "hangar-etcd") {
		t.Errorf("%s: the control plane points at the in-cluster etcd, which this build does not deploy", where)
	}
}

func checkEtcd(t *testing.T, where string, s *appsv1.StatefulSet) {
	t.Helper()
	if s.Spec.Replicas == nil || *s.Spec.Replicas != 3 {
		t.Errorf("%s: etcd runs %v members, want 3", where, s.Spec.Replicas)
	}
	args := strings.Join(s.Spec.Template.Spec.Containers[0].Args, " ")
	for _, f := range []string{"--client-cert-auth", "--peer-client-cert-auth", "--cert-file=", "--peer-cert-file=", "--listen-client-urls=https://"} {
		if !strings.Contains(args, f) {
			t.Errorf("%s: etcd lacks %s (TLS for clients and peers)", where, f)
		}
	}
	for i := range 3 {
		if !strings.Contains(args, fmt.Sprintf("hangar-etcd-%d=https://", i)) {
			t.Errorf("%s: etcd's --initial-cluster lacks member %d", where, i)
		}
	}
}
