package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// entry is one file system object of an image's single layer. Every entry is owned by root:
// a Dockerfile COPY then yields the same ownership whatever its rules (see Dockerfile).
type entry struct {
	Path   string      // absolute, cleaned
	Mode   fs.FileMode // permission bits plus fs.ModeDir or fs.ModeSymlink
	Data   []byte      // regular files
	Target string      // symlinks
}

// recipe describes an image: its files (from the host paths it is given) and its config.
type recipe struct {
	Name       string
	User       string
	Entrypoint []string
	Env        []string
	Ports      []string
	Labels     map[string]string // static OCI labels; version, revision and created come from flags
	files      func(in inputs) ([]entry, error)
}

// inputs are the host files a recipe reads.
type inputs struct {
	Binary  string // the program (the controller, or a static busybox)
	CACerts string // a CA bundle (controller only)
}

const (
	glueBinary = "/usr/local/bin/clearml-glue"
	caBundle   = "/etc/ssl/certs/ca-certificates.crt"
	pathEnv    = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Users as distroless names them: nonroot (65532) runs the controller; nobody (65534) is the
// user of the chart's helm test pod.
const passwd = `root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin
`

const group = `root:x:0:
nobody:x:65534:
nonroot:x:65532:
`

// Go's resolver reads it to decide between /etc/hosts and DNS.
const nsswitch = "hosts: files dns\n"

var recipes = map[string]recipe{
	"clearml-glue": {
		Name:       "clearml-glue",
		User:       "65532:65532",
		Entrypoint: []string{glueBinary},
		Env:        []string{pathEnv, "SSL_CERT_FILE=" + caBundle},
		Ports:      []string{"8080/tcp", "8081/tcp"},
		Labels: map[string]string{
			"org.opencontainers.image.title":         "clearml-glue",
			"org.opencontainers.image.description":   "Runs ClearML tasks from queues as Kubernetes Jobs",
			"org.opencontainers.image.source":        "https://github.com/clearml-glue/clearml-glue",
			"org.opencontainers.image.documentation": "https://github.com/clearml-glue/clearml-glue/blob/main/docs/chart.md",
			"org.opencontainers.image.licenses":      "Apache-2.0",
		},
		files: func(in inputs) ([]entry, error) {
			if in.CACerts == "" {
				return nil, fmt.Errorf("the clearml-glue image needs -ca-certs")
			}
			bin, err := readExecutable(in.Binary)
			if err != nil {
				return nil, err
			}
			certs, err := os.ReadFile(in.CACerts)
			if err != nil {
				return nil, fmt.Errorf("CA certificates: %w", err)
			}
			if !bytes.Contains(certs, []byte("-----BEGIN CERTIFICATE-----")) {
				return nil, fmt.Errorf("%s holds no PEM certificate", in.CACerts)
			}
			return append(baseFiles(),
				entry{Path: glueBinary, Mode: 0o755, Data: bin},
				entry{Path: caBundle, Mode: 0o644, Data: certs},
			), nil
		},
	},
	// The pods' sandbox ("pause") image of the local real node, from ci/image/pause.
	"pause": {
		Name:       "pause",
		User:       "65535:65535",
		Entrypoint: []string{"/pause"},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "pause",
			"org.opencontainers.image.description": "Pod sandbox process of the local real node (ci/image/pause)",
		},
		files: func(in inputs) ([]entry, error) {
			bin, err := readExecutable(in.Binary)
			if err != nil {
				return nil, err
			}
			return []entry{{Path: "/pause", Mode: 0o755, Data: bin}}, nil
		},
	},
	// A busybox with a shell and wget for the chart's helm test pod, from Debian's busybox-static.
	"busybox": {
		Name:       "busybox",
		Entrypoint: []string{"/bin/sh"},
		Env:        []string{pathEnv},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "busybox",
			"org.opencontainers.image.description": "Static busybox (Debian busybox-static) for the chart's helm test",
		},
		files: func(in inputs) ([]entry, error) {
			bin, err := readExecutable(in.Binary)
			if err != nil {
				return nil, err
			}
			applets, err := busyboxApplets(in.Binary)
			if err != nil {
				return nil, err
			}
			files := append(baseFiles(), entry{Path: "/bin/busybox", Mode: 0o755, Data: bin})
			for _, a := range applets {
				if a == "/bin/busybox" {
					continue
				}
				files = append(files, entry{Path: a, Mode: fs.ModeSymlink | 0o777, Target: "/bin/busybox"})
			}
			return files, nil
		},
	},
}

func baseFiles() []entry {
	return []entry{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Path: "/etc/group", Mode: 0o644, Data: []byte(group)},
		{Path: "/etc/nsswitch.conf", Mode: 0o644, Data: []byte(nsswitch)},
		// Writable by anyone, sticky, as /tmp always is; the chart mounts an emptyDir over it.
		{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}
}

func readExecutable(p string) ([]byte, error) {
	if p == "" {
		return nil, fmt.Errorf("no -binary given")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(data, []byte("\x7fELF")) {
		return nil, fmt.Errorf("%s is not an ELF executable", p)
	}
	return data, nil
}

// busyboxApplets lists the applets of a busybox binary as absolute paths (`busybox --list-full`).
// The binary must run on this machine; a busybox for another architecture gets only /bin/sh.
func busyboxApplets(bin string) ([]string, error) {
	out, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		return []string{"/bin/sh"}, nil //nolint:nilerr // a foreign-arch busybox: the shell is enough
	}
	var applets []string
	for _, l := range strings.Fields(string(out)) {
		applets = append(applets, "/"+strings.TrimPrefix(l, "/"))
	}
	return applets, nil
}

// complete adds the parent directories of every entry (0755) and sorts by path, so the layer is
// the same bytes for the same inputs.
func complete(files []entry) ([]entry, error) {
	seen := map[string]bool{}
	var out []entry
	for _, e := range files {
		e.Path = path.Clean(e.Path)
		if !path.IsAbs(e.Path) || e.Path == "/" {
			return nil, fmt.Errorf("bad image path %q", e.Path)
		}
		if seen[e.Path] {
			return nil, fmt.Errorf("image path %s given twice", e.Path)
		}
		seen[e.Path] = true
		out = append(out, e)
	}
	for _, e := range out {
		for d := path.Dir(e.Path); d != "/"; d = path.Dir(d) {
			if !seen[d] {
				seen[d] = true
				out = append(out, entry{Path: d, Mode: fs.ModeDir | 0o755})
			}
		}
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// layerTar writes the entries as an uncompressed tar, every header with the same time and no
// user or group names, as image layers are conventionally laid out (relative paths).
func layerTar(files []entry, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range files {
		h := &tar.Header{
			Name:    strings.TrimPrefix(e.Path, "/"),
			Mode:    int64(e.Mode.Perm()),
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if e.Mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		switch {
		case e.Mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case e.Mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Target
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.Path, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeRootfs lays the entries out under dir, for the Dockerfile to COPY into a scratch image.
// dir must not exist yet; files get exactly the entries' modes (no umask) and mtime.
func writeRootfs(dir string, files []entry, mtime time.Time) error {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("%s already exists", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var dirs []string
	for _, e := range files {
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		var err error
		switch {
		case e.Mode.IsDir():
			err = os.Mkdir(p, 0o700)
			dirs = append(dirs, p)
		case e.Mode&fs.ModeSymlink != 0:
			err = os.Symlink(e.Target, p)
		default:
			err = os.WriteFile(p, e.Data, 0o600)
		}
		if err == nil && e.Mode&fs.ModeSymlink == 0 {
			err = os.Chmod(p, e.Mode&(fs.ModePerm|fs.ModeSticky))
			if err == nil && !e.Mode.IsDir() {
				err = os.Chtimes(p, mtime, mtime)
			}
		}
		if err != nil {
			return err
		}
	}
	// Directory times last: creating their children changed them.
	for _, d := range slices.Backward(dirs) {
		if err := os.Chtimes(d, mtime, mtime); err != nil {
			return err
		}
	}
	return nil
}
