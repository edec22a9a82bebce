package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ensureTools builds the control plane binaries with ci/build-tools.sh when one is missing,
// printing a progress line (elapsed time and what is being built) while it runs.
func ensureTools(ctx context.Context, root, binDir string, step func(string, ...any)) error {
	missing := ""
	for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kwok", "kwokctl", "helm"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			missing = b
			break
		}
	}
	if missing == "" {
		step("control plane binaries: cached in %s", rel(root, binDir))
		return nil
	}
	step("building the local control plane from the Go module proxy (first run only: about 15 minutes on 2 cores)")
	cmd := exec.CommandContext(ctx, filepath.Join(root, "ci", "build-tools.sh"))
	cmd.Dir = root
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ci/build-tools.sh: %w", err)
	}
	current := "building " + missing
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			if strings.HasPrefix(l, "building ") {
				current, _, _ = strings.Cut(l, " (")
			}
			step("  %s", l)
		case <-tick.C:
			step("  ... %s, %s elapsed", current, time.Since(start).Round(time.Second))
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("ci/build-tools.sh: %w", err)
	}
	step("control plane binaries built in %s", time.Since(start).Round(time.Second))
	return nil
}

// buildEmulator builds the clearml-emulator binary, the demo's ClearML server.
func buildEmulator(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/clearml-emulator")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/clearml-emulator: %w\n%s", err, b)
	}
	return nil
}

// emulatorProcess is clearml-emulator running as a child process.
type emulatorProcess struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
	err    error
}

// startEmulator runs the emulator on addr, or on a free port when addr is taken, and waits until
// it accepts connections. It runs in its own process group, so a Ctrl-C reaches only the demo,
// which stops it after the controller; it gets SIGTERM if the demo dies.
func startEmulator(bin, addr, accessKey, secretKey, logFile string) (*emulatorProcess, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
	}
	addr = ln.Addr().String()
	_ = ln.Close()
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--listen", addr, "--access-key", accessKey, "--secret-key", secretKey)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	e := &emulatorProcess{cmd: cmd, url: "http://" + addr, exited: make(chan struct{})}
	go func() {
		e.err = cmd.Wait()
		_ = log.Close()
		close(e.exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return e, nil
		}
		select {
		case <-e.exited:
			return nil, fmt.Errorf("emulator exited at start (%v); see %s", e.err, logFile)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = e.stop()
			return nil, fmt.Errorf("emulator not listening on %s after 20s; see %s", addr, logFile)
		}
	}
}

// stop sends SIGINT (the emulator shuts down gracefully) and kills it after 5 s.
func (e *emulatorProcess) stop() error {
	select {
	case <-e.exited:
		return nil
	default:
	}
	_ = e.cmd.Process.Signal(os.Interrupt)
	select {
	case <-e.exited:
		return nil
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.exited
		return errors.New("emulator did not stop within 5s of SIGINT; killed")
	}
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
