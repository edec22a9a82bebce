// Package admission holds what decides whether the glue may start one more task: the count of
// live and in-flight task objects per queue, the monitored resource they hold, the sessions
// port-mode slots, and the one parser of the monitoredResources field paths.
package admission
