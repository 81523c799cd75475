package validate

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/heraldhq/herald/config"
	"github.com/heraldhq/herald/receiver"
	"github.com/heraldhq/herald/worker"
)

// LabelComponent is the pod label that says which part of herald a pod
// runs; Check finds herald's workloads by it, whatever their names.
const LabelComponent = "app.kubernetes.io/component"

// The components: a Deployment each, but the streams Job.
const (
	Worker   = "worker"
	Receiver = "receiver"
	Console  = "console"
	Streams  = "streams"
)

// consoleAddrEnv sets console.http_addr, whose default (loopback) no
// Service can reach.
const consoleAddrEnv = "HERALD_CONSOLE_HTTP_ADDR"

// Helm's hook annotations.
const (
	helmHook         = "helm.sh/hook"
	helmHookWeight   = "helm.sh/hook-weight"
	helmHookDelete   = "helm.sh/hook-delete-policy"
	hookPreInstall   = "pre-install"
	hookPreUpgrade   = "pre-upgrade"
	hookBeforeCreate = "before-hook-creation"
)

// Report is what Check found: the rest of the checks are the caller's
// expectations of a given kustomization or chart release.
type Report struct {
	// Components are the herald workloads present, sorted.
	Components []string
	// Configs is herald's configuration as each component loads it.
	Configs map[string]*config.Config
	// Autoscalers are the kinds that scale the worker Deployment.
	Autoscalers []string
	// Scraped are the components a ServiceMonitor scrapes, sorted.
	Scraped []string
	// PushURLs are the receiver's push URLs an Ingress serves over TLS,
	// https://<host><path_prefix><app>, sorted.
	PushURLs []string
}

// Check runs the semantic checks on one rendered set of objects (a
// kustomization, or a chart release with its hooks) and returns every
// problem found:
//
//   - each herald workload, found by its component label, runs one hardened
//     container (non-root, read-only root, no capabilities, seccomp, no
//     service links, no service account token) with requests and limits
//     and a pinned image, the same for all;
//   - its config (HERALD_CONFIG on a mounted ConfigMap of the set) loads
//     with herald's own loader, in the environment the kubelet would give
//     the container, with the mounted Secret's keys where the set holds the
//     Secret and stand-ins where it does not;
//   - its container port http is the port its http_addr listens on, on
//     every interface, and its probes use it by name; the grace period
//     covers its shutdown;
//   - one Service targets each long-running component by the named port,
//     and no Service mixes components; one PodDisruptionBudget covers the
//     worker and the receiver; a NetworkPolicy covers every pod;
//   - ServiceMonitors scrape /metrics by the port name; an Ingress routes
//     the receiver's push path prefix, and nothing else, to the receiver
//     over TLS; autoscalers scale the worker within the bounds its config
//     allows;
//   - the streams Job runs `streams apply` on the workers' config and is
//     recreated rather than patched: as a Helm pre-install and pre-upgrade
//     hook with everything it mounts available before the release, or with
//     the Argo CD and Flux annotations that replace it.
func Check(objs []Object) (*Report, error) {
	c := &checker{objs: objs, rep: &Report{Configs: map[string]*config.Config{}}}
	c.run()
	return c.rep, errors.Join(c.errs...)
}

type checker struct {
	objs []Object
	rep  *Report
	errs []error

	workloads []*workload
	services  []*corev1.Service
}

// workload is one herald Deployment or Job.
type workload struct {
	component string
	kind      string
	name      string
	meta      metav1.ObjectMeta
	labels    map[string]string // the pod template's
	pod       corev1.PodSpec
	replicas  *int32
	c         corev1.Container

	configData string // the herald.yaml it loads
	cfg        *config.Config
}

func (w *workload) String() string { return w.kind + " " + w.name }

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *checker) run() {
	c.services = all[corev1.Service](c.objs)
	c.findWorkloads()
	for _, w := range c.workloads {
		c.checkPod(w)
	}
	c.checkImages()
	for _, w := range c.workloads {
		if w.cfg == nil {
			continue // the config did not load: already reported
		}
		switch w.component {
		case Worker:
			c.checkWorker(w)
		case Receiver:
			c.checkReceiver(w)
		case Console:
			c.checkConsole(w)
		case Streams:
			c.checkStreamsJob(w)
		}
	}
	c.checkServices()
	c.checkPDBs()
	c.checkNetworkPolicies()
	c.checkServiceMonitors()
	c.checkIngresses()
	c.checkAutoscalers()
}

// all returns the objects whose typed value is a *T.
func all[T any](objs []Object) []*T {
	var out []*T
	for _, o := range objs {
		if v, ok := o.Value.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

func (c *checker) component(name string) *workload {
	for _, w := range c.workloads {
		if w.component == name {
			return w
		}
	}
	return nil
}

func (c *checker) findWorkloads() {
	seen := map[string]string{}
	add := func(w *workload) {
		switch w.component {
		case Worker, Receiver, Console:
			if w.kind != "Deployment" {
				c.errorf("%s: component %s must be a Deployment", w, w.component)
				return
			}
		case Streams:
			if w.kind != "Job" {
				c.errorf("%s: component %s must be a Job", w, w.component)
				return
			}
		default:
			c.errorf("%s: pod label %s=%q is none of herald's components (worker, receiver, console, streams)", w, LabelComponent, w.component)
			return
		}
		if other, ok := seen[w.component]; ok {
			c.errorf("%s and %s are both component %s", other, w, w.component)
			return
		}
		seen[w.component] = w.String()
		if len(w.pod.Containers) != 1 {
			c.errorf("%s: %d containers, want 1", w, len(w.pod.Containers))
			return
		}
		w.c = w.pod.Containers[0]
		c.workloads = append(c.workloads, w)
		c.rep.Components = append(c.rep.Components, w.component)
	}
	for _, d := range all[appsv1.Deployment](c.objs) {
		add(&workload{component: d.Spec.Template.Labels[LabelComponent], kind: "Deployment", name: d.Name, meta: d.ObjectMeta,
			labels: d.Spec.Template.Labels, pod: d.Spec.Template.Spec, replicas: d.Spec.Replicas})
	}
	for _, j := range all[batchv1.Job](c.objs) {
		add(&workload{component: j.Spec.Template.Labels[LabelComponent], kind: "Job", name: j.Name, meta: j.ObjectMeta,
			labels: j.Spec.Template.Labels, pod: j.Spec.Template.Spec})
	}
	slices.Sort(c.rep.Components)
}

// checkPod: hardening, resources and the config every herald pod loads.
func (c *checker) checkPod(w *workload) {
	pod, ct := w.pod, w.c
	// herald reads HERALD_* variables as settings; the kubelet's service
	// links for a Service named herald-... are not its business.
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		c.errorf("%s: pod spec does not set enableServiceLinks: false", w)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		c.errorf("%s: pod spec does not set automountServiceAccountToken: false (herald calls no Kubernetes API)", w)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		c.errorf("%s: pod security context %+v: want runAsNonRoot and seccomp RuntimeDefault", w, psc)
	}
	sc := ct.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Privileged != nil && *sc.Privileged ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
		c.errorf("%s: container %s security context %+v: want a read-only root, no privilege escalation, all capabilities dropped", w, ct.Name, sc)
	}
	r := ct.Resources
	if r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() || r.Requests.Cpu().IsZero() || r.Limits.Cpu().IsZero() {
		c.errorf("%s: resources %+v: want requests and limits for cpu and memory", w, r)
	}
	img := ct.Image
	name := img[strings.LastIndex(img, "/")+1:]
	if _, digest, ok := strings.Cut(name, "@"); ok {
		if !strings.HasPrefix(digest, "sha256:") {
			c.errorf("%s: image %q: a digest is sha256:...", w, img)
		}
	} else if _, tag, ok := strings.Cut(name, ":"); !ok || tag == "" || tag == "latest" {
		c.errorf("%s: image %q: want a pinned release tag, never latest", w, img)
	}

	// HERALD_CONFIG names a file of a mounted ConfigMap of the set.
	file := envValue(ct, config.EnvConfig)
	if file == "" {
		c.errorf("%s: no %s", w, config.EnvConfig)
		return
	}
	vol, ok := volumeOf(pod, ct, file)
	if !ok || vol.ConfigMap == nil {
		c.errorf("%s: %s=%s is on no mounted ConfigMap", w, config.EnvConfig, file)
		return
	}
	cm := c.configMap(vol.ConfigMap.Name)
	if cm == nil {
		c.errorf("%s: mounts ConfigMap %s, which is not in the set", w, vol.ConfigMap.Name)
		return
	}
	data, ok := cm.Data[filepath.Base(file)]
	if !ok {
		c.errorf("%s: ConfigMap %s has no key %s", w, cm.Name, filepath.Base(file))
		return
	}
	w.configData = data
	cfg, err := c.loadConfig(w)
	if err != nil {
		c.errorf("%s: %w", w, err)
		return
	}
	w.cfg = cfg
	c.rep.Configs[w.component] = cfg
}

func (c *checker) configMap(name string) *corev1.ConfigMap {
	for _, cm := range all[corev1.ConfigMap](c.objs) {
		if cm.Name == name {
			return cm
		}
	}
	return nil
}

func (c *checker) secret(name string) *corev1.Secret {
	for _, s := range all[corev1.Secret](c.objs) {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// checkImages: every herald pod runs the same build.
func (c *checker) checkImages() {
	var first *workload
	for _, w := range c.workloads {
		if first == nil {
			first = w
		} else if w.c.Image != first.c.Image {
			c.errorf("%s runs %s, %s runs %s: every part of herald runs one build", first, first.c.Image, w, w.c.Image)
		}
	}
}

// checkHTTP: the one container port, named http, is where addr listens,
// on every interface, and both probes use it by name; with paths, they
// are HTTP GETs of /healthz and /readyz.
func (c *checker) checkHTTP(w *workload, key, addr string, paths bool) {
	ct := w.c
	if len(ct.Ports) != 1 || ct.Ports[0].Name != "http" {
		c.errorf("%s: container ports %+v, want one named http", w, ct.Ports)
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		c.errorf("%s: %s %q: %v", w, key, addr, err)
		return
	}
	if port != strconv.Itoa(int(ct.Ports[0].ContainerPort)) {
		c.errorf("%s: %s is %s, the container port http is %d", w, key, addr, ct.Ports[0].ContainerPort)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		c.errorf("%s: %s is %s: only the pod itself can reach it, not the probes or a Service", w, key, addr)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": ct.LivenessProbe, "readiness": ct.ReadinessProbe} {
		var target string
		switch {
		case p == nil:
			c.errorf("%s: no %s probe", w, name)
			continue
		case p.HTTPGet != nil:
			target = p.HTTPGet.Port.String()
		case p.TCPSocket != nil && !paths:
			target = p.TCPSocket.Port.String()
		default:
			c.errorf("%s: %s probe is not an HTTP GET", w, name)
			continue
		}
		if target != "http" {
			c.errorf("%s: %s probe on port %s, want the named port http", w, name, target)
		}
	}
	if !paths {
		return
	}
	if p := ct.LivenessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/healthz" {
		c.errorf("%s: liveness probe path %s, want /healthz", w, p.HTTPGet.Path)
	}
	if p := ct.ReadinessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/readyz" {
		c.errorf("%s: readiness probe path %s, want /readyz", w, p.HTTPGet.Path)
	}
}

func grace(pod corev1.PodSpec) time.Duration {
	if pod.TerminationGracePeriodSeconds == nil {
		return 30 * time.Second // the API server's default
	}
	return time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
}

func (c *checker) checkWorker(w *workload) {
	c.checkHTTP(w, "worker.http_addr", w.cfg.Worker.HTTPAddr, true)
	if g := grace(w.pod); g <= w.cfg.Worker.ShutdownGrace {
		c.errorf("%s: terminationGracePeriodSeconds %v is not above worker.shutdown_grace %v", w, g, w.cfg.Worker.ShutdownGrace)
	}
}

func (c *checker) checkReceiver(w *workload) {
	c.checkHTTP(w, "receiver.http_addr", w.cfg.Receiver.HTTPAddr, true)
	if len(pushApps(w.cfg)) == 0 {
		c.errorf("%s: no app has apps.<app>.wechat.push.token: herald receiver refuses to start", w)
	}
	// Requests in flight finish within the receiver's deadline after the
	// preStop pause, before the kubelet's SIGKILL.
	var pause time.Duration
	if l := w.c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		pause = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	if g := grace(w.pod); g <= pause+receiver.DefaultDeadline {
		c.errorf("%s: terminationGracePeriodSeconds %v is not above the preStop pause %v and a push's deadline %v", w, g, pause, receiver.DefaultDeadline)
	}
}

func (c *checker) checkConsole(w *workload) {
	// Until the console's settings are herald's own, the address is the
	// variable the manifests set; its default is loopback.
	addr := envValue(w.c, consoleAddrEnv)
	if addr == "" {
		c.errorf("%s: no %s: console.http_addr defaults to loopback, which no Service reaches", w, consoleAddrEnv)
		return
	}
	c.checkHTTP(w, "console.http_addr", addr, false)
}

// pushApps are the apps herald receiver serves, sorted.
func pushApps(cfg *config.Config) []string {
	var apps []string
	for name, app := range cfg.Apps {
		if app.WeChat != nil && app.WeChat.Push.Token != "" {
			apps = append(apps, name)
		}
	}
	slices.Sort(apps)
	return apps
}

// checkStreamsJob: `herald streams apply` on the workers' config, and a
// Job that something recreates (a Job's pod template is immutable).
func (c *checker) checkStreamsJob(w *workload) {
	if len(w.c.Args) < 2 || w.c.Args[0] != "streams" || w.c.Args[1] != "apply" {
		c.errorf("%s: runs %v, want streams apply", w, w.c.Args)
	}
	for _, other := range c.workloads {
		if other.component != Streams && other.configData != "" && other.configData != w.configData {
			c.errorf("%s: its herald.yaml differs from the one %s loads", w, other)
		}
	}
	ann := w.meta.Annotations
	if _, ok := ann[helmHook]; !ok {
		// Applied by kubectl, Argo CD or Flux.
		for k, want := range map[string]string{
			"argocd.argoproj.io/hook":               "Sync",
			"argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
			"kustomize.toolkit.fluxcd.io/force":     "enabled",
		} {
			if got := ann[k]; got != want {
				c.errorf("%s: annotation %s = %q, want %q: GitOps tools must recreate the Job, not patch it", w, k, got, want)
			}
		}
		return
	}
	events := splitList(ann[helmHook])
	for _, e := range []string{hookPreInstall, hookPreUpgrade} {
		if !slices.Contains(events, e) {
			c.errorf("%s: %s %q lacks %s: the streams must be in place before the workers roll", w, helmHook, ann[helmHook], e)
		}
	}
	if !slices.Contains(splitList(ann[helmHookDelete]), hookBeforeCreate) {
		c.errorf("%s: %s %q lacks %s: the next release could not create the Job again", w, helmHookDelete, ann[helmHookDelete], hookBeforeCreate)
	}
	// A pre-install hook runs before the release's own objects exist: what
	// it mounts must be a hook that runs before it, or made outside the
	// chart (then it is not in the set).
	weight := hookWeight(w.meta)
	needs := map[string]string{}
	for _, v := range w.pod.Volumes {
		switch {
		case v.ConfigMap != nil:
			needs["ConfigMap "+v.ConfigMap.Name] = v.ConfigMap.Name
		case v.Secret != nil:
			needs["Secret "+v.Secret.SecretName] = v.Secret.SecretName
		}
	}
	if sa := w.pod.ServiceAccountName; sa != "" && sa != "default" {
		needs["ServiceAccount "+sa] = sa
	}
	for what, name := range needs {
		kind, _, _ := strings.Cut(what, " ")
		var dep *Object
		for i := range c.objs {
			if c.objs[i].Kind == kind && c.objs[i].Name == name {
				dep = &c.objs[i]
			}
		}
		if dep == nil {
			continue // made outside the chart, before it
		}
		meta := objectMeta(*dep)
		depEvents := splitList(meta.Annotations[helmHook])
		for _, e := range events {
			if !slices.Contains(depEvents, e) {
				c.errorf("%s: needs %s, which is not a %s hook: it does not exist yet when the Job runs", w, what, e)
			}
		}
		if hookWeight(meta) >= weight {
			c.errorf("%s: %s has hook weight %d, not below the Job's %d: it may not exist when the Job starts", w, what, hookWeight(meta), weight)
		}
	}
}

func objectMeta(o Object) metav1.ObjectMeta {
	if m, ok := o.Value.(metav1.ObjectMetaAccessor); ok {
		if om, ok := m.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return *om
		}
	}
	return metav1.ObjectMeta{}
}

func hookWeight(m metav1.ObjectMeta) int {
	n, _ := strconv.Atoi(strings.TrimSpace(m.Annotations[helmHookWeight]))
	return n
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// selects reports whether a Service's selector picks pods with labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func labelSelects(sel *metav1.LabelSelector, set map[string]string) (bool, error) {
	if sel == nil {
		return false, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return !s.Empty() && s.Matches(labels.Set(set)), nil
}

// checkServices: a Service for each long-running component, targeting
// its named port, none selecting two components' pods or none.
func (c *checker) checkServices() {
	for _, svc := range c.services {
		var picked []*workload
		for _, w := range c.workloads {
			if w.kind == "Deployment" && selects(svc.Spec.Selector, w.labels) {
				picked = append(picked, w)
			}
		}
		switch {
		case len(picked) == 0:
			c.errorf("Service %s selects no herald pods (selector %v)", svc.Name, svc.Spec.Selector)
			continue
		case len(picked) > 1:
			c.errorf("Service %s selects the pods of %s and %s: each part of herald serves other paths", svc.Name, picked[0], picked[1])
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.String() != "http" || p.Name != "http" {
				c.errorf("Service %s: port %+v, want name and targetPort http", svc.Name, p)
			}
		}
		if picked[0].component == Console && svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
			c.errorf("Service %s: type %s exposes the console; keep it ClusterIP and reach it through a proxy", svc.Name, svc.Spec.Type)
		}
	}
	for _, w := range c.workloads {
		if w.kind != "Deployment" {
			continue
		}
		found := false
		for _, svc := range c.services {
			found = found || selects(svc.Spec.Selector, w.labels)
		}
		if !found {
			c.errorf("%s: no Service selects its pods", w)
		}
	}
}

// checkPDBs: the worker and the receiver each under exactly one budget
// (the eviction API refuses pods under two), that lets one pod go.
func (c *checker) checkPDBs() {
	pdbs := all[policyv1.PodDisruptionBudget](c.objs)
	for _, pdb := range pdbs {
		var any bool
		for _, w := range c.workloads {
			ok, err := labelSelects(pdb.Spec.Selector, w.labels)
			if err != nil {
				c.errorf("PodDisruptionBudget %s: selector: %v", pdb.Name, err)
				break
			}
			if !ok {
				continue
			}
			any = true
			if pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int && w.replicas != nil &&
				int32(pdb.Spec.MinAvailable.IntValue()) >= *w.replicas {
				c.errorf("PodDisruptionBudget %s: minAvailable %d of %d replicas of %s blocks every drain", pdb.Name, pdb.Spec.MinAvailable.IntValue(), *w.replicas, w)
			}
			if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
				c.errorf("PodDisruptionBudget %s: neither minAvailable nor maxUnavailable", pdb.Name)
			}
		}
		if !any {
			c.errorf("PodDisruptionBudget %s selects no herald pods", pdb.Name)
		}
	}
	for _, w := range c.workloads {
		if w.component != Worker && w.component != Receiver {
			continue
		}
		var over []string
		for _, pdb := range pdbs {
			if ok, _ := labelSelects(pdb.Spec.Selector, w.labels); ok {
				over = append(over, pdb.Name)
			}
		}
		if len(over) != 1 {
			c.errorf("%s: its pods are under %d PodDisruptionBudgets %v, want 1", w, len(over), over)
		}
	}
}

// checkNetworkPolicies: every herald pod is under a policy that lets in
// only its http port and lets out DNS and NATS (the worker also Redis
// and the platforms' HTTPS).
func (c *checker) checkNetworkPolicies() {
	nps := all[networkingv1.NetworkPolicy](c.objs)
	for _, w := range c.workloads {
		var under []*networkingv1.NetworkPolicy
		for _, np := range nps {
			if ok, err := labelSelects(&np.Spec.PodSelector, w.labels); err != nil {
				c.errorf("NetworkPolicy %s: pod selector: %v", np.Name, err)
			} else if ok {
				under = append(under, np)
			}
		}
		if len(under) == 0 {
			if len(nps) > 0 {
				c.errorf("%s: no NetworkPolicy selects its pods", w)
			}
			continue
		}
		out := map[string]bool{}
		for _, np := range under {
			if w.kind == "Deployment" && (len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 ||
				np.Spec.Ingress[0].Ports[0].Port.String() != "http") {
				c.errorf("NetworkPolicy %s: ingress %+v, want the one port http of %s", np.Name, np.Spec.Ingress, w)
			}
			for _, rule := range np.Spec.Egress {
				for _, p := range rule.Ports {
					out[p.Port.String()] = true
				}
			}
		}
		need := []string{"53", "4222"}
		if w.component == Worker {
			need = append(need, "6379", "443")
		}
		for _, port := range need {
			if !out[port] {
				c.errorf("%s: its NetworkPolicy lets no traffic out to port %s", w, port)
			}
		}
	}
}

// checkServiceMonitors: /metrics by the port name, on Services of the set.
func (c *checker) checkServiceMonitors() {
	scraped := map[string]bool{}
	for _, sm := range all[monitoringv1.ServiceMonitor](c.objs) {
		var svcs []*corev1.Service
		for _, svc := range c.services {
			if ok, err := labelSelects(&sm.Spec.Selector, svc.Labels); err != nil {
				c.errorf("ServiceMonitor %s: selector: %v", sm.Name, err)
			} else if ok {
				svcs = append(svcs, svc)
			}
		}
		if len(svcs) == 0 {
			c.errorf("ServiceMonitor %s selects no Service (by the Services' labels)", sm.Name)
		}
		if len(sm.Spec.Endpoints) == 0 {
			c.errorf("ServiceMonitor %s has no endpoints", sm.Name)
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Path != "/metrics" {
				c.errorf("ServiceMonitor %s scrapes path %q, want /metrics", sm.Name, ep.Path)
			}
			for _, svc := range svcs {
				if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
					c.errorf("ServiceMonitor %s scrapes port %q, which Service %s does not name", sm.Name, ep.Port, svc.Name)
				}
			}
		}
		for _, svc := range svcs {
			for _, w := range c.workloads {
				if w.kind == "Deployment" && selects(svc.Spec.Selector, w.labels) {
					scraped[w.component] = true
				}
			}
		}
	}
	for comp := range scraped {
		c.rep.Scraped = append(c.rep.Scraped, comp)
	}
	slices.Sort(c.rep.Scraped)
}

// checkIngresses: only the receiver is published, only its push path
// prefix, only over TLS, and every app's push URL reaches it.
func (c *checker) checkIngresses() {
	recv := c.component(Receiver)
	for _, ing := range all[networkingv1.Ingress](c.objs) {
		if ing.Spec.DefaultBackend != nil {
			c.errorf("Ingress %s: a default backend publishes every path", ing.Name)
		}
		tlsHosts := map[string]bool{}
		for _, t := range ing.Spec.TLS {
			if t.SecretName == "" {
				c.errorf("Ingress %s: TLS for %v without a secretName", ing.Name, t.Hosts)
				continue
			}
			for _, h := range t.Hosts {
				tlsHosts[h] = true
			}
		}
		if len(ing.Spec.Rules) == 0 {
			c.errorf("Ingress %s has no rules", ing.Name)
		}
		for _, rule := range ing.Spec.Rules {
			if rule.Host == "" {
				c.errorf("Ingress %s: a rule without a host: WeChat pushes to a named HTTPS host", ing.Name)
				continue
			}
			if !tlsHosts[rule.Host] {
				c.errorf("Ingress %s: host %s is not under TLS: WeChat pushes to HTTPS URLs only", ing.Name, rule.Host)
			}
			if rule.HTTP == nil {
				c.errorf("Ingress %s: host %s routes nothing", ing.Name, rule.Host)
				continue
			}
			for _, p := range rule.HTTP.Paths {
				c.checkIngressPath(ing.Name, p)
			}
			if recv == nil || recv.cfg == nil {
				continue
			}
			prefix := recv.cfg.Receiver.PathPrefix
			for _, probe := range []string{"/metrics", "/healthz", "/readyz"} {
				if routes(rule.HTTP.Paths, probe) {
					c.errorf("Ingress %s: %s%s is public: route receiver.path_prefix %s only", ing.Name, rule.Host, probe, prefix)
				}
			}
			for _, app := range pushApps(recv.cfg) {
				if routes(rule.HTTP.Paths, prefix+app) {
					c.rep.PushURLs = append(c.rep.PushURLs, "https://"+rule.Host+prefix+app)
				} else {
					c.errorf("Ingress %s: host %s does not route app %s's push URL %s%s", ing.Name, rule.Host, app, prefix, app)
				}
			}
		}
	}
	slices.Sort(c.rep.PushURLs)
}

// checkIngressPath: the backend is a Service of the receiver, by a port
// that targets its port http.
func (c *checker) checkIngressPath(ing string, p networkingv1.HTTPIngressPath) {
	if p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix && *p.PathType != networkingv1.PathTypeExact {
		c.errorf("Ingress %s: path %s: pathType Prefix or Exact, whose meaning does not depend on the controller", ing, p.Path)
	}
	b := p.Backend.Service
	if b == nil {
		c.errorf("Ingress %s: path %s: the backend is not a Service", ing, p.Path)
		return
	}
	var svc *corev1.Service
	for _, s := range c.services {
		if s.Name == b.Name {
			svc = s
		}
	}
	if svc == nil {
		c.errorf("Ingress %s: path %s: Service %s is not in the set", ing, p.Path, b.Name)
		return
	}
	recv := c.component(Receiver)
	if recv == nil || !selects(svc.Spec.Selector, recv.labels) {
		c.errorf("Ingress %s: path %s: Service %s is not the receiver's: only push URLs are public", ing, p.Path, svc.Name)
		return
	}
	idx := slices.IndexFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool {
		return b.Port.Name != "" && sp.Name == b.Port.Name || b.Port.Name == "" && sp.Port == b.Port.Number
	})
	if idx < 0 {
		c.errorf("Ingress %s: path %s: Service %s has no port %+v", ing, p.Path, svc.Name, b.Port)
	} else if tp := svc.Spec.Ports[idx].TargetPort.String(); tp != "http" {
		c.errorf("Ingress %s: path %s: Service %s port targets %s, not the receiver's port http", ing, p.Path, svc.Name, tp)
	}
}

// routes reports whether one of paths matches the request path u, as
// Kubernetes defines Prefix (element by element) and Exact.
func routes(paths []networkingv1.HTTPIngressPath, u string) bool {
	for _, p := range paths {
		if p.PathType == nil {
			continue
		}
		switch *p.PathType {
		case networkingv1.PathTypeExact:
			if p.Path == u {
				return true
			}
		case networkingv1.PathTypePrefix:
			want := strings.Split(strings.Trim(p.Path, "/"), "/")
			got := strings.Split(strings.Trim(path.Clean(u), "/"), "/")
			if want[0] == "" || len(got) >= len(want) && slices.Equal(got[:len(want)], want) {
				return true
			}
		}
	}
	return false
}

// checkAutoscalers: KEDA or an HPA, never both, scale the worker
// Deployment within what its consumer allows.
func (c *checker) checkAutoscalers() {
	w := c.component(Worker)
	targets := map[string][]string{}
	for _, so := range all[kedav1alpha1.ScaledObject](c.objs) {
		t := so.Spec.ScaleTargetRef
		if t == nil {
			c.errorf("ScaledObject %s has no scaleTargetRef", so.Name)
			continue
		}
		targets[t.Name] = append(targets[t.Name], "ScaledObject "+so.Name)
		if w == nil || t.Name != w.name || t.Kind != "" && t.Kind != "Deployment" || so.Namespace != w.meta.Namespace {
			c.errorf("ScaledObject %s scales %s %s/%s: it scales the worker Deployment on its consumer's lag", so.Name, t.Kind, so.Namespace, t.Name)
			continue
		}
		c.rep.Autoscalers = append(c.rep.Autoscalers, "ScaledObject")
		if w.cfg != nil {
			c.checkScaledObject(so, w.cfg)
		}
	}
	for _, h := range all[autoscalingv2.HorizontalPodAutoscaler](c.objs) {
		t := h.Spec.ScaleTargetRef
		targets[t.Name] = append(targets[t.Name], "HorizontalPodAutoscaler "+h.Name)
		if w == nil || t.Name != w.name || t.Kind != "Deployment" {
			c.errorf("HorizontalPodAutoscaler %s scales %s %s, not the worker Deployment", h.Name, t.Kind, t.Name)
			continue
		}
		c.rep.Autoscalers = append(c.rep.Autoscalers, "HorizontalPodAutoscaler")
		if h.Spec.MinReplicas == nil || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			c.errorf("HorizontalPodAutoscaler %s: replicas %v..%d", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if w.cfg != nil {
			c.checkMaxReplicas("HorizontalPodAutoscaler "+h.Name, int(h.Spec.MaxReplicas), w.cfg)
		}
	}
	for name, by := range targets {
		if len(by) > 1 {
			c.errorf("Deployment %s is scaled by %s: two autoscalers on one Deployment fight", name, strings.Join(by, " and "))
		}
	}
	slices.Sort(c.rep.Autoscalers)
}

func (c *checker) checkScaledObject(so *kedav1alpha1.ScaledObject, cfg *config.Config) {
	name := "ScaledObject " + so.Name
	if so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount < *so.Spec.MinReplicaCount {
		c.errorf("%s: replica bounds %v..%v", name, so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
		return
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "nats-jetstream" {
		c.errorf("%s: triggers %+v, want one nats-jetstream", name, so.Spec.Triggers)
		return
	}
	m := so.Spec.Triggers[0].Metadata
	if m["stream"] != cfg.NATS.Stream || m["consumer"] != cfg.NATS.Consumer || m["account"] != "$G" {
		c.errorf("%s: the trigger watches %s/%s in %s; the config has %s/%s", name, m["stream"], m["consumer"], m["account"], cfg.NATS.Stream, cfg.NATS.Consumer)
	}
	if _, _, err := net.SplitHostPort(m["natsServerMonitoringEndpoint"]); err != nil {
		c.errorf("%s: natsServerMonitoringEndpoint %q: %v", name, m["natsServerMonitoringEndpoint"], err)
	}
	lag, err := strconv.Atoi(m["lagThreshold"])
	if err != nil || lag <= 0 {
		c.errorf("%s: lagThreshold %q", name, m["lagThreshold"])
		return
	}
	// A replica holds some jobs unacknowledged by itself: a threshold at or
	// below that would scale on in-flight work.
	held := worker.Config{Concurrency: cfg.Worker.Concurrency}.MaxUnacked()
	if lag <= held {
		c.errorf("%s: lagThreshold %d is not above what one replica holds in flight (%d)", name, lag, held)
	}
	if act, err := strconv.Atoi(m["activationLagThreshold"]); err != nil || act < held || act > lag {
		c.errorf("%s: activationLagThreshold %q, want one replica's in-flight window %d, at most lagThreshold %d", name, m["activationLagThreshold"], held, lag)
	}
	c.checkMaxReplicas(name, int(*so.Spec.MaxReplicaCount), cfg)
}

// checkMaxReplicas: every replica's window fits in the consumer's
// max_ack_pending.
func (c *checker) checkMaxReplicas(name string, maxReplicas int, cfg *config.Config) {
	held := worker.Config{Concurrency: cfg.Worker.Concurrency}.MaxUnacked()
	if need := maxReplicas * held; need > cfg.NATS.MaxAckPending {
		c.errorf("%s: %d replicas need nats.max_ack_pending >= %d, the config has %d", name, maxReplicas, need, cfg.NATS.MaxAckPending)
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

// volumeOf finds the volume that file lies on.
func volumeOf(pod corev1.PodSpec, c corev1.Container, file string) (corev1.Volume, bool) {
	for _, m := range c.VolumeMounts {
		if filepath.Dir(file) == m.MountPath || strings.HasPrefix(file, m.MountPath+"/") {
			for _, v := range pod.Volumes {
				if v.Name == m.Name {
					return v, true
				}
			}
		}
	}
	return corev1.Volume{}, false
}

// loadConfig loads w's herald.yaml with config.Load as its container
// would: the mounted Secret's files in a directory of their own (its real
// keys where the set holds the Secret, stand-ins for the files the config
// names where it does not), and the environment the kubelet gives it,
// service links included unless the pod turns them off.
func (c *checker) loadConfig(w *workload) (*config.Config, error) {
	dir, err := os.MkdirTemp("", "herald-validate-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	secretDir := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secretDir, 0o700); err != nil {
		return nil, err
	}
	var mount string
	var secret *corev1.Secret
	for _, m := range w.c.VolumeMounts {
		for _, v := range w.pod.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				mount = m.MountPath
				secret = c.secret(v.Secret.SecretName)
			}
		}
	}
	data := w.configData
	env, err := containerEnv(w.c, c.secret)
	if err != nil {
		return nil, err
	}
	if mount != "" {
		if secret != nil {
			for key := range secret.Data {
				v, _ := secretValue(secret, key)
				if err := os.WriteFile(filepath.Join(secretDir, key), []byte(v), 0o600); err != nil {
					return nil, err
				}
			}
			for key, v := range secret.StringData {
				if err := os.WriteFile(filepath.Join(secretDir, key), []byte(v), 0o600); err != nil {
					return nil, err
				}
			}
		} else {
			for key, file := range secretFiles(data, env, mount) {
				if err := os.WriteFile(filepath.Join(secretDir, file), []byte(standIn(key)), 0o600); err != nil {
					return nil, err
				}
			}
		}
		data = strings.ReplaceAll(data, mount+"/", secretDir+"/")
		for i, kv := range env {
			env[i] = strings.ReplaceAll(kv, "="+mount+"/", "="+secretDir+"/")
		}
	}
	file := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		return nil, err
	}
	var environ []string
	if w.pod.EnableServiceLinks == nil || *w.pod.EnableServiceLinks {
		environ = ServiceLinkEnv(c.services)
	}
	environ = append(environ, env...)
	cfg, err := config.Load(file, environ)
	if err != nil {
		// The temporary directory means nothing to the reader.
		msg := strings.ReplaceAll(err.Error(), secretDir+"/", mount+"/")
		msg = strings.ReplaceAll(msg, file, "herald.yaml")
		return nil, fmt.Errorf("herald.yaml does not load in container %s: %s", w.c.Name, msg)
	}
	// The paths as the container sees them.
	if mount != "" {
		replacePrefix(reflect.ValueOf(cfg).Elem(), secretDir+"/", mount+"/")
	}
	replacePrefix(reflect.ValueOf(cfg).Elem(), dir+"/", filepath.Dir(envValue(w.c, config.EnvConfig))+"/")
	return cfg, nil
}

// replacePrefix replaces old at the start of every string in v, a struct
// reached through pointers, slices and maps.
func replacePrefix(v reflect.Value, old, new string) {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); strings.HasPrefix(s, old) && v.CanSet() {
			v.SetString(new + strings.TrimPrefix(s, old))
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			replacePrefix(v.Elem(), old, new)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			replacePrefix(v.Field(i), old, new)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			replacePrefix(v.Index(i), old, new)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			replacePrefix(e, old, new)
			v.SetMapIndex(k, e)
		}
	}
}

func secretValue(s *corev1.Secret, key string) (string, bool) {
	if v, ok := s.StringData[key]; ok {
		return v, true
	}
	v, ok := s.Data[key]
	return string(v), ok
}

// secretFiles maps the *_file keys of data and the *_FILE variables of env
// that name a file under mount to that file's path relative to mount.
func secretFiles(data string, env []string, mount string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "_file") {
			v = strings.Trim(strings.TrimSpace(v), `"'`)
			if rel, ok := strings.CutPrefix(v, mount+"/"); ok {
				out[k] = rel
			}
		}
	}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasSuffix(k, "_FILE") {
			if rel, ok := strings.CutPrefix(v, mount+"/"); ok {
				out[strings.ToLower(k)] = rel
			}
		}
	}
	return out
}

// standIn is a value of the form the key's secret must have: herald checks
// the push token's and the EncodingAESKey's.
func standIn(key string) string {
	switch {
	case strings.HasSuffix(key, "encoding_aes_key_file"):
		return strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz", 2)[:config.EncodingAESKeyLen]
	case strings.HasSuffix(key, "token_file"):
		return "standInToken"
	}
	return "stand-in"
}

// containerEnv is c's own environment, with stand-ins where the kubelet
// would fill in a field. A Secret's key has its value where secret finds
// the Secret, a stand-in where it does not (made outside the set). An
// optional key that is missing or not known is left out, as when it is
// missing; a missing key that is not optional stops the container.
func containerEnv(c corev1.Container, secret func(name string) *corev1.Secret) ([]string, error) {
	var env []string
	var errs []error
	for _, e := range c.Env {
		v := e.Value
		if from := e.ValueFrom; from != nil {
			switch {
			case from.FieldRef != nil:
				v = "stand-in-pod"
			case from.ResourceFieldRef != nil:
				v = "100663296"
			case from.SecretKeyRef != nil:
				ref := from.SecretKeyRef
				optional := ref.Optional != nil && *ref.Optional
				s := secret(ref.Name)
				var ok bool
				switch {
				case s != nil:
					v, ok = secretValue(s, ref.Key)
				case !optional:
					v, ok = "stand-in", true
				}
				if !ok {
					if optional {
						continue
					}
					errs = append(errs, fmt.Errorf("%s: Secret %s has no key %s", e.Name, ref.Name, ref.Key))
				}
			case from.ConfigMapKeyRef != nil && from.ConfigMapKeyRef.Optional != nil && *from.ConfigMapKeyRef.Optional:
				continue
			default:
				v = "stand-in"
			}
		}
		env = append(env, e.Name+"="+v)
	}
	return env, errors.Join(errs...)
}
