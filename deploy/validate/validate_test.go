package validate

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/heraldhq/herald/config"
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

// get is the object of type T named name.
func get[T any](t *testing.T, objs []Object, name string) *T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.Value.(*T); ok && o.Name == name {
			return v
		}
	}
	t.Fatalf("no %T named %s", new(T), name)
	return nil
}

// Every kustomization renders, and every object decodes strictly.
func TestKustomizationsRenderIntoRealTypes(t *testing.T) {
	want := map[string]int{"Deployment": 2, "Service": 2, "PodDisruptionBudget": 2, "ConfigMap": 1, "Job": 1, "ServiceAccount": 1, "NetworkPolicy": 1}
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.Kind]++
			}
			for k, n := range want {
				if kinds[k] != n {
					t.Errorf("%d %s, want %d", kinds[k], k, n)
				}
			}
			t.Logf("%s: %v", dir, kinds)
		})
	}
}

// The example Secret (applied by hand, never by kustomize) decodes, is the
// one the pods mount, and holds every file herald.yaml names, in the form
// herald checks: the checks load the config with its real keys.
func TestExampleSecretServesTheConfig(t *testing.T) {
	obj, err := DecodeFile(filepath.Join(root, "examples/secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := obj.Value.(*corev1.Secret)
	for _, dir := range kustomizations {
		objs := render(t, dir)
		for _, d := range all[appsv1.Deployment](objs) {
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Secret != nil && v.Secret.SecretName != s.Name {
					t.Errorf("%s: Deployment %s mounts Secret %q, the example is %q", dir, d.Name, v.Secret.SecretName, s.Name)
				}
			}
		}
		rep, err := Check(append(objs, obj))
		if err != nil {
			t.Fatalf("%s with the example Secret: %v", dir, err)
		}
		push := rep.Configs[Receiver].Apps["default"].WeChat.Push
		if push.Token.Reveal() != s.StringData["wechat_push_token"] || push.EncodingAESKey.Reveal() != s.StringData["wechat_encoding_aes_key"] {
			t.Errorf("%s: the receiver did not load the example Secret's push token and key", dir)
		}
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
		"Ingress backend with serviceName": `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: r}
spec:
  rules:
    - host: push.example.com
      http:
        paths:
          - path: /wechat/
            pathType: Prefix
            backend: {serviceName: herald-receiver, servicePort: 8081}
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

// Every kustomization passes the checks that the chart passes too, and
// holds what its purpose needs.
func TestKustomizationsPassTheChecks(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			rep, err := Check(render(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{Receiver, Streams, Worker}; !slices.Equal(rep.Components, want) {
				t.Errorf("components %v, want %v", rep.Components, want)
			}
			production := strings.HasPrefix(dir, "overlays/production")
			if n := rep.Configs[Worker].NATS.Replicas; production && n != 3 {
				t.Errorf("nats.replicas %d in production, want 3 (a 3-node JetStream cluster)", n)
			}
			if production {
				if want := []string{Receiver, Worker}; !slices.Equal(rep.Scraped, want) {
					t.Errorf("scraped %v, want %v", rep.Scraped, want)
				}
				if want := []string{"https://push.example.com/wechat/default"}; !slices.Equal(rep.PushURLs, want) {
					t.Errorf("push URLs %v, want %v", rep.PushURLs, want)
				}
			}
			t.Logf("%s: %+v", dir, rep)
		})
	}
}

// One autoscaler per overlay: KEDA's or the HPA, never both.
func TestOneAutoscalerPerOverlay(t *testing.T) {
	want := map[string][]string{"base": nil, "overlays/production": {"ScaledObject"}, "overlays/production-hpa": {"HorizontalPodAutoscaler"}}
	for dir, kinds := range want {
		rep, err := Check(render(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rep.Autoscalers, kinds) {
			t.Errorf("%s: autoscalers %v, want %v", dir, rep.Autoscalers, kinds)
		}
	}
}

// mistake is a change to a correct set of objects that Check must report.
type mistake struct {
	name   string
	change func(t *testing.T, objs []Object) []Object
	want   string // in the error
}

// Each check can fail: a mistake made in the production overlay is
// reported, naming what is wrong.
func TestChecksCatchMistakes(t *testing.T) {
	recv := func(t *testing.T, objs []Object) *corev1.Container {
		return &get[appsv1.Deployment](t, objs, "herald-receiver").Spec.Template.Spec.Containers[0]
	}
	recvPod := func(t *testing.T, objs []Object) *corev1.PodSpec {
		return &get[appsv1.Deployment](t, objs, "herald-receiver").Spec.Template.Spec
	}
	ingressPath := func(t *testing.T, objs []Object) *networkingv1.HTTPIngressPath {
		return &get[networkingv1.Ingress](t, objs, "herald-receiver").Spec.Rules[0].HTTP.Paths[0]
	}
	editConfig := func(t *testing.T, objs []Object, old, new string) {
		for _, cm := range all[corev1.ConfigMap](objs) {
			for k, v := range cm.Data {
				if !strings.Contains(v, old) {
					t.Fatalf("ConfigMap %s has no %q", cm.Name, old)
				}
				cm.Data[k] = strings.ReplaceAll(v, old, new)
			}
		}
	}
	cases := []mistake{
		{"receiver port is not receiver.http_addr", func(t *testing.T, objs []Object) []Object {
			recv(t, objs).Ports[0].ContainerPort = 8082
			return objs
		}, "receiver.http_addr is :8081, the container port http is 8082"},
		{"receiver.http_addr on loopback", func(t *testing.T, objs []Object) []Object {
			editConfig(t, objs, `http_addr: ":8081"`, `http_addr: "127.0.0.1:8081"`)
			return objs
		}, "only the pod itself can reach it"},
		{"readiness probe by number", func(t *testing.T, objs []Object) []Object {
			recv(t, objs).ReadinessProbe.HTTPGet.Port = intstr.FromInt32(8081)
			return objs
		}, "readiness probe on port 8081, want the named port http"},
		{"readiness probe on /healthz", func(t *testing.T, objs []Object) []Object {
			recv(t, objs).ReadinessProbe.HTTPGet.Path = "/healthz"
			return objs
		}, "readiness probe path /healthz"},
		{"service links on", func(t *testing.T, objs []Object) []Object {
			recvPod(t, objs).EnableServiceLinks = nil
			return objs
		}, "Deployment herald-receiver: pod spec does not set enableServiceLinks: false"},
		{"privileged", func(t *testing.T, objs []Object) []Object {
			recv(t, objs).SecurityContext.Privileged = new(true)
			return objs
		}, "herald-receiver: container herald security context"},
		{"no memory limit", func(t *testing.T, objs []Object) []Object {
			delete(recv(t, objs).Resources.Limits, corev1.ResourceMemory)
			return objs
		}, "herald-receiver: resources"},
		{"grace period shorter than the preStop pause and a push", func(t *testing.T, objs []Object) []Object {
			recvPod(t, objs).TerminationGracePeriodSeconds = new(int64(8))
			return objs
		}, "terminationGracePeriodSeconds 8s is not above the preStop pause 5s and a push's deadline 3s"},
		{"grace period under shutdown_grace", func(t *testing.T, objs []Object) []Object {
			get[appsv1.Deployment](t, objs, "herald-worker").Spec.Template.Spec.TerminationGracePeriodSeconds = new(int64(25))
			return objs
		}, "not above worker.shutdown_grace 25s"},
		{"a latest image", func(t *testing.T, objs []Object) []Object {
			recv(t, objs).Image = "ghcr.io/heraldhq/herald:latest"
			return objs
		}, `image "ghcr.io/heraldhq/herald:latest": want a pinned release tag`},
		{"two builds", func(t *testing.T, objs []Object) []Object {
			recv(t, objs).Image = "ghcr.io/heraldhq/herald:v1.0.9"
			return objs
		}, "every part of herald runs one build"},
		{"no app with push settings", func(t *testing.T, objs []Object) []Object {
			editConfig(t, objs, "        token_file: /secrets/wechat_push_token\n        encoding_aes_key_file: /secrets/wechat_encoding_aes_key\n", "")
			return objs
		}, "no app has apps.<app>.wechat.push.token"},
		{"a misspelt setting in the receiver's environment", func(t *testing.T, objs []Object) []Object {
			c := recv(t, objs)
			c.Env = append(c.Env, corev1.EnvVar{Name: "HERALD_RECEIVER_PATH_PREFX", Value: "/push/"})
			return objs
		}, "HERALD_RECEIVER_PATH_PREFX: no such setting"},
		{"the Secret lacks a file herald.yaml names", func(t *testing.T, objs []Object) []Object {
			return append(objs, Object{APIVersion: "v1", Kind: "Secret", Name: "herald-secrets", Value: &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "herald-secrets"},
				StringData: map[string]string{"wechat_app_secret": "s", "wechat_push_token": "pushToken1"},
			}})
		}, "encoding_aes_key_file: open /secrets/wechat_encoding_aes_key"},
		{"the Secret's EncodingAESKey is malformed", func(t *testing.T, objs []Object) []Object {
			return append(objs, Object{APIVersion: "v1", Kind: "Secret", Name: "herald-secrets", Value: &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "herald-secrets"},
				StringData: map[string]string{"wechat_app_secret": "s", "wechat_push_token": "pushToken1", "wechat_encoding_aes_key": "short"},
			}})
		}, "encoding_aes_key: must be 43 letters and digits"},
		{"two budgets over the receiver", func(t *testing.T, objs []Object) []Object {
			get[policyv1.PodDisruptionBudget](t, objs, "herald-worker").Spec.Selector.MatchLabels[LabelComponent] = Receiver
			return objs
		}, "herald-receiver: its pods are under 2 PodDisruptionBudgets"},
		{"a budget that blocks drains", func(t *testing.T, objs []Object) []Object {
			pdb := get[policyv1.PodDisruptionBudget](t, objs, "herald-receiver")
			pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable = nil, new(intstr.FromInt32(3))
			return objs
		}, "minAvailable 3 of 3 replicas of Deployment herald-receiver blocks every drain"},
		{"a Service targets a number", func(t *testing.T, objs []Object) []Object {
			get[corev1.Service](t, objs, "herald-receiver").Spec.Ports[0].TargetPort = intstr.FromInt32(8081)
			return objs
		}, "Service herald-receiver: port"},
		{"a Service selects the worker and the receiver", func(t *testing.T, objs []Object) []Object {
			delete(get[corev1.Service](t, objs, "herald-receiver").Spec.Selector, LabelComponent)
			return objs
		}, "Service herald-receiver selects the pods of"},
		{"the Ingress routes another prefix", func(t *testing.T, objs []Object) []Object {
			ingressPath(t, objs).Path = "/push/"
			return objs
		}, "host push.example.com does not route app default's push URL /wechat/default"},
		{"the Ingress publishes /metrics", func(t *testing.T, objs []Object) []Object {
			ingressPath(t, objs).Path = "/"
			return objs
		}, "push.example.com/metrics is public"},
		{"the Ingress without TLS", func(t *testing.T, objs []Object) []Object {
			get[networkingv1.Ingress](t, objs, "herald-receiver").Spec.TLS = nil
			return objs
		}, "host push.example.com is not under TLS"},
		{"the Ingress routes to the worker", func(t *testing.T, objs []Object) []Object {
			ingressPath(t, objs).Backend.Service.Name = "herald-worker"
			return objs
		}, "Service herald-worker is not the receiver's"},
		{"the Ingress names a Service port that is not there", func(t *testing.T, objs []Object) []Object {
			ingressPath(t, objs).Backend.Service.Port.Name = "https"
			return objs
		}, "Service herald-receiver has no port"},
		{"KEDA scales the receiver", func(t *testing.T, objs []Object) []Object {
			get[kedav1alpha1.ScaledObject](t, objs, "herald-worker").Spec.ScaleTargetRef.Name = "herald-receiver"
			return objs
		}, "it scales the worker Deployment on its consumer's lag"},
		{"KEDA beyond max_ack_pending", func(t *testing.T, objs []Object) []Object {
			get[kedav1alpha1.ScaledObject](t, objs, "herald-worker").Spec.MaxReplicaCount = new(int32(30))
			return objs
		}, "30 replicas need nats.max_ack_pending >= 19200"},
		{"KEDA scales on in-flight work", func(t *testing.T, objs []Object) []Object {
			get[kedav1alpha1.ScaledObject](t, objs, "herald-worker").Spec.Triggers[0].Metadata["lagThreshold"] = "500"
			return objs
		}, "lagThreshold 500 is not above what one replica holds in flight (640)"},
		{"no NATS egress", func(t *testing.T, objs []Object) []Object {
			np := get[networkingv1.NetworkPolicy](t, objs, "herald")
			np.Spec.Egress = slices.DeleteFunc(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
				return slices.ContainsFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port.String() == "4222" })
			})
			return objs
		}, "lets no traffic out to port 4222"},
		{"a ServiceMonitor on a port no Service names", func(t *testing.T, objs []Object) []Object {
			get[monitoringv1.ServiceMonitor](t, objs, "herald-receiver").Spec.Endpoints[0].Port = "metrics"
			return objs
		}, `scrapes port "metrics", which Service herald-receiver does not name`},
		{"a streams Job GitOps would patch", func(t *testing.T, objs []Object) []Object {
			delete(get[batchv1.Job](t, objs, "herald-streams-apply").Annotations, "argocd.argoproj.io/hook")
			return objs
		}, "GitOps tools must recreate the Job"},
		{"two workers", func(t *testing.T, objs []Object) []Object {
			d := get[appsv1.Deployment](t, objs, "herald-worker").DeepCopy()
			d.Name = "herald-worker-2"
			return append(objs, Object{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, Value: d})
		}, "are both component worker"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check(tc.change(t, render(t, "overlays/production")))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v\nwant an error with %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// The simulation finds what crash-looped the first deployment: a Service
// named herald-worker, a pod with service links on, and a config loader
// that treats HERALD_WORKER_PORT as a setting. Today's loader skips the
// links; a real typo beside them is still refused.
func TestServiceLinksReachTheLoader(t *testing.T) {
	objs := render(t, "base")
	env := ServiceLinkEnv(all[corev1.Service](objs))
	for _, prefix := range []string{"HERALD_WORKER_PORT=tcp://", "HERALD_RECEIVER_PORT=tcp://", "HERALD_RECEIVER_SERVICE_PORT_HTTP=8081"} {
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, prefix) }) {
			t.Fatalf("service links %v lack %s", env, prefix)
		}
	}
	if _, err := config.Load("", env); err != nil {
		t.Fatalf("config with the service links: %v", err)
	}
	if _, err := config.Load("", append(env, "HERALD_WORKER_CONCURENCY=10")); err == nil || !strings.Contains(err.Error(), "HERALD_WORKER_CONCURENCY: no such setting") {
		t.Fatalf("a typo beside the service links = %v, want it named", err)
	}
}
