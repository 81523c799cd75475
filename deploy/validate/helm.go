package validate

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"helm.sh/helm/v4/pkg/strvals"
)

// Chart is a chart release to render: the chart's directory, the release's
// name and namespace, values files in order, then --set values.
type Chart struct {
	Dir         string
	Release     string
	Namespace   string
	ValuesFiles []string
	Set         []string
	// KubeVersion is the cluster's version the chart is rendered for.
	// Default 1.33.0.
	KubeVersion string
}

// Rendered is a rendered release: its objects (the hooks' included, in
// manifest order, then the hooks by weight) and the hooks as Helm sees
// them.
type Rendered struct {
	Objects []Object
	Hooks   []*releasev1.Hook
	Notes   string
}

// RenderChart renders c as `helm install --dry-run=client` (and so `helm
// template`) does, the values checked against the chart's values.schema.json
// and its kubeVersion, and decodes every object strictly.
func RenderChart(c Chart) (*Rendered, error) {
	ch, err := loader.Load(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", c.Dir, err)
	}
	vals := map[string]any{}
	for _, f := range c.ValuesFiles {
		v, err := common.ReadValuesFile(f)
		if err != nil {
			return nil, fmt.Errorf("values %s: %w", f, err)
		}
		vals = loader.MergeMaps(vals, v)
	}
	for _, s := range c.Set {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("--set %s: %w", s, err)
		}
	}
	kv := c.KubeVersion
	if kv == "" {
		kv = "1.33.0"
	}
	kube, err := common.ParseKubeVersion(kv)
	if err != nil {
		return nil, fmt.Errorf("kube version %s: %w", kv, err)
	}
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.NewTextHandler(io.Discard, nil))
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = c.Release
	install.Namespace = c.Namespace
	install.KubeVersion = kube
	install.Replace = true
	r, err := install.Run(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("render chart %s: %w", c.Dir, err)
	}
	rel, ok := r.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("render chart %s: a release of type %T", c.Dir, r)
	}
	out := &Rendered{Hooks: rel.Hooks, Notes: rel.Info.Notes}
	var errs []error
	decode := func(source, manifest string) {
		obj, err := Decode([]byte(manifest))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", source, err))
			return
		}
		out.Objects = append(out.Objects, obj)
	}
	docs := releaseutil.SplitManifests(rel.Manifest)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	for _, k := range keys {
		decode("manifest", docs[k])
	}
	for _, h := range rel.Hooks {
		decode(h.Path, h.Manifest)
	}
	return out, errors.Join(errs...)
}
