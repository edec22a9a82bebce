package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// platform is os/arch[/variant], as Docker and OCI spell it.
type platform struct{ OS, Arch, Variant string }

func parsePlatform(s string) (platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platform{}, fmt.Errorf("platform %q is not os/arch[/variant]", s)
	}
	p := platform{OS: parts[0], Arch: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func (p platform) String() string {
	if p.Variant != "" {
		return p.OS + "/" + p.Arch + "/" + p.Variant
	}
	return p.OS + "/" + p.Arch
}

// meta is what a build stamps into the image besides the files.
type meta struct {
	Created  time.Time         // every file time and the config's created (SOURCE_DATE_EPOCH)
	Version  string            // org.opencontainers.image.version
	Revision string            // org.opencontainers.image.revision
	Labels   map[string]string // extra labels, over the recipe's
}

func (m meta) labels(r recipe) map[string]string {
	l := maps.Clone(r.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l["org.opencontainers.image.created"] = m.Created.UTC().Format(time.RFC3339)
	if m.Version != "" {
		l["org.opencontainers.image.version"] = m.Version
	}
	if m.Revision != "" {
		l["org.opencontainers.image.revision"] = m.Revision
	}
	maps.Copy(l, m.Labels)
	return l
}

// buildImage makes a one-layer OCI image of the recipe for one platform.
func buildImage(r recipe, p platform, in inputs, m meta) (v1.Image, error) {
	files, err := r.files(in)
	if err != nil {
		return nil, err
	}
	files, err = complete(files)
	if err != nil {
		return nil, err
	}
	raw, err := layerTar(files, m.Created)
	if err != nil {
		return nil, err
	}
	// Compressed once here: ggcr would compress again for every digest and every write. Go's
	// gzip with an empty header is deterministic (for a given Go version).
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz.Bytes())), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: m.Created.UTC()}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: created, CreatedBy: "ci/image build -recipe " + r.Name, Comment: "one layer, built without a container engine"}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created, cf.OS, cf.Architecture, cf.Variant = created, p.OS, p.Arch, p.Variant
	cf.Config = v1.Config{
		User:       r.User,
		Entrypoint: r.Entrypoint,
		Env:        r.Env,
		WorkingDir: "/",
		Labels:     m.labels(r),
	}
	if len(r.Ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, port := range r.Ports {
			cf.Config.ExposedPorts[port] = struct{}{}
		}
	}
	return mutate.ConfigFile(img, cf)
}

// output is where a build goes: an OCI image layout (every platform) and a `docker load`
// tarball (one platform, Docker's format holds one).
type output struct {
	Ref       name.Tag
	OCIDir    string
	DockerTar string
}

// write stores the images: a single image, or an index of them when there are several. The
// layout's index.json names it with the tag (org.opencontainers.image.ref.name) and the full
// reference (io.containerd.image.name), so `ctr images import` and skopeo find the name.
func write(out output, images []v1.Image, platforms []platform) error {
	if out.OCIDir != "" {
		if err := os.RemoveAll(out.OCIDir); err != nil {
			return err
		}
		lp, err := layout.Write(out.OCIDir, empty.Index)
		if err != nil {
			return err
		}
		anns := map[string]string{
			"org.opencontainers.image.ref.name": out.Ref.TagStr(),
			"io.containerd.image.name":          fullName(out.Ref),
		}
		var top partial.Describable
		if len(images) == 1 {
			err, top = lp.WriteImage(images[0]), images[0]
		} else {
			idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
			for i, img := range images {
				pl := v1Platform(platforms[i])
				idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
			}
			err, top = lp.WriteIndex(idx), idx
		}
		if err != nil {
			return err
		}
		desc, err := partial.Descriptor(top)
		if err != nil {
			return err
		}
		// ggcr derives artifactType from the config media type; it is meant for artifacts.
		desc.ArtifactType, desc.Annotations = "", anns
		if len(images) == 1 {
			pl := v1Platform(platforms[0])
			desc.Platform = &pl
		}
		if err := lp.AppendDescriptor(*desc); err != nil {
			return err
		}
		// Blobs are written through private temp files; make the layout readable like any build output.
		if err := filepath.WalkDir(filepath.Join(out.OCIDir, "blobs"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			return os.Chmod(p, 0o644)
		}); err != nil {
			return err
		}
	}
	if out.DockerTar != "" {
		tmp := out.DockerTar + ".tmp"
		if err := tarball.WriteToFile(tmp, out.Ref, images[0]); err != nil {
			return err
		}
		return os.Rename(tmp, out.DockerTar)
	}
	return nil
}

func v1Platform(p platform) v1.Platform {
	return v1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant}
}

// fullName is the reference as containerd and the kubelet spell it: Docker Hub is docker.io and
// its official images are under library/ ("busybox:1.37" is docker.io/library/busybox:1.37).
func fullName(t name.Tag) string {
	reg := t.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + t.RepositoryStr() + ":" + t.TagStr()
}
