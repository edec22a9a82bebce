package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	testVersion = "image-test"
	epoch       = "1700000000"
	caFile      = "/etc/ssl/certs/ca-certificates.crt"
)

var glueBin string // the controller, built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "image-test-")
	if err != nil {
		panic(err)
	}
	// Every build of these tests stamps this time.
	_ = os.Setenv("SOURCE_DATE_EPOCH", epoch)
	glueBin = filepath.Join(dir, "clearml-glue")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+testVersion, "-o", glueBin, "./cmd/clearml-glue")
	build.Dir, build.Env = "../..", append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the controller: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var shared struct {
	once sync.Once
	dir  string
	err  error
}

// sharedGlue is one build for the tests that only read it.
func sharedGlue(t *testing.T) string {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp(filepath.Dir(glueBin), "shared-")
		if shared.err == nil {
			shared.err = buildInto(shared.dir, io.Discard)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.dir
}

// buildGlue runs `image build` as the Makefile does and returns the output directory.
func buildGlue(t *testing.T, extra ...string) string {
	t.Helper()
	out := t.TempDir()
	var stdout bytes.Buffer
	if err := buildInto(out, &stdout, extra...); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", stdout.String())
	return out
}

func buildInto(out string, stdout io.Writer, extra ...string) error {
	args := append([]string{"build", "-recipe", "clearml-glue", "-binary", "linux/amd64=" + glueBin, "-ca-certs", caFile,
		"-ref", "clearml-glue/clearml-glue:" + testVersion, "-oci", filepath.Join(out, "oci"),
		"-docker-tar", filepath.Join(out, "image.tar"), "-version", testVersion, "-revision", "0123abc"}, extra...)
	return run(args, stdout)
}

func layoutImage(t *testing.T, dir string) (v1.Image, v1.Descriptor) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json has %d entries, want 1", len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img, im.Manifests[0]
}

type file struct {
	Mode     fs.FileMode
	Uid, Gid int
	Size     int64
	Sum      string // sha256 of the content, or the symlink target
}

// layerFiles reads the image's only layer.
func layerFiles(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f := file{Mode: h.FileInfo().Mode(), Uid: h.Uid, Gid: h.Gid, Size: h.Size}
		if h.Typeflag == tar.TypeSymlink {
			f.Sum = h.Linkname
		} else if h.Typeflag == tar.TypeReg {
			s := sha256.New()
			_, _ = io.Copy(s, tr)
			f.Sum = hex.EncodeToString(s.Sum(nil))
		}
		files["/"+strings.TrimSuffix(h.Name, "/")] = f
	}
	return files
}

func sha(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// The image a user pulls: non-root, the binary as entrypoint, CA certificates, OCI labels, and
// nothing else in its only layer.
func TestGlueImageConfigAndFiles(t *testing.T) {
	img, desc := layoutImage(t, filepath.Join(sharedGlue(t), "oci"))
	if got := desc.Annotations["io.containerd.image.name"]; got != "docker.io/clearml-glue/clearml-glue:"+testVersion {
		t.Errorf("io.containerd.image.name = %q", got)
	}
	if got := desc.Annotations["org.opencontainers.image.ref.name"]; got != testVersion {
		t.Errorf("org.opencontainers.image.ref.name = %q", got)
	}
	if desc.Platform == nil || desc.Platform.String() != "linux/amd64" {
		t.Errorf("index.json platform = %v", desc.Platform)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/clearml-glue"}) || len(c.Cmd) != 0 {
		t.Errorf("Entrypoint %q Cmd %q", c.Entrypoint, c.Cmd)
	}
	if !slices.Contains(c.Env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt") || !slices.ContainsFunc(c.Env, func(e string) bool {
		return strings.HasPrefix(e, "PATH=") && strings.Contains(e, ":/usr/local/bin:")
	}) {
		t.Errorf("Env = %q", c.Env)
	}
	if _, ok := c.ExposedPorts["8081/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v", c.ExposedPorts)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": "0123abc",
		"org.opencontainers.image.created":  "2023-11-14T22:13:20Z",
		"org.opencontainers.image.source":   "https://github.com/clearml-glue/clearml-glue",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.title":    "clearml-glue",
	}
	for k, v := range wantLabels {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Created.Unix() != 1700000000 {
		t.Errorf("os %s arch %s created %s", cf.OS, cf.Architecture, cf.Created)
	}

	files := layerFiles(t, img)
	var paths []string
	for p, f := range files {
		paths = append(paths, p)
		if f.Uid != 0 || f.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", p, f.Uid, f.Gid)
		}
	}
	slices.Sort(paths)
	want := []string{"/etc", "/etc/group", "/etc/nsswitch.conf", "/etc/passwd", "/etc/ssl", "/etc/ssl/certs",
		"/etc/ssl/certs/ca-certificates.crt", "/tmp", "/usr", "/usr/local", "/usr/local/bin", "/usr/local/bin/clearml-glue"}
	if !slices.Equal(paths, want) {
		t.Errorf("layer files:\n got %q\nwant %q", paths, want)
	}
	if f := files["/usr/local/bin/clearml-glue"]; f.Mode != 0o755 || f.Sum != sha(t, glueBin) {
		t.Errorf("binary mode %v, sha %s", f.Mode, f.Sum)
	}
	if f := files["/etc/ssl/certs/ca-certificates.crt"]; f.Mode != 0o644 || f.Sum != sha(t, caFile) {
		t.Errorf("CA bundle mode %v, sha %s", f.Mode, f.Sum)
	}
	if f := files["/tmp"]; f.Mode != fs.ModeDir|fs.ModeSticky|0o777 {
		t.Errorf("/tmp mode %v", f.Mode)
	}
}

// unpack extracts the image's layer into a directory, as a container runtime would.
func unpack(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := t.TempDir()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var data []byte
			if data, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, data, 0o600)
			}
		}
		if err == nil && h.Typeflag != tar.TypeSymlink {
			err = os.Chmod(p, h.FileInfo().Mode()&(fs.ModePerm|fs.ModeSticky))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The binary inside the image runs, and as root (CI, the real-node tests) it runs chrooted into
// the image's own file system as the image's user: static, nothing else needed.
func TestGlueBinaryInImageRuns(t *testing.T) {
	img, _ := layoutImage(t, filepath.Join(sharedGlue(t), "oci"))
	root := unpack(t, img)
	out, err := exec.Command(filepath.Join(root, "usr/local/bin/clearml-glue"), "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != testVersion {
		t.Fatalf("clearml-glue version: %v: %q", err, out)
	}
	if os.Getuid() != 0 {
		t.Log("not root: the chrooted run as 65532 is skipped")
		return
	}
	cmd := exec.Command("/usr/local/bin/clearml-glue", "version")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	out, err = cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != testVersion {
		t.Fatalf("chrooted clearml-glue version as 65532: %v: %q", err, out)
	}
}

// The same inputs give the same bytes: layout, blobs and the docker tarball.
func TestBuildIsReproducible(t *testing.T) {
	a, b := sharedGlue(t), buildGlue(t)
	for _, rel := range []string{"oci/index.json", "oci/oci-layout", "image.tar"} {
		if sha(t, filepath.Join(a, rel)) != sha(t, filepath.Join(b, rel)) {
			t.Errorf("%s differs between two builds", rel)
		}
	}
	blobs := func(dir string) []string {
		entries, err := os.ReadDir(filepath.Join(dir, "oci/blobs/sha256"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	if ba, bb := blobs(a), blobs(b); !slices.Equal(ba, bb) || len(ba) != 3 {
		t.Errorf("blobs %q and %q", ba, bb)
	}
}

// `docker load` reads the tarball: Docker's manifest.json with the tag, and the same image.
func TestDockerTarballIsTheSameImage(t *testing.T) {
	out := sharedGlue(t)
	img, _ := layoutImage(t, filepath.Join(out, "oci"))
	tb, err := tarball.ImageFromPath(filepath.Join(out, "image.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	idA, _ := img.ConfigName()
	idB, _ := tb.ConfigName()
	if idA != idB {
		t.Errorf("image id %s in the layout, %s in the tarball", idA, idB)
	}
	f, err := os.Open(filepath.Join(out, "image.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatal("no manifest.json in the tarball:", err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			t.Fatal(err)
		}
		if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{"clearml-glue/clearml-glue:" + testVersion}) {
			t.Errorf("manifest.json: %+v", m)
		}
		return
	}
}

// Several -binary flags make an image index, one manifest per platform.
func TestMultiPlatformIndex(t *testing.T) {
	arm := filepath.Join(t.TempDir(), "clearml-glue")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", arm, "./cmd/clearml-glue")
	build.Dir, build.Env = "../..", append(os.Environ(), "CGO_ENABLED=0", "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out := buildGlue(t, "-binary", "linux/arm64/v8="+arm)
	idx, err := layout.ImageIndexFromPath(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	top, _ := idx.IndexManifest()
	inner, err := idx.ImageIndex(top.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := inner.IndexManifest()
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Platform.String())
		img, err := inner.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		if cf.Platform().String() != m.Platform.String() {
			t.Errorf("config says %s, index %s", cf.Platform(), m.Platform)
		}
	}
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64/v8"}) {
		t.Errorf("platforms %q", platforms)
	}
}

// The Dockerfile copies what `image rootfs` lays out: that tree is the image's layer, file for file.
func TestRootfsIsTheLayer(t *testing.T) {
	img, _ := layoutImage(t, filepath.Join(sharedGlue(t), "oci"))
	layer := layerFiles(t, img)
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := run([]string{"rootfs", "-recipe", "clearml-glue", "-binary", glueBin, "-ca-certs", caFile, dir}, io.Discard); err != nil {
		t.Fatal(err)
	}
	tree := map[string]file{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		f := file{Mode: info.Mode(), Uid: 0, Gid: 0}
		if st.Uid != uint32(os.Getuid()) {
			t.Errorf("%s owned by %d", p, st.Uid)
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			f.Sum, _ = os.Readlink(p)
		case info.Mode().IsRegular():
			f.Size, f.Sum = info.Size(), sha(t, p)
		}
		if info.ModTime().Unix() != 1700000000 {
			t.Errorf("%s mtime %s", p, info.ModTime())
		}
		tree[strings.TrimPrefix(p, dir)] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, f := range layer {
		if tree[p] != f {
			t.Errorf("%s: layer %+v, rootfs %+v", p, f, tree[p])
		}
	}
	if len(tree) != len(layer) {
		t.Errorf("rootfs has %d entries, the layer %d", len(tree), len(layer))
	}
}

// The Dockerfile's final stage gives the image the recipe's config.
func TestDockerfileMatchesRecipe(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(data), "")
	var final []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "FROM ") {
			final = nil
		}
		final = append(final, l)
	}
	r := recipes["clearml-glue"]
	want := []string{
		"FROM scratch",
		"COPY --from=build /out/rootfs/ /",
		"USER " + r.User,
		`ENTRYPOINT ["` + strings.Join(r.Entrypoint, `", "`) + `"]`,
		"EXPOSE " + strings.Join(r.Ports, " "),
		"WORKDIR /",
	}
	for _, e := range r.Env {
		want = append(want, "ENV "+e)
	}
	for _, w := range want {
		if !slices.Contains(final, w) {
			t.Errorf("the Dockerfile's final stage lacks %q", w)
		}
	}
	for _, l := range final {
		if strings.HasPrefix(l, "COPY ") && l != "COPY --from=build /out/rootfs/ /" {
			t.Errorf("the final stage copies more than the rootfs: %q", l)
		}
	}
	labels := map[string]string{}
	for _, l := range final {
		if strings.HasPrefix(l, "LABEL ") {
			for _, m := range regexp.MustCompile(`([a-z.]+)="([^"]*)"`).FindAllStringSubmatch(l, -1) {
				labels[m[1]] = m[2]
			}
		}
	}
	for k, v := range r.Labels {
		if labels[k] != v {
			t.Errorf("Dockerfile LABEL %s=%q, the recipe has %q", k, labels[k], v)
		}
	}
}

// The helm test image: Debian's static busybox with its applets, a shell and wget.
func TestBusyboxImage(t *testing.T) {
	const bb = "/bin/busybox"
	if out, err := exec.Command(bb, "--list").Output(); err != nil || !strings.Contains(string(out), "wget") {
		t.Skipf("no static busybox with wget at %s (apt-get install busybox-static): %v", bb, err)
	}
	out := t.TempDir()
	err := run([]string{"build", "-recipe", "busybox", "-binary", "linux/amd64=" + bb, "-ref", "glue-local/busybox:test",
		"-oci", filepath.Join(out, "oci")}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	img, desc := layoutImage(t, filepath.Join(out, "oci"))
	if got := desc.Annotations["io.containerd.image.name"]; got != "docker.io/glue-local/busybox:test" {
		t.Errorf("io.containerd.image.name = %q", got)
	}
	files := layerFiles(t, img)
	for _, p := range []string{"/bin/sh", "/usr/bin/wget", "/usr/bin/seq"} {
		if files[p].Sum != "/bin/busybox" {
			t.Errorf("%s: %+v, want a symlink to /bin/busybox", p, files[p])
		}
	}
	if os.Getuid() != 0 {
		return
	}
	root := unpack(t, img)
	cmd := exec.Command("/bin/sh", "-c", `for i in $(seq 2); do echo "$i $(id -un)"; done; wget --help 2>&1 | head -1`)
	cmd.Dir, cmd.Env = "/", []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(got), "1 nobody\n2 nobody\n") || !strings.Contains(string(got), "BusyBox") {
		t.Fatalf("chrooted busybox: %v: %q", err, got)
	}
}

// The real node's sandbox image: /pause alone, which holds until SIGTERM and then exits 0.
func TestPauseImage(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pause")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./pause")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out := t.TempDir()
	if err := run([]string{"build", "-recipe", "pause", "-binary", "linux/amd64=" + bin, "-ref", "glue-local/pause:1",
		"-oci", filepath.Join(out, "oci")}, io.Discard); err != nil {
		t.Fatal(err)
	}
	img, _ := layoutImage(t, filepath.Join(out, "oci"))
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/pause"}) || cf.Config.User != "65535:65535" {
		t.Errorf("entrypoint %q user %q", cf.Config.Entrypoint, cf.Config.User)
	}
	if files := layerFiles(t, img); len(files) != 1 || files["/pause"].Mode != 0o755 {
		t.Errorf("layer: %+v", files)
	}
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if cmd.ProcessState != nil {
		t.Fatal("pause exited on its own")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("pause after SIGTERM: %v", err)
	}
}

// The Dockerfile's build stage copies every directory that holds a package of the controller
// (the chart is embedded, so charts/ is one): a Docker build cannot miss a file `go build` needs.
func TestDockerfileCopiesWhatTheBuildNeeds(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/clearml-glue")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	need := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		if rel, err := filepath.Rel(root, d); err == nil && !strings.HasPrefix(rel, "..") {
			need[strings.Split(rel, string(filepath.Separator))[0]] = true
		}
	}
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for dir := range need {
		if !regexp.MustCompile(`(?m)^COPY ` + regexp.QuoteMeta(dir) + ` \./` + regexp.QuoteMeta(dir) + `\s*$`).Match(data) {
			t.Errorf("the Dockerfile does not COPY %s ./%s, which the controller's packages need", dir, dir)
		}
	}
	if len(need) < 3 {
		t.Errorf("go list found only %v", need)
	}
}
