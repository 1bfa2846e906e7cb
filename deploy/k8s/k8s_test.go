package k8s

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newObject returns an empty typed object for a manifest's apiVersion and
// kind; an unexpected kind fails the test, so every manifest is checked.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	}
	return nil, fmt.Errorf("unexpected kind %s %s", apiVersion, kind)
}

// object is one decoded manifest.
type object struct {
	file string
	kind string
	name string
	obj  any
}

// decodeStrict decodes one YAML document into its typed object; unknown
// or duplicate fields are errors.
func decodeStrict(doc []byte) (object, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return object{}, err
	}
	obj, err := newObject(meta.APIVersion, meta.Kind)
	if err != nil {
		return object{}, err
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return object{}, fmt.Errorf("%s %s: %w", meta.Kind, meta.Metadata.Name, err)
	}
	return object{kind: meta.Kind, name: meta.Metadata.Name, obj: obj}, nil
}

// documents splits a multi-document YAML file, dropping empty documents.
func documents(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(data, []byte("\n---")) {
		d = bytes.TrimPrefix(bytes.TrimSpace(d), []byte("---"))
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(d []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(d, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l...)
			out = append(out, '\n')
		}
	}
	return out
}

// manifests decodes every resource file the kustomization lists.
func manifests(t *testing.T) []object {
	t.Helper()
	k := kustomization(t)
	var objs []object
	for _, f := range k.Resources {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs := documents(data)
		if len(docs) == 0 {
			t.Errorf("%s: no object", f)
		}
		for _, d := range docs {
			o, err := decodeStrict(d)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			o.file = f
			objs = append(objs, o)
		}
	}
	return objs
}

func kustomization(t *testing.T) types.Kustomization {
	t.Helper()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k types.Kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	return k
}

func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "unknown top-level field", give: "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspek: {}\n"},
		{name: "misspelt probe field", give: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: x\n          livenesProbe: {}\n"},
		{name: "duplicate field", give: "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\nmetadata: {name: y}\n"},
		{name: "unexpected kind", give: "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeStrict([]byte(tt.give)); err == nil {
				t.Fatal("decoded without error, want a strict-decoding error")
			}
		})
	}
}

func TestEveryFileIsListed(t *testing.T) {
	k := kustomization(t)
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f != "kustomization.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("%s is not listed in kustomization.yaml resources", f)
		}
	}
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := manifests(t)
	var got []string
	for _, o := range objs {
		got = append(got, o.kind+"/"+o.name)
	}
	slices.Sort(got)
	want := []string{
		"ConfigMap/nats-config",
		"Deployment/api",
		"Deployment/node-gateway",
		"Deployment/ws-proxy",
		"HorizontalPodAutoscaler/ws-proxy",
		"Namespace/honeybee",
		"PodDisruptionBudget/api",
		"PodDisruptionBudget/nats",
		"PodDisruptionBudget/node-gateway",
		"PodDisruptionBudget/ws-proxy",
		"Secret/honeybee-tokens",
		"Service/api",
		"Service/nats",
		"Service/nats-headless",
		"Service/node-gateway",
		"Service/node-gateway-admin",
		"Service/ws-proxy",
		"StatefulSet/nats",
	}
	if !slices.Equal(got, want) {
		t.Errorf("objects:\n got %v\nwant %v", got, want)
	}
}

// probe is what a service's probes must hit.
type probe struct {
	port              int32
	liveness, readies string
}

func TestWorkloads(t *testing.T) {
	wantProbes := map[string]probe{
		"node-gateway": {port: 9101, liveness: "/healthz", readies: "/readyz"},
		"api":          {port: 9002, liveness: "/health", readies: "/ready"},
		"ws-proxy":     {port: 9003, liveness: "/health", readies: "/ready"},
		"nats":         {port: 8222, liveness: "/healthz?js-enabled-only=true", readies: "/healthz?js-server-only=true"},
	}
	objs := manifests(t)
	seen := map[string]bool{}
	for _, o := range objs {
		var (
			pod    corev1.PodTemplateSpec
			labels map[string]string
		)
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			pod, labels = v.Spec.Template, v.Spec.Selector.MatchLabels
		case *appsv1.StatefulSet:
			pod, labels = v.Spec.Template, v.Spec.Selector.MatchLabels
		default:
			continue
		}
		seen[o.name] = true
		t.Run(o.name, func(t *testing.T) {
			for k, v := range labels {
				if pod.Labels[k] != v {
					t.Errorf("selector %s=%s does not match the pod template", k, v)
				}
			}
			checkPod(t, pod.Spec, wantProbes[o.name])
		})
	}
	for name := range wantProbes {
		if !seen[name] {
			t.Errorf("no workload %s", name)
		}
	}
}

func checkPod(t *testing.T, spec corev1.PodSpec, want probe) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext must set runAsNonRoot and a non-zero runAsUser: %+v", psc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false: no service needs the Kubernetes API")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("container must have readOnlyRootFilesystem: true")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container must have allowPrivilegeEscalation: false")
	}
	if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Error("container must drop ALL capabilities")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("no %s limit", r)
		}
		if req, lim := c.Resources.Requests[r], c.Resources.Limits[r]; req.Cmp(lim) > 0 {
			t.Errorf("%s request %s above limit %s", r, req.String(), lim.String())
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	check := func(kind string, p *corev1.Probe, path string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", kind)
			return
		}
		port := p.HTTPGet.Port.IntVal
		if p.HTTPGet.Port.Type == intstr.String {
			port = ports[p.HTTPGet.Port.StrVal]
		}
		if port != want.port || p.HTTPGet.Path != path {
			t.Errorf("%s probe GET :%d%s, want :%d%s", kind, port, p.HTTPGet.Path, want.port, path)
		}
	}
	check("liveness", c.LivenessProbe, want.liveness)
	check("readiness", c.ReadinessProbe, want.readies)
}

func TestServicesSelectTheirWorkloads(t *testing.T) {
	objs := manifests(t)
	podLabels := map[string]map[string]string{}
	podPorts := map[string]map[string]bool{}
	for _, o := range objs {
		var pod corev1.PodTemplateSpec
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			pod = v.Spec.Template
		case *appsv1.StatefulSet:
			pod = v.Spec.Template
		default:
			continue
		}
		podLabels[o.name] = pod.Labels
		podPorts[o.name] = map[string]bool{}
		for _, p := range pod.Spec.Containers[0].Ports {
			podPorts[o.name][p.Name] = true
		}
	}
	for _, o := range objs {
		svc, ok := o.obj.(*corev1.Service)
		if !ok {
			continue
		}
		workload := svc.Spec.Selector["app.kubernetes.io/name"]
		labels, ok := podLabels[workload]
		if !ok {
			t.Errorf("Service %s selects %q: no such workload", svc.Name, workload)
			continue
		}
		for k, v := range svc.Spec.Selector {
			if labels[k] != v {
				t.Errorf("Service %s selector %s=%s does not match %s's pods", svc.Name, k, v, workload)
			}
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.Type != intstr.String || !podPorts[workload][p.TargetPort.StrVal] {
				t.Errorf("Service %s port %s targets %q, not a named port of %s", svc.Name, p.Name, p.TargetPort.String(), workload)
			}
		}
	}
}

func TestNATSStatefulSet(t *testing.T) {
	for _, o := range manifests(t) {
		ss, ok := o.obj.(*appsv1.StatefulSet)
		if !ok {
			continue
		}
		if ss.Spec.Replicas == nil || *ss.Spec.Replicas != 3 {
			t.Errorf("replicas %v, want 3", ss.Spec.Replicas)
		}
		if ss.Spec.ServiceName != "nats-headless" {
			t.Errorf("serviceName %q, want nats-headless", ss.Spec.ServiceName)
		}
		if ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
			t.Errorf("podManagementPolicy %q, want Parallel (a JetStream cluster needs its quorum to start)", ss.Spec.PodManagementPolicy)
		}
		if len(ss.Spec.VolumeClaimTemplates) != 1 || ss.Spec.VolumeClaimTemplates[0].Name != "data" {
			t.Fatalf("want one volumeClaimTemplate named data")
		}
		mounted := false
		for _, m := range ss.Spec.Template.Spec.Containers[0].VolumeMounts {
			mounted = mounted || (m.Name == "data" && m.MountPath == "/data")
		}
		if !mounted {
			t.Error("the data volume is not mounted at /data (the JetStream store_dir)")
		}
		return
	}
	t.Fatal("no StatefulSet")
}

func TestNATSConfig(t *testing.T) {
	for _, o := range manifests(t) {
		cm, ok := o.obj.(*corev1.ConfigMap)
		if !ok || cm.Name != "nats-config" {
			continue
		}
		// Parse it as the server in the image does, with the pod's env.
		t.Setenv("POD_NAME", "nats-1")
		var opts server.Options
		if err := opts.ProcessConfigString(cm.Data["nats.conf"]); err != nil {
			t.Fatalf("nats.conf: %v", err)
		}
		if opts.ServerName != "nats-1" || !opts.JetStream || opts.StoreDir != "/data" {
			t.Errorf("server name %q, JetStream %v in %q; want nats-1, on, /data", opts.ServerName, opts.JetStream, opts.StoreDir)
		}
		var routes []string
		for _, r := range opts.Routes {
			routes = append(routes, r.Host)
		}
		slices.Sort(routes)
		if want := []string{"nats-0.nats-headless:6222", "nats-1.nats-headless:6222", "nats-2.nats-headless:6222"}; !slices.Equal(routes, want) {
			t.Errorf("routes %v, want %v", routes, want)
		}
		if opts.Cluster.Port != 6222 || opts.Port != 4222 || opts.HTTPPort != 8222 {
			t.Errorf("ports client %d cluster %d monitor %d, want 4222, 6222, 8222", opts.Port, opts.Cluster.Port, opts.HTTPPort)
		}
		return
	}
	t.Fatal("no nats-config ConfigMap")
}

// TestKustomizeBuild builds the kustomization as `kubectl apply -k` would
// and checks what comes out: every object in the namespace, the generated
// ConfigMap wired into every service, and each output object still
// decoding strictly.
func TestKustomizeBuild(t *testing.T) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), ".")
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	var (
		got       []string
		configMap string
		envRefs   = map[string]string{}
		images    = map[string]string{}
	)
	for _, d := range documents(out) {
		o, err := decodeStrict(d)
		if err != nil {
			t.Errorf("built object: %v", err)
			continue
		}
		name := o.name
		switch v := o.obj.(type) {
		case *corev1.ConfigMap:
			if strings.HasPrefix(v.Name, "honeybee-config-") {
				configMap, name = v.Name, "honeybee-config-<hash>"
				if v.Data["HONEYBEE_STREAM_REPLICAS"] != "3" || v.Data["HONEYBEE_KV_REPLICAS"] != "3" {
					t.Errorf("generated ConfigMap: replicas %q/%q, want 3/3", v.Data["HONEYBEE_STREAM_REPLICAS"], v.Data["HONEYBEE_KV_REPLICAS"])
				}
			}
		case *appsv1.Deployment:
			c := v.Spec.Template.Spec.Containers[0]
			images[v.Name] = c.Image
			for _, e := range c.EnvFrom {
				if e.ConfigMapRef != nil {
					envRefs[v.Name] = e.ConfigMapRef.Name
				}
			}
		case *appsv1.StatefulSet:
			images[v.Name] = v.Spec.Template.Spec.Containers[0].Image
		}
		if ns := namespaceOf(o.obj); o.kind != "Namespace" && ns != "honeybee" {
			t.Errorf("%s/%s in namespace %q, want honeybee", o.kind, o.name, ns)
		}
		got = append(got, o.kind+"/"+name)
	}
	slices.Sort(got)
	want := []string{
		"ConfigMap/honeybee-config-<hash>", "ConfigMap/nats-config",
		"Deployment/api", "Deployment/node-gateway", "Deployment/ws-proxy",
		"HorizontalPodAutoscaler/ws-proxy", "Namespace/honeybee",
		"PodDisruptionBudget/api", "PodDisruptionBudget/nats", "PodDisruptionBudget/node-gateway", "PodDisruptionBudget/ws-proxy",
		"Secret/honeybee-tokens",
		"Service/api", "Service/nats", "Service/nats-headless", "Service/node-gateway", "Service/node-gateway-admin", "Service/ws-proxy",
		"StatefulSet/nats",
	}
	if !slices.Equal(got, want) {
		t.Errorf("kustomize build:\n got %v\nwant %v", got, want)
	}
	for _, d := range []string{"node-gateway", "api", "ws-proxy"} {
		if envRefs[d] != configMap || configMap == "" {
			t.Errorf("Deployment %s takes its settings from %q, want the generated %q", d, envRefs[d], configMap)
		}
	}
	for name, img := range images {
		if want := "honeybee/" + name + ":local"; img != want {
			t.Errorf("%s image %q, want %q", name, img, want)
		}
	}
}

func namespaceOf(obj any) string {
	type namespaced interface{ GetNamespace() string }
	if n, ok := obj.(namespaced); ok {
		return n.GetNamespace()
	}
	return ""
}
