package localcluster

import (
	"fmt"

	"helm.sh/helm/v3/pkg/action"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// Helm returns a Helm action configuration that talks to this cluster as its admin, storing
// releases in namespace, as `helm --kubeconfig <cluster> -n <namespace>` would.
func (c *Cluster) Helm(namespace string, logf func(format string, args ...any)) (*action.Configuration, error) {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &c.Kubeconfig
	flags.Namespace = &namespace
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, namespace, "secret", logf); err != nil {
		return nil, fmt.Errorf("helm init for cluster %s: %w", c.Name, err)
	}
	return cfg, nil
}
