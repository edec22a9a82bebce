// Package realnode tests the product as a user meets it, on a real node of the local control
// plane (containerd, runc, kubelet; localcluster.StartRealNode): the controller image built
// without Docker (ci/image) runs as the chart's Deployment with its securityContext, probes,
// in-cluster configuration and ServiceAccount token; `helm test` runs its check in a busybox
// image; task Jobs still run on kwok nodes. Only tests live here. They need root; without it they
// skip, and `make test-real` (GLUE_REAL_NODE=required) fails instead.
package realnode
