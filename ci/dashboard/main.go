// Command dashboard writes the clearml-glue Grafana dashboard that the chart ships
// (charts/clearml-agent/dashboards/clearml-glue.json), built in code with the Grafana foundation
// SDK. `make dashboard` runs it; `make lint` runs it with -check, which fails when the checked-in
// JSON differs from what the code builds.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("out", "../../charts/clearml-agent/dashboards/clearml-glue.json", "the dashboard JSON file")
	check := flag.Bool("check", false, "do not write: fail if -out differs from the generated dashboard")
	flag.Parse()
	if err := run(*out, *check); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}

func run(out string, check bool) error {
	want, err := generate()
	if err != nil {
		return err
	}
	if check {
		have, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		if !bytes.Equal(have, want) {
			return fmt.Errorf("%s is stale: regenerate it with `make dashboard`", out)
		}
		return nil
	}
	return os.WriteFile(out, want, 0o644)
}

func generate() ([]byte, error) {
	d, err := build()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
