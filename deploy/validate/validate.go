package validate

import (
	"errors"
	"fmt"
	"os"
	"strings"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Object is one rendered manifest decoded into its API type.
type Object struct {
	APIVersion string
	Kind       string
	Name       string
	// Value is a pointer to the typed object, e.g. *appsv1.Deployment.
	Value any
}

// typeMeta is what every manifest starts with.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

// kinds maps apiVersion/kind to a constructor of its typed object. A kind
// missing here is an error: nothing is applied unchecked.
var kinds = map[string]func() any{
	"v1/ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                              func() any { return new(corev1.Secret) },
	"v1/Service":                             func() any { return new(corev1.Service) },
	"v1/ServiceAccount":                      func() any { return new(corev1.ServiceAccount) },
	"v1/Namespace":                           func() any { return new(corev1.Namespace) },
	"apps/v1/Deployment":                     func() any { return new(appsv1.Deployment) },
	"batch/v1/Job":                           func() any { return new(batchv1.Job) },
	"policy/v1/PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return new(networkingv1.NetworkPolicy) },
	"networking.k8s.io/v1/Ingress":           func() any { return new(networkingv1.Ingress) },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"keda.sh/v1alpha1/ScaledObject":          func() any { return new(kedav1alpha1.ScaledObject) },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any {
		return new(monitoringv1.ServiceMonitor)
	},
}

// Render builds the kustomization in dir (a path on disk) and decodes every
// object it yields.
func Render(dir string) ([]Object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []Object
	var errs []error
	for _, r := range m.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.CurId(), err))
			continue
		}
		obj, err := Decode(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.CurId(), err))
			continue
		}
		out = append(out, obj)
	}
	return out, errors.Join(errs...)
}

// DecodeFile decodes the single manifest in path.
func DecodeFile(path string) (Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Object{}, err
	}
	obj, err := Decode(data)
	if err != nil {
		return Object{}, fmt.Errorf("%s: %w", path, err)
	}
	return obj, nil
}

// Decode decodes one YAML manifest strictly into its API type: unknown
// fields (matched case-sensitively, as the API server does) and duplicate
// fields are errors.
func Decode(manifest []byte) (Object, error) {
	data, err := yaml.YAMLToJSONStrict(manifest)
	if err != nil {
		return Object{}, fmt.Errorf("yaml: %w", err)
	}
	var tm typeMeta
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(data, &tm); err != nil {
		return Object{}, fmt.Errorf("type meta: %w", err)
	}
	gvk := tm.APIVersion + "/" + tm.Kind
	mk, ok := kinds[gvk]
	if !ok {
		return Object{}, fmt.Errorf("%s: no API type known for it", gvk)
	}
	v := mk()
	strict, err := k8sjson.UnmarshalStrict(data, v, k8sjson.DisallowUnknownFields, k8sjson.DisallowDuplicateFields)
	if err != nil {
		return Object{}, fmt.Errorf("%s %s: %w", tm.Kind, tm.Metadata.Name, err)
	}
	if len(strict) > 0 {
		return Object{}, fmt.Errorf("%s %s: %w", tm.Kind, tm.Metadata.Name, errors.Join(strict...))
	}
	return Object{APIVersion: tm.APIVersion, Kind: tm.Kind, Name: tm.Metadata.Name, Value: v}, nil
}

// ServiceLinkEnv is what the kubelet adds to the environment of a pod whose
// spec does not set enableServiceLinks: false, for each Service of its
// namespace with a cluster IP: NAME_SERVICE_HOST, NAME_SERVICE_PORT,
// NAME_SERVICE_PORT_<PORT NAME>, NAME_PORT and NAME_PORT_<n>_<PROTO> with its
// _PROTO, _PORT and _ADDR, NAME being the Service's name upper-cased with
// '-' as '_'. Cluster IPs are made up (10.96.0.x), as the API server would
// assign them.
func ServiceLinkEnv(svcs []*corev1.Service) []string {
	var env []string
	for i, svc := range svcs {
		if svc.Spec.ClusterIP == corev1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
			continue
		}
		ip := fmt.Sprintf("10.96.0.%d", i+10)
		name := strings.ToUpper(strings.ReplaceAll(svc.Name, "-", "_"))
		first := svc.Spec.Ports[0]
		env = append(env,
			fmt.Sprintf("%s_SERVICE_HOST=%s", name, ip),
			fmt.Sprintf("%s_SERVICE_PORT=%d", name, first.Port),
			fmt.Sprintf("%s_PORT=%s://%s:%d", name, proto(first), ip, first.Port))
		for _, p := range svc.Spec.Ports {
			if p.Name != "" {
				env = append(env, fmt.Sprintf("%s_SERVICE_PORT_%s=%d", name, strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), p.Port))
			}
			base := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(proto(p)))
			env = append(env,
				fmt.Sprintf("%s=%s://%s:%d", base, proto(p), ip, p.Port),
				fmt.Sprintf("%s_PROTO=%s", base, proto(p)),
				fmt.Sprintf("%s_PORT=%d", base, p.Port),
				fmt.Sprintf("%s_ADDR=%s", base, ip))
		}
	}
	return env
}

func proto(p corev1.ServicePort) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return strings.ToLower(string(p.Protocol))
}
