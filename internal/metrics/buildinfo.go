package metrics

import (
	"cmp"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo is always 1; its labels say which build runs (version, VCS revision, Go version).
var BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: namespace, Name: "build_info", Help: "Always 1; the labels say which glue build runs.",
}, []string{"version", "revision", "goversion"})

// SetBuildInfo sets clearml_glue_build_info to version (main's -X main.version); before it is
// called, the version is the module version Go stamped, or "unknown".
func SetBuildInfo(version string) {
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				rev = s.Value
			}
		}
	}
	BuildInfo.Reset()
	BuildInfo.WithLabelValues(cmp.Or(version, "unknown"), rev, runtime.Version()).Set(1)
}

func stampedVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "unknown"
}
