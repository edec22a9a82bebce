// Package localcluster runs a real Kubernetes control plane (kube-apiserver, etcd, controller
// manager, scheduler) with kwok's simulated nodes, for tests, benchmarks and the demo.
package localcluster
