package rewrite

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// podSpecPaths are, for each kind that holds pods, the keys that lead from
// the object to its pod spec.
var podSpecPaths = map[string][]string{
	"Pod":                   {"spec"},
	"PodTemplate":           {"template", "spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// containerLists are the pod spec's lists of containers, each with an
// image.
var containerLists = []string{"initContainers", "containers", "ephemeralContainers"}

// Manifests rewrites the container images of Kubernetes objects in src, a
// YAML (or JSON) stream of one or more documents: Pods, the pod templates
// of every workload kind (Deployment, StatefulSet, DaemonSet, ReplicaSet,
// ReplicationController, Job, CronJob, PodTemplate) and the items of a
// List. Only the image values change; every other byte, comments and
// formatting included, stays as it was.
func (r *Rewriter) Manifests(src []byte) ([]byte, []Change, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var images []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("yaml: %w", err)
		}
		if len(doc.Content) > 0 {
			images = appendImages(images, doc.Content[0])
		}
	}
	lines := lineStarts(src)
	var edits []edit
	var changes []Change
	for _, n := range images {
		to, ok := r.Image(n.Value)
		if !ok {
			continue
		}
		at, err := scalarOffset(src, lines, n)
		if err != nil {
			return nil, nil, err
		}
		edits = append(edits, edit{at, at + len(n.Value), to})
		changes = append(changes, Change{Line: n.Line, From: n.Value, To: to})
	}
	return apply(src, edits), changes, nil
}

// appendImages appends the image scalars of object obj to images.
func appendImages(images []*yaml.Node, obj *yaml.Node) []*yaml.Node {
	kind := lookup(obj, "kind")
	if kind == nil {
		return images
	}
	if strings.HasSuffix(kind.Value, "List") { // List, PodList, DeploymentList…
		if items := lookup(obj, "items"); items != nil && items.Kind == yaml.SequenceNode {
			for _, item := range items.Content {
				images = appendImages(images, item)
			}
		}
		return images
	}
	path, ok := podSpecPaths[kind.Value]
	if !ok {
		return images
	}
	spec := obj
	for _, key := range path {
		if spec = lookup(spec, key); spec == nil {
			return images
		}
	}
	for _, list := range containerLists {
		cs := lookup(spec, list)
		if cs == nil || cs.Kind != yaml.SequenceNode {
			continue
		}
		for _, c := range cs.Content {
			if img := lookup(c, "image"); img != nil && img.Kind == yaml.ScalarNode {
				images = append(images, img)
			}
		}
	}
	return images
}

// lookup returns the value of key in mapping n, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// scalarOffset returns the byte offset in src of scalar n's value: where
// the text of a plain scalar starts, or just past a quoted one's opening
// quote. A value written any other way (with escapes, folded, over
// several lines) is an error, rather than a guess.
func scalarOffset(src []byte, lines lineOffsets, n *yaml.Node) (int, error) {
	at := lines.offset(n.Line)
	// Column counts characters from 1.
	for c := 1; c < n.Column && at < len(src); c++ {
		_, size := utf8.DecodeRune(src[at:])
		at += size
	}
	closing := ""
	switch n.Style {
	case yaml.DoubleQuotedStyle:
		at, closing = at+1, `"`
	case yaml.SingleQuotedStyle:
		at, closing = at+1, "'"
	case 0:
	default:
		return 0, fmt.Errorf("yaml: line %d: image %q is written as a block scalar: write it on one line to have it rewritten", n.Line, n.Value)
	}
	if !bytes.HasPrefix(src[at:], []byte(n.Value+closing)) {
		return 0, fmt.Errorf("yaml: line %d: image %q is written with escapes or over several lines: write it as it is to have it rewritten", n.Line, n.Value)
	}
	return at, nil
}
