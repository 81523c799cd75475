// Package buildinfo tells which herald this is: the version the build was
// stamped with, else what the Go toolchain recorded (the module version of
// `go install ...@v1.2.0`, the VCS revision of a build from a checkout).
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version is set at build time:
//
//	go build -ldflags "-X github.com/heraldhq/herald/internal/buildinfo.version=v1.1.0" ./cmd/herald
var version string

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`            // v1.1.0, or "devel"
	Revision  string `json:"revision,omitempty"` // VCS commit, where recorded
	Time      string `json:"time,omitempty"`     // commit time, RFC 3339
	Modified  bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	GoVersion string `json:"go_version"`
}

// Get returns what is known about the running binary.
func Get() Info {
	info := Info{Version: version, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return withDefault(info)
	}
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return withDefault(info)
}

func withDefault(info Info) Info {
	if info.Version == "" {
		info.Version = "devel"
	}
	return info
}

// Collector is herald_build_info{version,revision,go_version}, always 1,
// the usual way to tell in Prometheus which build each replica runs.
func Collector() prometheus.Collector {
	info := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "herald_build_info",
		Help:        "The running build: version, VCS revision and Go version; always 1.",
		ConstLabels: prometheus.Labels{"version": info.Version, "revision": info.Revision, "go_version": info.GoVersion},
	})
	g.Set(1)
	return g
}
