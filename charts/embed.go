// Package charts embeds the Helm chart in the clearml-glue binary, so `clearml-glue run --values`
// renders the glue configuration without a checkout of this repository (internal/chart.LoadFS
// loads it as helm loads a chart directory, .helmignore included).
package charts

import (
	"embed"
	"io/fs"
)

//go:embed all:clearml-agent
var files embed.FS

// ClearMLAgent returns the files of the clearml-agent chart, rooted at the chart directory.
func ClearMLAgent() fs.FS {
	sub, err := fs.Sub(files, "clearml-agent")
	if err != nil {
		panic(err) // the directory is embedded above: cannot happen
	}
	return sub
}
