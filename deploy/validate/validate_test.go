package validate

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/worker"
)

const root = "../kubernetes"

// kustomizations are every directory `kubectl apply -k` is meant for.
var kustomizations = []string{"base", "overlays/production", "overlays/production-hpa"}

func render(t *testing.T, dir string) []Object {
	t.Helper()
	objs, err := Render(filepath.Join(root, dir))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find[T any](t *testing.T, objs []Object, kind string) []*T {
	t.Helper()
	var out []*T
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o.Value.(*T))
		}
	}
	return out
}

func one[T any](t *testing.T, objs []Object, kind string) *T {
	t.Helper()
	all := find[T](t, objs, kind)
	if len(all) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(all), kind)
	}
	return all[0]
}

// Every kustomization renders, and every object decodes strictly.
func TestKustomizationsRenderIntoRealTypes(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.Kind]++
			}
			for _, k := range []string{"Deployment", "ConfigMap", "Service", "PodDisruptionBudget", "Job", "ServiceAccount", "NetworkPolicy"} {
				if kinds[k] != 1 {
					t.Errorf("%d %s, want 1", kinds[k], k)
				}
			}
			t.Logf("%s: %v", dir, kinds)
		})
	}
}

// The example Secret (applied by hand, never by kustomize) decodes too.
func TestExampleSecretDecodes(t *testing.T) {
	obj, err := DecodeFile(filepath.Join(root, "examples/secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := obj.Value.(*corev1.Secret)
	d := one[appsv1.Deployment](t, render(t, "overlays/production"), "Deployment")
	var secretName string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secretName = v.Secret.SecretName
		}
	}
	if s.Name != secretName {
		t.Fatalf("example Secret is %q, the Deployment mounts %q", s.Name, secretName)
	}
}

// A field the type does not have fails, whatever the kind.
func TestMisspelledFieldsFail(t *testing.T) {
	cases := map[string]string{
		"misspelled pod field": `
apiVersion: apps/v1
kind: Deployment
metadata: {name: w}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      terminationGracePeriodSecond: 40
      containers: [{name: c, image: i}]
`,
		"wrong case": `
apiVersion: apps/v1
kind: Deployment
metadata: {name: w}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      TerminationGracePeriodSeconds: 40
      containers: [{name: c, image: i}]
`,
		"lower-cased service field": `
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  ports: [{name: http, port: 8080, targetport: http}]
`,
		"ScaledObject with an HPA field name": `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: w}
spec:
  scaleTargetRef: {name: w}
  maxReplicas: 6
  triggers: [{type: nats-jetstream, metadata: {stream: S}}]
`,
		"ServiceMonitor with endpoint for endpoints": `
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: w}
spec:
  selector: {matchLabels: {a: b}}
  endpoint: [{port: http}]
`,
		"duplicate field": `
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data: {a: "1"}
data: {b: "2"}
`,
		"unknown kind": `
apiVersion: apps/v1
kind: Deploymnet
metadata: {name: w}
`,
	}
	for name, manifest := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(manifest))
			if err == nil {
				t.Fatal("decoded without error")
			}
			t.Log(err)
		})
	}
	// The same manifest spelled right decodes: the failures above are the
	// field's, not the fixture's.
	good := strings.Replace(cases["misspelled pod field"], "terminationGracePeriodSecond:", "terminationGracePeriodSeconds:", 1)
	if _, err := Decode([]byte(good)); err != nil {
		t.Fatalf("correct manifest: %v", err)
	}
}

// A misspelled field fails through the whole path: kustomize renders it
// (kustomize does not know the schema), the strict decode does not.
func TestRenderRejectsAMisspelledField(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"kustomization.yaml": "resources: [pdb.yaml]\n",
		"pdb.yaml": `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: herald-worker}
spec:
  maxUnavailble: 1
  selector: {matchLabels: {app: herald}}
`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Render(dir)
	if err == nil || !strings.Contains(err.Error(), "maxUnavailble") {
		t.Fatalf("Render = %v, want an unknown field error naming maxUnavailble", err)
	}
}

// The worker's config in each overlay loads with herald's own loader, and
// the Deployment agrees with it: grace period above shutdown_grace, probes
// and scraping on the one named port that worker.http_addr listens on.
func TestDeploymentAgreesWithHeraldConfig(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			d := one[appsv1.Deployment](t, objs, "Deployment")
			cm := one[corev1.ConfigMap](t, objs, "ConfigMap")
			pod := d.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]

			// HERALD_CONFIG names a file of the mounted ConfigMap.
			path := envValue(c, config.EnvConfig)
			mount := mountOf(t, pod, c, path)
			if mount.vol.ConfigMap == nil || mount.vol.ConfigMap.Name != cm.Name {
				t.Fatalf("%s is not on the ConfigMap %s", path, cm.Name)
			}
			data, ok := cm.Data[filepath.Base(path)]
			if !ok {
				t.Fatalf("ConfigMap %s has no %s", cm.Name, filepath.Base(path))
			}
			// The kubelet's variables for every Service in the namespace,
			// unless the pod turns them off, then the container's own.
			svcs := find[corev1.Service](t, objs, "Service")
			cfg := loadConfig(t, data, pod, c, svcs)

			if strings.HasPrefix(dir, "overlays/production") && cfg.NATS.Replicas != 3 {
				t.Errorf("nats.replicas %d in production, want 3 (a 3-node JetStream cluster)", cfg.NATS.Replicas)
			}
			grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
			if grace <= cfg.Worker.ShutdownGrace {
				t.Errorf("terminationGracePeriodSeconds %v is not above worker.shutdown_grace %v", grace, cfg.Worker.ShutdownGrace)
			}

			if len(c.Ports) != 1 || c.Ports[0].Name != "http" {
				t.Fatalf("container ports %+v, want one named http", c.Ports)
			}
			_, port, err := net.SplitHostPort(cfg.Worker.HTTPAddr)
			if err != nil {
				t.Fatal(err)
			}
			if port != strconv.Itoa(int(c.Ports[0].ContainerPort)) {
				t.Errorf("worker.http_addr %s, container port http %d", cfg.Worker.HTTPAddr, c.Ports[0].ContainerPort)
			}
			for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("%s probe is not an HTTP GET", name)
					continue
				}
				if p.HTTPGet.Port.String() != "http" {
					t.Errorf("%s probe on port %s, want the named port http", name, p.HTTPGet.Port.String())
				}
			}
			if p := c.LivenessProbe.HTTPGet.Path; p != "/healthz" {
				t.Errorf("liveness probe path %s", p)
			}
			if p := c.ReadinessProbe.HTTPGet.Path; p != "/readyz" {
				t.Errorf("readiness probe path %s", p)
			}

			svc := one[corev1.Service](t, objs, "Service")
			for _, p := range svc.Spec.Ports {
				if p.TargetPort.String() != "http" || p.Name != "http" {
					t.Errorf("service port %+v, want name and targetPort http", p)
				}
			}
			for _, sm := range find[monitoringv1.ServiceMonitor](t, objs, "ServiceMonitor") {
				for _, ep := range sm.Spec.Endpoints {
					if ep.Port != "http" || ep.Path != "/metrics" {
						t.Errorf("ServiceMonitor scrapes port %q path %q", ep.Port, ep.Path)
					}
				}
			}
			checkHardened(t, pod)
			if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() ||
				c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Cpu().IsZero() {
				t.Errorf("resources %+v: requests and limits for cpu and memory", c.Resources)
			}

			// The streams Job runs `herald streams apply` on the same config,
			// with its own environment.
			job := one[batchv1.Job](t, objs, "Job")
			jc := job.Spec.Template.Spec.Containers[0]
			if strings.Join(jc.Args[:2], " ") != "streams apply" || jc.Image != c.Image || envValue(jc, config.EnvConfig) != path {
				t.Errorf("Job runs %v on %s with %s", jc.Args, jc.Image, envValue(jc, config.EnvConfig))
			}
			loadConfig(t, data, job.Spec.Template.Spec, jc, svcs)
			checkHardened(t, job.Spec.Template.Spec)
			// GitOps tools cannot patch a Job's template: they must recreate it.
			for k, want := range map[string]string{
				"argocd.argoproj.io/hook":               "Sync",
				"argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
				"kustomize.toolkit.fluxcd.io/force":     "enabled",
			} {
				if got := job.Annotations[k]; got != want {
					t.Errorf("Job annotation %s = %q, want %q", k, got, want)
				}
			}

			for _, img := range []string{c.Image, jc.Image} {
				if _, tag, ok := strings.Cut(img[strings.LastIndex(img, "/")+1:], ":"); !ok || tag == "" || tag == "latest" {
					t.Errorf("image %q: want a pinned release tag", img)
				}
			}
			checkNetworkPolicy(t, one[networkingv1.NetworkPolicy](t, objs, "NetworkPolicy"), d, c)

			// The autoscaler, where there is one, watches this consumer.
			for _, so := range find[kedav1alpha1.ScaledObject](t, objs, "ScaledObject") {
				checkScaledObject(t, so, d, cfg)
			}
		})
	}
}

// One autoscaler per overlay: KEDA's or the HPA, never both.
func TestOneAutoscalerPerOverlay(t *testing.T) {
	want := map[string]string{"base": "", "overlays/production": "ScaledObject", "overlays/production-hpa": "HorizontalPodAutoscaler"}
	for dir, kind := range want {
		objs := render(t, dir)
		so := find[kedav1alpha1.ScaledObject](t, objs, "ScaledObject")
		hpa := find[autoscalingv2.HorizontalPodAutoscaler](t, objs, "HorizontalPodAutoscaler")
		got := ""
		switch {
		case len(so) == 1 && len(hpa) == 0:
			got = "ScaledObject"
		case len(so) == 0 && len(hpa) == 1:
			got = "HorizontalPodAutoscaler"
		case len(so)+len(hpa) > 0:
			got = "both"
		}
		if got != kind {
			t.Errorf("%s: autoscaler %q, want %q", dir, got, kind)
		}
		for _, h := range hpa {
			if h.Spec.ScaleTargetRef.Name != "herald-worker" || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
				t.Errorf("%s: HPA %+v", dir, h.Spec)
			}
		}
	}
}

func checkScaledObject(t *testing.T, so *kedav1alpha1.ScaledObject, d *appsv1.Deployment, cfg *config.Config) {
	t.Helper()
	if so.Spec.ScaleTargetRef.Name != d.Name || so.Namespace != d.Namespace {
		t.Errorf("ScaledObject targets %s/%s, Deployment is %s/%s", so.Namespace, so.Spec.ScaleTargetRef.Name, d.Namespace, d.Name)
	}
	if so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount < *so.Spec.MinReplicaCount {
		t.Errorf("replica bounds %v..%v", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "nats-jetstream" {
		t.Fatalf("triggers %+v, want one nats-jetstream", so.Spec.Triggers)
	}
	m := so.Spec.Triggers[0].Metadata
	if m["stream"] != cfg.NATS.Stream || m["consumer"] != cfg.NATS.Consumer || m["account"] != "$G" {
		t.Errorf("trigger watches %s/%s in %s; config has %s/%s", m["stream"], m["consumer"], m["account"], cfg.NATS.Stream, cfg.NATS.Consumer)
	}
	if _, _, err := net.SplitHostPort(m["natsServerMonitoringEndpoint"]); err != nil {
		t.Errorf("natsServerMonitoringEndpoint %q: %v", m["natsServerMonitoringEndpoint"], err)
	}
	lag, err := strconv.Atoi(m["lagThreshold"])
	if err != nil || lag <= 0 {
		t.Fatalf("lagThreshold %q", m["lagThreshold"])
	}
	// A replica holds some jobs unacknowledged by itself: a threshold at or
	// below that would scale on in-flight work.
	held := worker.Config{Concurrency: cfg.Worker.Concurrency}.MaxUnacked()
	if lag <= held {
		t.Errorf("lagThreshold %d is not above what one replica holds in flight (%d)", lag, held)
	}
	if act, err := strconv.Atoi(m["activationLagThreshold"]); err != nil || act < held || act > lag {
		t.Errorf("activationLagThreshold %q, want one replica's in-flight window %d, at most lagThreshold %d", m["activationLagThreshold"], held, lag)
	}
	// Every replica's window must fit in the consumer's max_ack_pending.
	if need := int(*so.Spec.MaxReplicaCount) * held; need > cfg.NATS.MaxAckPending {
		t.Errorf("maxReplicaCount %d needs max_ack_pending >= %d, config has %d", *so.Spec.MaxReplicaCount, need, cfg.NATS.MaxAckPending)
	}
}

// checkNetworkPolicy: the policy selects the worker's pods, lets in only
// its http port, and lets out DNS, NATS, Redis and HTTPS.
func checkNetworkPolicy(t *testing.T, np *networkingv1.NetworkPolicy, d *appsv1.Deployment, c corev1.Container) {
	t.Helper()
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("NetworkPolicy selects %s=%s, the worker's pods are %v", k, v, d.Spec.Template.Labels)
		}
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.String() != c.Ports[0].Name {
		t.Errorf("NetworkPolicy ingress %+v, want the one port %s", np.Spec.Ingress, c.Ports[0].Name)
	}
	out := map[string]bool{}
	for _, rule := range np.Spec.Egress {
		for _, p := range rule.Ports {
			out[p.Port.String()] = true
		}
	}
	for _, port := range []string{"53", "4222", "6379", "443"} {
		if !out[port] {
			t.Errorf("NetworkPolicy lets no traffic out to port %s", port)
		}
	}
}

func checkHardened(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	// herald reads HERALD_* variables as settings; the kubelet's service
	// links for a Service named herald-... are not its business.
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Errorf("pod spec does not set enableServiceLinks: false")
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("container %s security context %+v", c.Name, sc)
		}
	}
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

type mounted struct {
	mount corev1.VolumeMount
	vol   corev1.Volume
}

// mountOf finds the volume that path lies on.
func mountOf(t *testing.T, pod corev1.PodSpec, c corev1.Container, path string) mounted {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if filepath.Dir(path) == m.MountPath || strings.HasPrefix(path, m.MountPath+"/") {
			for _, v := range pod.Volumes {
				if v.Name == m.Name {
					return mounted{m, v}
				}
			}
		}
	}
	t.Fatalf("%s is on no mounted volume", path)
	return mounted{}
}

// loadConfig loads herald.yaml with config.Load as the container would:
// with the Secret's mount point replaced by a directory of stand-in files,
// and with the environment the kubelet gives it, service links included
// unless the pod turns them off.
func loadConfig(t *testing.T, data string, pod corev1.PodSpec, c corev1.Container, svcs []*corev1.Service) *config.Config {
	t.Helper()
	dir := t.TempDir()
	secretDir := filepath.Join(dir, "secrets")
	var secretMount string
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				secretMount = m.MountPath
			}
		}
	}
	if secretMount == "" {
		t.Fatal("no Secret is mounted")
	}
	if err := os.MkdirAll(secretDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Every *_file under the mount point gets a stand-in.
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if _, v, ok := strings.Cut(line, "_file:"); ok {
			p := strings.TrimSpace(v)
			if rel, ok := strings.CutPrefix(p, secretMount+"/"); ok {
				if err := os.WriteFile(filepath.Join(secretDir, rel), []byte("stand-in\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	file := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(data, secretMount+"/", secretDir+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	var environ []string
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		environ = ServiceLinkEnv(svcs)
	}
	environ = append(environ, containerEnv(c)...)
	cfg, err := config.Load(file, environ)
	if err != nil {
		t.Fatalf("herald.yaml does not load in container %s: %v", c.Name, err)
	}
	return cfg
}

// containerEnv is c's own environment, with stand-ins where the kubelet
// would fill in a field or a key. An optional key is left out, as when it
// is missing.
func containerEnv(c corev1.Container) []string {
	var env []string
	for _, e := range c.Env {
		v := e.Value
		if from := e.ValueFrom; from != nil {
			switch {
			case from.FieldRef != nil:
				v = "stand-in-pod"
			case from.ResourceFieldRef != nil:
				v = "100663296"
			case from.SecretKeyRef != nil && from.SecretKeyRef.Optional != nil && *from.SecretKeyRef.Optional,
				from.ConfigMapKeyRef != nil && from.ConfigMapKeyRef.Optional != nil && *from.ConfigMapKeyRef.Optional:
				continue
			default:
				v = "stand-in"
			}
		}
		env = append(env, e.Name+"="+v)
	}
	return env
}

// The simulation finds what crash-looped the first deployment: a Service
// named herald-worker, a pod with service links on, and a config loader
// that treats HERALD_WORKER_PORT as a setting. Today's loader skips the
// links; a real typo beside them is still refused.
func TestServiceLinksReachTheLoader(t *testing.T) {
	objs := render(t, "base")
	svcs := find[corev1.Service](t, objs, "Service")
	env := ServiceLinkEnv(svcs)
	if !slices.Contains(env, "HERALD_WORKER_PORT=tcp://10.96.0.10:8080") {
		t.Fatalf("service links %v lack HERALD_WORKER_PORT", env)
	}
	if _, err := config.Load("", env); err != nil {
		t.Fatalf("config with the service links: %v", err)
	}
	if _, err := config.Load("", append(env, "HERALD_WORKER_CONCURENCY=10")); err == nil || !strings.Contains(err.Error(), "HERALD_WORKER_CONCURENCY: no such setting") {
		t.Fatalf("a typo beside the service links = %v, want it named", err)
	}
}
