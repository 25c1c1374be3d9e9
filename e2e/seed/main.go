// Command seed pushes the end-to-end suite's test images to a plain-HTTP
// registry (the suite's upstream) and prints one line per pushed reference:
//
//	library/alpine:3.20 sha256:…
//
// The images are made up, never pulled from anywhere, and the same on every run
// (fixed random seeds and timestamps):
//
//   - library/alpine:3.20: one Docker schema 2 image, linux/amd64, 3 small layers.
//   - library/multi:1: an OCI index of linux/amd64 and linux/arm64 images, each
//     with layers of its own, so the two child manifests differ.
//   - library/big:1: one Docker schema 2 image with a single layer of
//     --big-mib MiB of random bytes (a valid tar.gz that does not compress).
//   - team/app:1.2: a small OCI image in a repository outside library/.
//   - library/burst:1: one layer of --burst-mib MiB, pulled by no client but
//     the suite's fill-once check, so that it is cold when that check starts.
//   - library/cold-docker:1 (Docker types) and library/cold-ctr:1 (OCI): three
//     layers of 2 MiB each, pulled first by dockerd and by containerd, so those
//     clients also fill the cache (several blobs at once), not only read it.
//   - library/partial:1: three layers of 16 MiB, each read first by one of the
//     suite's cold-blob checks (a client that leaves mid-body, a Range
//     request, a HEAD).
//   - library/lifecycle:1.0 (Docker types), :1.1 (an OCI index, linux/amd64 +
//     linux/arm64) and :2.0 (OCI): small images that only the lifecycle check
//     pulls, first by warming docker.io/library/lifecycle:1.* (2.0 must stay out).
//   - library/fill:1 to :5: one layer of 1 MiB each, pulled by the lifecycle
//     check through an Entrepot bounded to a few of them, so that it evicts.
package main

import (
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

func main() {
	registry := flag.String("registry", "", "host:port of the plain-HTTP registry to seed (required)")
	bigMiB := flag.Int("big-mib", 256, "size in MiB of library/big:1's single layer")
	burstMiB := flag.Int("burst-mib", 32, "size in MiB of library/burst:1's single layer")
	flag.Parse()
	if *registry == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := seed(ctx, *registry, *bigMiB, *burstMiB); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

// seedImage is one reference to push and how to build its image.
type seedImage struct {
	ref   string
	build func() (pushable, error)
}

// seed builds and pushes every image, in the order of the package comment.
func seed(ctx context.Context, registry string, bigMiB, burstMiB int) error {
	images := []seedImage{
		{"library/alpine:3.20", func() (pushable, error) { return smallImage("alpine", dockerTypes, amd64, 3) }},
		{"library/multi:1", func() (pushable, error) { return multiArch("multi") }},
		{"library/big:1", func() (pushable, error) { return randomImage("big", dockerTypes, 1, bigMiB) }},
		{"team/app:1.2", func() (pushable, error) { return smallImage("team-app", ociTypes, amd64, 2) }},
		{"library/burst:1", func() (pushable, error) { return randomImage("burst", dockerTypes, 1, burstMiB) }},
		{"library/cold-docker:1", func() (pushable, error) { return randomImage("cold-docker", dockerTypes, 3, 2) }},
		{"library/cold-ctr:1", func() (pushable, error) { return randomImage("cold-ctr", ociTypes, 3, 2) }},
		{"library/partial:1", func() (pushable, error) { return randomImage("partial", dockerTypes, 3, 16) }},
		{"library/lifecycle:1.0", func() (pushable, error) { return smallImage("lifecycle-1.0", dockerTypes, amd64, 2) }},
		{"library/lifecycle:1.1", func() (pushable, error) { return multiArch("lifecycle-1.1") }},
		{"library/lifecycle:2.0", func() (pushable, error) { return smallImage("lifecycle-2.0", ociTypes, amd64, 2) }},
	}
	for i := 1; i <= 5; i++ {
		seed := fmt.Sprintf("fill-%d", i)
		images = append(images, seedImage{fmt.Sprintf("library/fill:%d", i),
			func() (pushable, error) { return randomImage(seed, ociTypes, 1, 1) }})
	}
	for _, im := range images {
		p, err := im.build()
		if err != nil {
			return fmt.Errorf("%s: %w", im.ref, err)
		}
		if err := push(ctx, registry, im.ref, p); err != nil {
			return err
		}
	}
	return nil
}

// smallImage is an image of n small layers whose content is named by seed.
func smallImage(seed string, mt mediaTypes, platform v1.Platform, n int) (v1.Image, error) {
	layers, err := smallLayers(newRand(seed), seed, n, mt.layer)
	if err != nil {
		return nil, fmt.Errorf("%s layers: %w", seed, err)
	}
	return image(mt, platform, layers)
}

// multiArch is an OCI index of two images whose layers differ, so each child
// manifest, config and layer has a digest of its own; seed names the content.
func multiArch(seed string) (pushable, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, p := range []v1.Platform{amd64, arm64} {
		img, err := smallImage(seed+"-"+p.Architecture, ociTypes, p, 2)
		if err != nil {
			return nil, err
		}
		platform := p
		adds = append(adds, mutate.IndexAddendum{
			Add:        plainImage{img},
			Descriptor: v1.Descriptor{Platform: &platform},
		})
	}
	return mutate.AppendManifests(idx, adds...), nil
}

// randomImage has n layers, each a single file of mib MiB of random bytes
// named by seed, gzipped at the fastest level: random bytes do not compress,
// so each blob stays that big.
func randomImage(seed string, mt mediaTypes, n, mib int) (v1.Image, error) {
	rng := newRand(seed)
	var layers []v1.Layer
	for i := range n {
		name := fmt.Sprintf("%s/random%d.bin", seed, i)
		gz, err := tarGz(rng, gzip.BestSpeed, []file{{name: name, size: mib << 20}})
		if err != nil {
			return nil, fmt.Errorf("%s layer %d: %w", seed, i, err)
		}
		l, err := layer(gz, mt.layer)
		if err != nil {
			return nil, fmt.Errorf("%s layer %d: %w", seed, i, err)
		}
		layers = append(layers, l)
	}
	return image(mt, amd64, layers)
}

// plainImage hides an image's artifact type. Without it go-containerregistry
// writes the config media type as each index entry's artifactType, which real
// image indexes (docker buildx, …) do not have, and which older clients (such
// as skopeo 1.9) drop when they re-serialize the index, changing its digest.
type plainImage struct{ v1.Image }

func (plainImage) ArtifactType() (string, error) { return "", nil }

// pushable is what push writes: an image or an index.
type pushable interface {
	Digest() (v1.Hash, error)
}

// push writes p under ref and prints "ref digest".
func push(ctx context.Context, registry, ref string, p pushable) error {
	tag, err := name.NewTag(registry+"/"+ref, name.Insecure)
	if err != nil {
		return err
	}
	switch p := p.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(tag, p, remote.WithContext(ctx))
	case v1.Image:
		err = remote.Write(tag, p, remote.WithContext(ctx))
	default:
		err = fmt.Errorf("cannot push a %T", p)
	}
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := p.Digest()
	if err != nil {
		return err
	}
	fmt.Println(ref, d)
	return nil
}
