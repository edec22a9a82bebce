// Command coredns is CoreDNS with only the plugins the local real node needs: cluster DNS for
// pods (kubernetes), the host's resolvers for the rest (forward), and the usual companions. The
// full plugin set pulls in every cloud SDK and triples the build time.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	// The order of CoreDNS's plugin.cfg, restricted to the plugins above.
	dnsserver.Directives = []string{"bind", "ready", "health", "errors", "log", "cache", "hosts", "kubernetes", "loop", "forward"}
	coremain.Run()
}
