package metrics

import "github.com/prometheus/client_golang/prometheus"

// QueueUnresolved is 1 for a configured queue the glue could not find on the ClearML server (and
// may not create); the glue serves the others and looks it up again every cycle.
var QueueUnresolved = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: namespace, Name: "queue_unresolved", Help: "1 for a configured queue missing on the ClearML server.",
}, []string{"queue"})

func init() { Registry.MustRegister(QueueUnresolved) }
