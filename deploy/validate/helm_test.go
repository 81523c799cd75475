package validate

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

const chartDir = "../helm/herald"

var productionValues = []string{filepath.Join(chartDir, "values-production.yaml")}

// The receiver's push settings, for sets that enable it without the
// production values.
var pushSet = []string{
	"config.apps.default.wechat.push.token_file=/secrets/wechat_push_token",
	"config.apps.default.wechat.push.encoding_aes_key_file=/secrets/wechat_encoding_aes_key",
}

func renderChart(t *testing.T, files []string, set ...string) *Rendered {
	t.Helper()
	r, err := RenderChart(Chart{Dir: chartDir, Release: "herald", Namespace: "herald", ValuesFiles: files, Set: set})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func countKinds(objs []Object) map[string]int {
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.Kind]++
	}
	return kinds
}

// The chart renders for the default values and the production values, and
// every object, hooks included, decodes strictly into its API type.
func TestChartRendersIntoRealTypes(t *testing.T) {
	cases := map[string]struct {
		files []string
		want  map[string]int
	}{
		"default": {nil, map[string]int{
			"Deployment": 1, "Service": 1, "PodDisruptionBudget": 1, "ConfigMap": 2, "Job": 1,
			"ServiceAccount": 1, "NetworkPolicy": 1,
		}},
		"production": {productionValues, map[string]int{
			"Deployment": 3, "Service": 3, "PodDisruptionBudget": 2, "ConfigMap": 2, "Job": 1,
			"ServiceAccount": 1, "NetworkPolicy": 1, "Ingress": 1, "ScaledObject": 1, "ServiceMonitor": 2,
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := countKinds(renderChart(t, tc.files).Objects)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("kinds %v, want %v", got, tc.want)
			}
		})
	}
}

// The chart passes the checks the kustomizations pass, and holds what its
// values ask for.
func TestChartPassesTheChecks(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		rep, err := Check(renderChart(t, nil).Objects)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{Streams, Worker}; !slices.Equal(rep.Components, want) {
			t.Errorf("components %v, want %v", rep.Components, want)
		}
		if len(rep.Autoscalers)+len(rep.Scraped)+len(rep.PushURLs) > 0 {
			t.Errorf("the defaults asked for no autoscaler, scraping or Ingress: %+v", rep)
		}
	})
	t.Run("production", func(t *testing.T) {
		r := renderChart(t, productionValues)
		rep, err := Check(r.Objects)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{Console, Receiver, Streams, Worker}; !slices.Equal(rep.Components, want) {
			t.Errorf("components %v, want %v", rep.Components, want)
		}
		if n := rep.Configs[Worker].NATS.Replicas; n != 3 {
			t.Errorf("nats.replicas %d in production, want 3", n)
		}
		if !slices.Equal(rep.Autoscalers, []string{"ScaledObject"}) {
			t.Errorf("autoscalers %v, want KEDA's", rep.Autoscalers)
		}
		if want := []string{Receiver, Worker}; !slices.Equal(rep.Scraped, want) {
			t.Errorf("scraped %v, want %v", rep.Scraped, want)
		}
		if want := []string{"https://push.example.com/wechat/default"}; !slices.Equal(rep.PushURLs, want) {
			t.Errorf("push URLs %v, want %v", rep.PushURLs, want)
		}
		console := get[appsv1.Deployment](t, r.Objects, "herald-console").Spec.Template.Spec.Containers[0]
		if envValue(console, "HERALD_CONSOLE_READ_ONLY") != "true" {
			t.Errorf("the production console is not read-only: %v", console.Env)
		}
		if svc := get[corev1.Service](t, r.Objects, "herald-console"); svc.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("console Service type %s", svc.Spec.Type)
		}
		if !strings.Contains(r.Notes, "https://push.example.com/wechat/<app>") {
			t.Errorf("NOTES do not give the push URL:\n%s", r.Notes)
		}
	})
}

// The streams Job is a pre-install and pre-upgrade hook as Helm itself
// reads the annotations, replaced before it is created again, and its
// config comes from a hook that runs before it.
func TestChartStreamsJobIsAHook(t *testing.T) {
	for _, set := range [][]string{nil, {"secrets.existingSecret=", "secrets.data.wechat_app_secret=s"}} {
		r := renderChart(t, nil, set...)
		byKind := map[string]*releasev1.Hook{}
		for _, h := range r.Hooks {
			byKind[h.Kind] = h
			if !slices.Equal(h.Events, []releasev1.HookEvent{releasev1.HookPreInstall, releasev1.HookPreUpgrade}) {
				t.Errorf("%s %s runs on %v", h.Kind, h.Name, h.Events)
			}
			if !slices.Contains(h.DeletePolicies, releasev1.HookBeforeHookCreation) {
				t.Errorf("%s %s delete policies %v", h.Kind, h.Name, h.DeletePolicies)
			}
		}
		job, cm := byKind["Job"], byKind["ConfigMap"]
		if job == nil || cm == nil || cm.Weight >= job.Weight {
			t.Fatalf("hooks %+v: want the config before the Job", r.Hooks)
		}
		if slices.Contains(job.DeletePolicies, releasev1.HookSucceeded) {
			t.Errorf("the Job is deleted when it succeeds: its log is gone")
		}
		if s := byKind["Secret"]; (len(set) > 0) != (s != nil) || s != nil && s.Weight >= job.Weight {
			t.Errorf("with %v, the Secret hook is %+v", set, s)
		}
		if _, err := Check(r.Objects); err != nil {
			t.Errorf("with %v: %v", set, err)
		}
	}
}

// One autoscaler, or none, as worker.autoscaling.kind says; a kind of
// its own is refused by the values' schema.
func TestChartAutoscalerChoice(t *testing.T) {
	for kind, want := range map[string][]string{"": nil, "keda": {"ScaledObject"}, "hpa": {"HorizontalPodAutoscaler"}} {
		r := renderChart(t, nil, "worker.autoscaling.kind="+kind)
		rep, err := Check(r.Objects)
		if err != nil {
			t.Fatalf("%q: %v", kind, err)
		}
		if !slices.Equal(rep.Autoscalers, want) {
			t.Errorf("%q: autoscalers %v, want %v", kind, rep.Autoscalers, want)
		}
		// The Deployment leaves the count to the autoscaler, else has it.
		d := get[appsv1.Deployment](t, r.Objects, "herald-worker")
		if (d.Spec.Replicas == nil) != (kind != "") {
			t.Errorf("%q: Deployment replicas %v", kind, d.Spec.Replicas)
		}
		for _, h := range all[autoscalingv2.HorizontalPodAutoscaler](r.Objects) {
			if h.Spec.MaxReplicas != 6 || *h.Spec.MinReplicas != 2 {
				t.Errorf("HPA replicas %d..%d", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
			}
		}
	}
	_, err := RenderChart(Chart{Dir: chartDir, Release: "herald", Namespace: "herald", Set: []string{"worker.autoscaling.kind=both"}})
	if err == nil || !strings.Contains(err.Error(), "kind") {
		t.Fatalf("kind both = %v, want the schema to refuse it", err)
	}
}

// Mistakes in the values are refused when the chart renders (the schema,
// the templates) or by the checks (herald's own rules).
func TestChartRefusesMistakes(t *testing.T) {
	rendering := map[string]struct {
		set  []string
		want string
	}{
		"misspelt value":             {[]string{"worker.replica=3"}, "replica"},
		"misspelt nested value":      {[]string{"receiver.ingres.enabled=true"}, "ingres"},
		"latest image":               {[]string{"image.tag=latest"}, "tag"},
		"both secret sources":        {[]string{"secrets.data.a=b"}, "give existingSecret or data, not both"},
		"Ingress without a host":     {[]string{"receiver.enabled=true", "receiver.ingress.enabled=true", "receiver.ingress.host="}, "receiver.ingress.host"},
		"a budget that lets none go": {[]string{"worker.pdb.maxUnavailable=0"}, "maxUnavailable"},
	}
	for name, tc := range rendering {
		t.Run(name, func(t *testing.T) {
			_, err := RenderChart(Chart{Dir: chartDir, Release: "herald", Namespace: "herald", Set: tc.set})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RenderChart = %v, want an error with %q", err, tc.want)
			}
			t.Log(err)
		})
	}
	checking := map[string]struct {
		set  []string
		want string
	}{
		"a receiver without push settings": {[]string{"receiver.enabled=true"},
			"no app has apps.<app>.wechat.push.token"},
		"a grace period under shutdown_grace": {[]string{"worker.terminationGracePeriodSeconds=20"},
			"terminationGracePeriodSeconds 20s is not above worker.shutdown_grace 25s"},
		"a misspelt herald setting": {[]string{"config.worker.concurency=10"},
			"worker.concurency"},
		"KEDA past max_ack_pending": {[]string{"worker.autoscaling.kind=keda", "worker.autoscaling.maxReplicas=40"},
			"40 replicas need nats.max_ack_pending >= 25600"},
		"KEDA on in-flight work": {[]string{"worker.autoscaling.kind=keda", "worker.autoscaling.keda.lagThreshold=600"},
			"lagThreshold 600 is not above what one replica holds in flight (640)"},
		"a receiver grace period under its pause": {append([]string{"receiver.enabled=true", "receiver.terminationGracePeriodSeconds=6"}, pushSet...),
			"terminationGracePeriodSeconds 6s is not above the preStop pause 5s"},
		"a Secret from values without the app secret": {[]string{"secrets.existingSecret=", "secrets.data.redis_url=redis://r:6379/0"},
			"app_secret_file: open /secrets/wechat_app_secret"},
		"a console password the Secret lacks": {[]string{"console.enabled=true", "console.basicAuth.enabled=true",
			"secrets.existingSecret=", "secrets.data.wechat_app_secret=s", "secrets.data.console_user=ops"},
			"HERALD_CONSOLE_BASIC_AUTH_PASSWORD: Secret herald-secrets has no key console_password"},
	}
	for name, tc := range checking {
		t.Run(name, func(t *testing.T) {
			_, err := Check(renderChart(t, nil, tc.set...).Objects)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want an error with %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// Mistakes a changed template could make, which no value makes: Check
// reports them.
func TestChecksCatchChartMistakes(t *testing.T) {
	cases := []mistake{
		{"the Job mounts the release's ConfigMap", func(t *testing.T, objs []Object) []Object {
			job := get[batchv1.Job](t, objs, "herald-streams-apply")
			job.Spec.Template.Spec.Volumes[0].ConfigMap.Name = "herald-config"
			return objs
		}, "needs ConfigMap herald-config, which is not a pre-install hook"},
		{"the Job runs as the release's ServiceAccount", func(t *testing.T, objs []Object) []Object {
			get[batchv1.Job](t, objs, "herald-streams-apply").Spec.Template.Spec.ServiceAccountName = "herald"
			return objs
		}, "needs ServiceAccount herald, which is not a pre-install hook"},
		{"the config hook runs with the Job", func(t *testing.T, objs []Object) []Object {
			get[corev1.ConfigMap](t, objs, "herald-streams").Annotations["helm.sh/hook-weight"] = "0"
			return objs
		}, "has hook weight 0, not below the Job's 0"},
		{"the Job is not replaced", func(t *testing.T, objs []Object) []Object {
			get[batchv1.Job](t, objs, "herald-streams-apply").Annotations["helm.sh/hook-delete-policy"] = "hook-succeeded"
			return objs
		}, "lacks before-hook-creation"},
		{"the Job only on install", func(t *testing.T, objs []Object) []Object {
			get[batchv1.Job](t, objs, "herald-streams-apply").Annotations["helm.sh/hook"] = "pre-install"
			return objs
		}, "lacks pre-upgrade"},
		{"the Job's config differs", func(t *testing.T, objs []Object) []Object {
			cm := get[corev1.ConfigMap](t, objs, "herald-streams")
			cm.Data["herald.yaml"] = strings.Replace(cm.Data["herald.yaml"], "replicas: 3", "replicas: 1", 1)
			return objs
		}, "its herald.yaml differs from the one Deployment"},
		{"the console on loopback", func(t *testing.T, objs []Object) []Object {
			c := &get[appsv1.Deployment](t, objs, "herald-console").Spec.Template.Spec.Containers[0]
			for i := range c.Env {
				if c.Env[i].Name == "HERALD_CONSOLE_HTTP_ADDR" {
					c.Env[i].Value = "127.0.0.1:8090"
				}
			}
			return objs
		}, "console.http_addr is 127.0.0.1:8090: only the pod itself can reach it"},
		{"the console without its address", func(t *testing.T, objs []Object) []Object {
			c := &get[appsv1.Deployment](t, objs, "herald-console").Spec.Template.Spec.Containers[0]
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "HERALD_CONSOLE_HTTP_ADDR" })
			return objs
		}, "console.http_addr defaults to loopback"},
		{"the console published", func(t *testing.T, objs []Object) []Object {
			get[corev1.Service](t, objs, "herald-console").Spec.Type = corev1.ServiceTypeLoadBalancer
			return objs
		}, "type LoadBalancer exposes the console"},
		{"the Ingress routes to the console", func(t *testing.T, objs []Object) []Object {
			get[networkingv1.Ingress](t, objs, "herald-receiver").Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "herald-console"
			return objs
		}, "Service herald-console is not the receiver's"},
		{"KEDA and an HPA", func(t *testing.T, objs []Object) []Object {
			hpa := renderChart(t, nil, "worker.autoscaling.kind=hpa").Objects
			for _, o := range hpa {
				if o.Kind == "HorizontalPodAutoscaler" {
					objs = append(objs, o)
				}
			}
			return objs
		}, "two autoscalers on one Deployment fight"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check(tc.change(t, renderChart(t, productionValues).Objects))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v\nwant an error with %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// Each part runs alone: the worker, the receiver and the console are each
// optional, and whatever runs passes the checks.
func TestChartPartsAreOptional(t *testing.T) {
	with := func(set ...string) []string { return append(set, pushSet...) }
	cases := map[string]struct {
		set  []string
		want []string
	}{
		"receiver only": {with("worker.enabled=false", "receiver.enabled=true"), []string{Receiver, Streams}},
		"console only":  {[]string{"worker.enabled=false", "console.enabled=true"}, []string{Console, Streams}},
		"no streams Job, no NetworkPolicy": {with("streams.enabled=false", "receiver.enabled=true", "receiver.ingress.enabled=true",
			"serviceMonitor.enabled=true", "networkPolicy.enabled=false"), []string{Receiver, Worker}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rep, err := Check(renderChart(t, nil, tc.set...).Objects)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rep.Components, tc.want) {
				t.Errorf("components %v, want %v", rep.Components, tc.want)
			}
		})
	}
}

// A Secret from values is mounted, and the checks load herald's config with
// its real keys; the console's basic auth reads its keys.
func TestChartSecretFromValues(t *testing.T) {
	r := renderChart(t, nil, "secrets.existingSecret=", "secrets.data.wechat_app_secret=theAppSecret",
		"console.enabled=true", "console.basicAuth.enabled=true",
		"secrets.data.console_user=ops", "secrets.data.console_password=pw")
	rep, err := Check(r.Objects)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Configs[Worker].Apps["default"].WeChat.AppSecret.Reveal(); got != "theAppSecret" {
		t.Errorf("the worker loaded app secret %q, not the Secret's", got)
	}
	c := get[appsv1.Deployment](t, r.Objects, "herald-console").Spec.Template.Spec.Containers[0]
	for name, key := range map[string]string{"HERALD_CONSOLE_BASIC_AUTH_USER": "console_user", "HERALD_CONSOLE_BASIC_AUTH_PASSWORD": "console_password"} {
		i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
		if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.SecretKeyRef.Name != "herald-secrets" || c.Env[i].ValueFrom.SecretKeyRef.Key != key {
			t.Errorf("console env %s: %+v", name, c.Env)
		}
	}
	if d := get[appsv1.Deployment](t, r.Objects, "herald-worker"); d.Spec.Template.Annotations["checksum/secrets"] == "" {
		t.Error("the pods do not roll when the chart's Secret changes")
	}
}

// The chart and the production overlay deploy the same herald: the same
// config, image, ports, probes, resources, grace periods, security and
// KEDA trigger. A change to one that the other lacks fails here.
func TestChartMatchesTheProductionOverlay(t *testing.T) {
	chart := renderChart(t, productionValues).Objects
	kust := render(t, "overlays/production")
	crep, err := Check(chart)
	if err != nil {
		t.Fatal(err)
	}
	krep, err := Check(kust)
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range []string{Worker, Receiver} {
		if !reflect.DeepEqual(crep.Configs[comp], krep.Configs[comp]) {
			t.Errorf("%s config: chart %+v\noverlay %+v", comp, crep.Configs[comp], krep.Configs[comp])
		}
		name := "herald-" + comp
		cd, kd := get[appsv1.Deployment](t, chart, name), get[appsv1.Deployment](t, kust, name)
		cp, kp := cd.Spec.Template.Spec, kd.Spec.Template.Spec
		cc, kc := cp.Containers[0], kp.Containers[0]
		for field, pair := range map[string][2]any{
			"image":                         {cc.Image, kc.Image},
			"args":                          {cc.Args, kc.Args},
			"ports":                         {cc.Ports, kc.Ports},
			"liveness":                      {cc.LivenessProbe, kc.LivenessProbe},
			"readiness":                     {cc.ReadinessProbe, kc.ReadinessProbe},
			"lifecycle":                     {cc.Lifecycle, kc.Lifecycle},
			"resources":                     {cc.Resources, kc.Resources},
			"securityContext":               {cc.SecurityContext, kc.SecurityContext},
			"podSecurityContext":            {cp.SecurityContext, kp.SecurityContext},
			"terminationGracePeriodSeconds": {cp.TerminationGracePeriodSeconds, kp.TerminationGracePeriodSeconds},
			"strategy":                      {cd.Spec.Strategy, kd.Spec.Strategy},
		} {
			if !reflect.DeepEqual(pair[0], pair[1]) {
				t.Errorf("%s %s: chart %+v, overlay %+v", name, field, pair[0], pair[1])
			}
		}
		if comp == Receiver && *cd.Spec.Replicas != *kd.Spec.Replicas {
			t.Errorf("receiver replicas: chart %d, overlay %d", *cd.Spec.Replicas, *kd.Spec.Replicas)
		}
	}
	cso, kso := get[kedav1alpha1.ScaledObject](t, chart, "herald-worker"), get[kedav1alpha1.ScaledObject](t, kust, "herald-worker")
	if !reflect.DeepEqual(cso.Spec, kso.Spec) {
		t.Errorf("ScaledObject: chart %+v\noverlay %+v", cso.Spec, kso.Spec)
	}
	if !slices.Equal(crep.PushURLs, krep.PushURLs) {
		t.Errorf("push URLs: chart %v, overlay %v", crep.PushURLs, krep.PushURLs)
	}
}

// The default image is the chart's appVersion, the release the
// kustomizations pin too.
func TestChartImageIsTheRelease(t *testing.T) {
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	var k types.Kustomization
	data, err = os.ReadFile(filepath.Join(root, "base/kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	if len(k.Images) != 1 || k.Images[0].NewTag != meta.AppVersion {
		t.Errorf("kustomize images %+v, chart appVersion %s", k.Images, meta.AppVersion)
	}
	d := get[appsv1.Deployment](t, renderChart(t, nil).Objects, "herald-worker")
	if want := k.Images[0].NewName + ":" + meta.AppVersion; d.Spec.Template.Spec.Containers[0].Image != want {
		t.Errorf("chart image %s, want %s", d.Spec.Template.Spec.Containers[0].Image, want)
	}
}

// The README's table documents every value, and nothing that is not one.
func TestChartREADMEDocumentsEveryValue(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	// Maps whose keys are not the chart's: documented as one value.
	opaque := map[string]bool{"config": true, "resources": true, "podSecurityContext": true, "containerSecurityContext": true,
		"data": true, "annotations": true, "labels": true, "nodeSelector": true, "podAnnotations": true}
	var keys []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			sub, isMap := v.(map[string]any)
			if isMap && !opaque[k] {
				walk(prefix+k+".", sub)
				continue
			}
			keys = append(keys, prefix+k)
		}
	}
	walk("", values)
	slices.Sort(keys)

	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z0-9.]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		documented = append(documented, m[1])
	}
	slices.Sort(documented)
	for _, k := range keys {
		if _, ok := slices.BinarySearch(documented, k); !ok {
			t.Errorf("value %s is not in the README's table", k)
		}
	}
	for _, k := range documented {
		if _, ok := slices.BinarySearch(keys, k); !ok {
			t.Errorf("the README's table has %s, which is not a value", k)
		}
	}
	if len(documented) < 20 {
		t.Errorf("%d values documented", len(documented))
	}
}
