module github.com/clearml-glue/clearml-glue/ci/dashboard

// Generates charts/clearml-agent/dashboards/clearml-glue.json with the Grafana foundation SDK
// (Apache-2.0, no dependencies). A module of its own: the product neither builds nor ships it.

go 1.26.0

require github.com/grafana/grafana-foundation-sdk/go v0.0.22
