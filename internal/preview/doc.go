// Package preview implements clearml-glue render: it prints the Job or Pod the controller would
// create for a task, from the chart's values or a glue config, without a cluster or a server.
package preview
