package localcluster

import (
	"context"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
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

// ServiceAccountConfig returns a client config that authenticates with a token of the
// ServiceAccount namespace/name (TokenRequest), so a process run with it has exactly the rights
// RBAC grants that account, as a pod running as it would.
func (c *Cluster) ServiceAccountConfig(ctx context.Context, namespace, name string, ttl time.Duration) (*rest.Config, error) {
	cs, err := c.Clientset()
	if err != nil {
		return nil, err
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: new(int64(ttl.Seconds()))}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token of ServiceAccount %s/%s: %w", namespace, name, err)
	}
	cfg := rest.AnonymousClientConfig(c.config)
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}
