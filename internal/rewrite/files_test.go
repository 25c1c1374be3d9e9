package rewrite

import (
	"bytes"
	"strings"
	"testing"
)

func TestDockerfile(t *testing.T) {
	r := testRewriter(t, "cache.internal:5000")
	in := "# syntax=docker/dockerfile:1\n" +
		"ARG BASE=alpine:3.20\n" +
		"FROM --platform=$BUILDPLATFORM golang:1.23 AS build\n" +
		"RUN <<EOF\n" +
		"FROM nginx:1.27\n" + // heredoc content, not an instruction
		"EOF\n" +
		"from build as test\n" +
		"FROM ${BASE}\n" +
		"FROM scratch AS empty\n" +
		"FROM \\\n" +
		"  # a comment inside the instruction: nginx\n" +
		"  nginx AS web\r\n" +
		"COPY --from=build /out /bin/\n" +
		"COPY --from=0 /out /bin/\n" +
		"COPY --from=ghcr.io/org/tools:v2 /tool /bin/\n" +
		"FROM quay.io/org/other:1\n" +
		"FROM web\n" +
		"FROM cache.internal:5000/docker.io/library/nginx:1.27\n" +
		"FROM registry.example.com:5443/team/base@" + dgst + " AS final\n"
	want := "# syntax=docker/dockerfile:1\n" +
		"ARG BASE=alpine:3.20\n" +
		"FROM --platform=$BUILDPLATFORM cache.internal:5000/docker.io/library/golang:1.23 AS build\n" +
		"RUN <<EOF\n" +
		"FROM nginx:1.27\n" +
		"EOF\n" +
		"from build as test\n" +
		"FROM ${BASE}\n" +
		"FROM scratch AS empty\n" +
		"FROM \\\n" +
		"  # a comment inside the instruction: nginx\n" +
		"  cache.internal:5000/docker.io/library/nginx AS web\r\n" +
		"COPY --from=build /out /bin/\n" +
		"COPY --from=0 /out /bin/\n" +
		"COPY --from=cache.internal:5000/ghcr.io/org/tools:v2 /tool /bin/\n" +
		"FROM quay.io/org/other:1\n" +
		"FROM web\n" +
		"FROM cache.internal:5000/docker.io/library/nginx:1.27\n" +
		"FROM cache.internal:5000/private/team/base@" + dgst + " AS final\n"
	got, changes, err := r.Dockerfile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	var lines []int
	for _, c := range changes {
		lines = append(lines, c.Line)
	}
	if len(changes) != 4 || changes[0].Line != 3 || changes[1].Line != 10 || changes[2].Line != 15 || changes[3].Line != 19 {
		t.Fatalf("changes on lines %v, want [3 10 15 19]: %+v", lines, changes)
	}
	// Idempotent.
	again, changes, err := r.Dockerfile(got)
	if err != nil || !bytes.Equal(again, got) || len(changes) != 0 {
		t.Fatalf("second pass: %v, %d changes, same text %v", err, len(changes), bytes.Equal(again, got))
	}
}

func TestDockerfileEscapeDirective(t *testing.T) {
	r := testRewriter(t, "cache.internal:5000")
	in := "# escape=`\nFROM mcr.microsoft.com/x AS a\nFROM `\n  node:20 AS b\nRUN echo \\\n"
	got, _, err := r.Dockerfile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := "# escape=`\nFROM mcr.microsoft.com/x AS a\nFROM `\n  cache.internal:5000/docker.io/library/node:20 AS b\nRUN echo \\\n"
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDockerfileBad(t *testing.T) {
	r := testRewriter(t, "cache.internal:5000")
	if _, _, err := r.Dockerfile(nil); err == nil || !strings.Contains(err.Error(), "dockerfile:") {
		t.Fatalf("an empty Dockerfile: %v, want an error", err)
	}
}

const manifests = `# a comment that stays
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {image: nginx}}
spec:
  initContainers:
    - name: a
      image: busybox:1.36      # first init container
    - name: b
      image: "ghcr.io/org/init@` + dgst + `"
  containers:
  - {name: c, image: 'nginx:1.27'}
  - name: d
    image: quay.io/x/y:1
  ephemeralContainers:
  - name: debug
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
---
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
      - name: app
        image: registry.example.com:5443/team/app:2.1
---
apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: job
            image: alpine
---
apiVersion: v1
kind: ConfigMap
data:
  image: nginx:1.27
---
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: StatefulSet
  spec: {template: {spec: {containers: [{name: s, image: "redis:7"}]}}}
- apiVersion: apps/v1
  kind: DaemonSet
  spec:
    template:
      spec:
        containers:
        - name: é
          image: node:20
`

func TestManifests(t *testing.T) {
	r := testRewriter(t, "cache.internal:5000")
	got, changes, err := r.Manifests([]byte(manifests))
	if err != nil {
		t.Fatal(err)
	}
	want := manifests
	for _, rw := range [][2]string{
		{"image: busybox:1.36 ", "image: cache.internal:5000/docker.io/library/busybox:1.36 "},
		{`image: "ghcr.io/org/init@`, `image: "cache.internal:5000/ghcr.io/org/init@`},
		{`image: 'nginx:1.27'`, `image: 'cache.internal:5000/docker.io/library/nginx:1.27'`},
		{"image: registry.k8s.io/", "image: cache.internal:5000/registry.k8s.io/"},
		{"image: registry.example.com:5443/team/app:2.1", "image: cache.internal:5000/private/team/app:2.1"},
		{"image: alpine\n", "image: cache.internal:5000/docker.io/library/alpine\n"},
		{`image: "redis:7"`, `image: "cache.internal:5000/docker.io/library/redis:7"`},
		{"image: node:20\n", "image: cache.internal:5000/docker.io/library/node:20\n"},
	} {
		if strings.Count(want, rw[0]) != 1 {
			t.Fatalf("test data: %q appears %d times", rw[0], strings.Count(want, rw[0]))
		}
		want = strings.Replace(want, rw[0], rw[1], 1)
	}
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if len(changes) != 8 {
		t.Fatalf("%d changes, want 8: %+v", len(changes), changes)
	}
	again, changes, err := r.Manifests(got)
	if err != nil || !bytes.Equal(again, got) || len(changes) != 0 {
		t.Fatalf("second pass: %v, %d changes", err, len(changes))
	}
}

func TestManifestsRefuses(t *testing.T) {
	r := testRewriter(t, "cache.internal:5000")
	for _, tc := range []struct{ in, want string }{
		{"kind: Pod\nspec:\n  containers:\n  - image: >-\n      nginx\n", "block scalar"},
		{"kind: Pod\nspec:\n  containers:\n  - image: \"ngin\\x78\"\n", "escapes"},
		{"kind: Pod\nspec: [\n", "yaml:"},
	} {
		_, _, err := r.Manifests([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Manifests(%q): %v, want an error with %q", tc.in, err, tc.want)
		}
	}
	// Not a Kubernetes object, or an empty stream: nothing to rewrite.
	for _, in := range []string{"", "---\n", "image: nginx\n", "kind: Pod\nspec: 3\n"} {
		got, changes, err := r.Manifests([]byte(in))
		if err != nil || string(got) != in || len(changes) != 0 {
			t.Errorf("Manifests(%q) = %q, %v, %v", in, got, changes, err)
		}
	}
}

func FuzzDockerfile(f *testing.F) {
	f.Add("FROM nginx:1.27 AS a\nFROM a\nCOPY --from=ghcr.io/x/y:1 / /\n")
	f.Add("# escape=`\nFROM `\n node\n")
	f.Add("FROM --platform=linux/amd64 registry.example.com:5443/a/b@" + dgst + "\n")
	r := testRewriter(f, "cache.internal:5000")
	f.Fuzz(func(t *testing.T, in string) {
		out, changes, err := r.Dockerfile([]byte(in))
		if err != nil {
			return
		}
		if len(changes) == 0 && string(out) != in {
			t.Fatalf("no change reported but the text changed")
		}
		again, more, err := r.Dockerfile(out)
		if err != nil {
			t.Fatalf("the rewritten Dockerfile does not parse: %v\n%q", err, out)
		}
		if len(more) != 0 || !bytes.Equal(again, out) {
			t.Fatalf("a second pass changed %d images: %+v\nin %q\nout %q", len(more), more, in, out)
		}
	})
}

func FuzzManifests(f *testing.F) {
	f.Add(manifests)
	f.Add("kind: Pod\nspec: {containers: [{image: nginx}]}\n")
	r := testRewriter(f, "cache.internal:5000")
	f.Fuzz(func(t *testing.T, in string) {
		out, _, err := r.Manifests([]byte(in))
		if err != nil {
			return
		}
		again, more, err := r.Manifests(out)
		if err != nil || len(more) != 0 || !bytes.Equal(again, out) {
			t.Fatalf("second pass: %v, %d changes\nin %q\nout %q", err, len(more), in, out)
		}
	})
}
