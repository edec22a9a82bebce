// Command image builds the project's container images without a container engine or a registry:
// one reproducible layer from a static binary, written as an OCI image layout and a tarball that
// `docker load` and `ctr images import` accept. The Dockerfile lays out the same files with the
// rootfs subcommand, so both ways give the same file system.
//
//	image build  -recipe clearml-glue -binary linux/amd64=bin/clearml-glue [-binary linux/arm64=...]
//	             -ca-certs /etc/ssl/certs/ca-certificates.crt -ref clearml-glue/clearml-glue:0.1.0
//	             -oci DIR [-docker-tar FILE] [-version V] [-revision R] [-label k=v]
//	image rootfs -recipe clearml-glue -binary PATH -ca-certs PATH DIR
//
// File times and the config's created time come from SOURCE_DATE_EPOCH (default 0), so the same
// inputs give the same digests.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: image build|rootfs [flags]")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	recipeName := fs.String("recipe", "clearml-glue", "image recipe: clearml-glue, busybox or pause")
	caCerts := fs.String("ca-certs", "", "CA bundle to install at "+caBundle+" (clearml-glue)")
	var binaries, labels multiFlag
	fs.Var(&binaries, "binary", "the program: PATH (rootfs), or PLATFORM=PATH (build; repeat for several platforms)")
	fs.Var(&labels, "label", "extra label key=value (repeatable)")
	ref := fs.String("ref", "", "image reference, for example clearml-glue/clearml-glue:0.1.0 (build)")
	ociDir := fs.String("oci", "", "OCI image layout directory to (re)create (build)")
	dockerTar := fs.String("docker-tar", "", "docker load tarball of the first platform (build)")
	version := fs.String("version", "", "org.opencontainers.image.version")
	revision := fs.String("revision", "", "org.opencontainers.image.revision")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, ok := recipes[*recipeName]
	if !ok {
		return fmt.Errorf("unknown recipe %q", *recipeName)
	}
	created, err := sourceDateEpoch()
	if err != nil {
		return err
	}
	m := meta{Created: created, Version: *version, Revision: *revision, Labels: map[string]string{}}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("-label %q is not key=value", l)
		}
		m.Labels[k] = v
	}

	switch cmd {
	case "rootfs":
		if fs.NArg() != 1 || len(binaries) != 1 {
			return fmt.Errorf("usage: image rootfs -recipe NAME -binary PATH [-ca-certs PATH] DIR")
		}
		files, err := r.files(inputs{Binary: binaries[0], CACerts: *caCerts})
		if err != nil {
			return err
		}
		if files, err = complete(files); err != nil {
			return err
		}
		return writeRootfs(fs.Arg(0), files, created)
	case "build":
		if len(binaries) == 0 || *ref == "" || (*ociDir == "" && *dockerTar == "") {
			return fmt.Errorf("build needs -binary, -ref and -oci or -docker-tar")
		}
		tag, err := name.NewTag(*ref)
		if err != nil {
			return err
		}
		var images []v1.Image
		var platforms []platform
		for _, b := range binaries {
			ps, p, ok := strings.Cut(b, "=")
			if !ok {
				return fmt.Errorf("-binary %q is not PLATFORM=PATH", b)
			}
			pl, err := parsePlatform(ps)
			if err != nil {
				return err
			}
			img, err := buildImage(r, pl, inputs{Binary: p, CACerts: *caCerts}, m)
			if err != nil {
				return fmt.Errorf("%s: %w", pl, err)
			}
			images, platforms = append(images, img), append(platforms, pl)
		}
		if err := write(output{Ref: tag, OCIDir: *ociDir, DockerTar: *dockerTar}, images, platforms); err != nil {
			return err
		}
		for i, img := range images {
			d, err := img.Digest()
			if err != nil {
				return err
			}
			id, err := img.ConfigName()
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s %s %s (image id %s)\n", fullName(tag), platforms[i], d, id)
		}
		return nil
	default:
		return fmt.Errorf("unknown command %q (build or rootfs)", cmd)
	}
}

// sourceDateEpoch is the time every build output carries: $SOURCE_DATE_EPOCH, else the epoch.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}
