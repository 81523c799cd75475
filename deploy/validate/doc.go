// Package validate renders herald's kustomizations (deploy/kubernetes) and
// decodes every object strictly into its real API type: k8s.io/api for the
// built-in kinds, KEDA's ScaledObject and the Prometheus Operator's
// ServiceMonitor. A field that the type does not have (a misspelling, a
// wrong case, a field from another version) is an error, as it would be for
// an API server with strict field validation.
//
// It is a module of its own so the Kubernetes dependencies stay out of
// herald's. Its tests are run by .ci/run.
package validate
