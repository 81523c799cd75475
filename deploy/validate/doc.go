// Package validate renders herald's deployment manifests, the
// kustomizations under deploy/kubernetes and the Helm chart under
// deploy/helm, and checks them as a cluster would and as herald would.
//
// [Decode] decodes every object strictly into its real API type: k8s.io/api
// for the built-in kinds, KEDA's ScaledObject and the Prometheus Operator's
// ServiceMonitor. A field that the type does not have (a misspelling, a
// wrong case, a field from another version) is an error, as it would be for
// an API server with strict field validation. [Check] then runs the same
// semantic checks on a kustomization and on a chart release: herald's
// config loads with its own loader in the environment the kubelet gives
// each container, ports and probes agree with it, the pods are hardened,
// and the Services, budgets, policies, autoscalers, Ingress and the streams
// Job fit together.
//
// It is a module of its own so the Kubernetes and Helm dependencies stay out
// of herald's. Its tests are run by .ci/run.
package validate
