package chart

import (
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/clearml-glue/clearml-glue/charts"
)

// The chart built into the binary is the chart directory: same files (.helmignore applied the
// same way), same rendering.
func TestEmbeddedChartIsTheChartDirectory(t *testing.T) {
	embedded, err := LoadFS(charts.ClearMLAgent())
	assert.NilError(t, err)
	dir, err := loader.Load(chartDir)
	assert.NilError(t, err)
	names := func(files []string) map[string]bool {
		m := map[string]bool{}
		for _, f := range files {
			m[f] = true
		}
		return m
	}
	var ef, df []string
	for _, f := range embedded.Raw {
		ef = append(ef, f.Name)
	}
	for _, f := range dir.Raw {
		df = append(df, f.Name)
	}
	assert.DeepEqual(t, names(ef), names(df))
	assert.Assert(t, !names(ef)["README.md.gotmpl"], ".helmignore not applied")

	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	assert.NilError(t, err)
	for _, f := range files {
		want, errDir := Render(RenderOptions{ChartDir: chartDir, ValuesFiles: []string{f}})
		got, errFS := Render(RenderOptions{Chart: embedded, ValuesFiles: []string{f}})
		if errDir != nil {
			assert.Equal(t, errFS.Error(), errDir.Error(), f)
			continue
		}
		assert.NilError(t, errFS, f)
		assert.Equal(t, got.YAML(), want.YAML(), f)
	}
}

// BaseValues lie under the values files, OverrideValues over --set.
func TestRenderValueLayers(t *testing.T) {
	vals, err := userValues(RenderOptions{
		BaseValues:     map[string]any{"a": map[string]any{"x": 1, "y": 1, "z": 1}},
		Set:            []string{"a.y=2", "a.z=2"},
		OverrideValues: map[string]any{"a": map[string]any{"z": 3}},
	})
	assert.NilError(t, err)
	assert.DeepEqual(t, vals, map[string]any{"a": map[string]any{"x": 1, "y": int64(2), "z": 3}})
}
