package podtemplate

import "testing"

// BenchmarkBuild builds the Job of a typical queue: the docs' per-queue example (no template
// strings) and the docs' string-template example (labels, annotations and env rendered).
func BenchmarkBuild(b *testing.B) {
	for _, bc := range []struct{ name, config, queue string }{
		{"static", "docs-per-queue.yaml", "green"},
		{"templated", "docs-string-templates.yaml", "myQueueName"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			builder := newBuilder(b, loadConfig(b, bc.config))
			in := input(loadTask(b, "training.json"))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := builder.Build(bc.queue, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "builds/s")
		})
	}
}
