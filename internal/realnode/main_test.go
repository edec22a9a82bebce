package realnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/localcluster"
)

const (
	// The kwok stages that play task pods, shared with the other end-to-end tests.
	stagesFile = "../../ci/kwok-stages.yaml"
	// Images built from this checkout by ci/image and imported into the node's containerd.
	glueRepo    = "glue-local/clearml-glue"
	glueTag     = "realnode"
	busyboxRepo = "glue-local/busybox"
	busyboxTag  = "static"
	// Debian's busybox-static, the helm test image's content.
	busyboxBin = "/bin/busybox"
)

var (
	cluster *localcluster.Cluster
	node    *localcluster.RealNode
	// skipReason is why this machine cannot run a real node; tests skip with it.
	skipReason string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "realnode: "+format+"\n", args...)
}

func run(m *testing.M) int {
	required := os.Getenv("GLUE_REAL_NODE") == "required"
	if err := localcluster.RealNodeSupport(); err != nil {
		if required {
			logf("GLUE_REAL_NODE=required, but this machine cannot run a real node: %v", err)
			return 1
		}
		skipReason = err.Error()
		return m.Run()
	}
	if missing := localcluster.MissingRealNodeTools(localcluster.RealNodeBinDir()); len(missing) > 0 {
		logf("missing: %s", strings.Join(missing, "; "))
		return 1
	}
	if _, err := os.Stat(busyboxBin); err != nil {
		logf("no %s for the helm test image: apt-get install busybox-static", busyboxBin)
		return 1
	}
	work, err := os.MkdirTemp("", "realnode-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(work)

	start := time.Now()
	layouts, err := buildImages(work)
	if err != nil {
		logf("building the images: %v", err)
		return 1
	}
	logf("images built without Docker in %s", time.Since(start).Round(time.Millisecond))
	cfg, err := localcluster.RealNodeConfigFile(work)
	if err != nil {
		logf("%v", err)
		return 1
	}
	ctx := context.Background()
	c, err := localcluster.Start(ctx, localcluster.Options{Nodes: 2, StageFiles: []string{stagesFile, cfg}, Logf: logf})
	if err != nil {
		logf("%v", err)
		return 1
	}
	cluster = c
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		if node != nil {
			_ = node.Stop()
		}
		_ = c.Stop()
		os.Exit(130)
	}()
	defer signal.Stop(sigs)

	n, err := c.StartRealNode(ctx, localcluster.RealNodeOptions{})
	if err != nil {
		logf("%v", err)
		_ = c.Stop()
		return 1
	}
	node = n
	start = time.Now()
	for _, l := range layouts {
		if err := n.ImportImage(ctx, l); err != nil {
			logf("%v", err)
			return stop(1)
		}
	}
	imgs, _ := n.Images(ctx)
	logf("imported into containerd in %s: %s", time.Since(start).Round(time.Millisecond), strings.Join(imgs, ", "))
	return stop(m.Run())
}

// stop tears the node down, then the cluster; a failure of either fails the run.
func stop(code int) int {
	if err := node.Stop(); err != nil {
		logf("stopping the real node: %v", err)
		code = 1
	}
	if err := cluster.Stop(); err != nil {
		logf("stopping the cluster: %v", err)
		code = 1
	}
	return code
}

// needNode skips the test on a machine that cannot run a real node.
func needNode(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skipf("no real node on this machine: %s (make test-real fails instead of skipping)", skipReason)
	}
}

// buildImages builds the controller from this checkout and the images the node needs with
// ci/image, exactly as `make image-oci` does, and returns their OCI layouts.
func buildImages(dir string) ([]string, error) {
	root, err := localcluster.RepoRoot()
	if err != nil {
		return nil, err
	}
	goBuild := func(moduleDir, out, pkg string, ldflags string) error {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
		cmd.Dir = moduleDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		return nil
	}
	imageDir := filepath.Join(root, "ci", "image")
	builder, glue, pause := filepath.Join(dir, "image-builder"), filepath.Join(dir, "clearml-glue"), filepath.Join(dir, "pause")
	if err := goBuild(root, glue, "./cmd/clearml-glue", "-s -w -X main.version="+glueTag); err != nil {
		return nil, err
	}
	if err := goBuild(imageDir, builder, ".", "-s -w"); err != nil {
		return nil, err
	}
	if err := goBuild(imageDir, pause, "./pause", "-s -w"); err != nil {
		return nil, err
	}
	arch := "linux/" + goarch()
	builds := []struct{ recipe, bin, ref string }{
		{"clearml-glue", glue, glueRepo + ":" + glueTag},
		{"busybox", busyboxBin, busyboxRepo + ":" + busyboxTag},
		{"pause", pause, strings.TrimPrefix(localcluster.SandboxImage, "docker.io/")},
	}
	var layouts []string
	for _, b := range builds {
		out := filepath.Join(dir, b.recipe)
		args := []string{"build", "-recipe", b.recipe, "-binary", arch + "=" + b.bin, "-ref", b.ref, "-oci", out}
		if b.recipe == "clearml-glue" {
			args = append(args, "-ca-certs", "/etc/ssl/certs/ca-certificates.crt", "-version", glueTag)
		}
		cmd := exec.Command(builder, args...)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("image %s: %w\n%s", b.recipe, err, o)
		}
		layouts = append(layouts, out)
	}
	return layouts, nil
}

func goarch() string {
	out, err := exec.Command("go", "env", "GOARCH").Output()
	if err != nil {
		return "amd64"
	}
	return strings.TrimSpace(string(out))
}
