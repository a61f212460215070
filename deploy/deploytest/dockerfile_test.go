package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// digestPinned is an image reference with a tag, for the reader, and the
// digest, which decides: name:tag@sha256:<64 hex>. A tag alone is mutable
// (whoever can push to the tag changes what the next build runs); a digest
// alone says nothing to the reader or to Dependabot.
var digestPinned = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*(?::[0-9]+)?/?[a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}@sha256:[0-9a-f]{64}$`)

// fromImages returns the image of every FROM instruction of a Dockerfile
// that is not an earlier stage's name, with its line number.
func fromImages(t *testing.T, text string) map[int]string {
	t.Helper()
	out := map[int]string{}
	stages := map[string]bool{}
	lines := strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.EqualFold(f[0], "FROM") {
			continue
		}
		args := f[1:]
		for len(args) > 0 && strings.HasPrefix(args[0], "--") {
			args = args[1:]
		}
		if len(args) == 0 {
			t.Fatalf("Dockerfile line %d: FROM without an image", i+1)
		}
		image := args[0]
		if len(args) >= 3 && strings.EqualFold(args[1], "AS") {
			stages[strings.ToLower(args[2])] = true
		}
		if stages[strings.ToLower(image)] && !strings.Contains(image, ":") {
			continue
		}
		out[i+1] = image
	}
	return out
}

// TestDockerfileImagesPinnedByDigest: every base image of the Dockerfile is
// name:tag@sha256:digest (docs/operations.md, "Base images", says how to
// update them).
func TestDockerfileImagesPinnedByDigest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	images := fromImages(t, string(b))
	if len(images) < 2 {
		t.Fatalf("want the build and the runtime base images, found %v", images)
	}
	for line, image := range images {
		if strings.Contains(image, "$") {
			t.Errorf("Dockerfile line %d: image %s comes from a build argument; name it, pinned by digest", line, image)
			continue
		}
		if !digestPinned.MatchString(image) {
			t.Errorf("Dockerfile line %d: image %s is not pinned as name:tag@sha256:<digest>", line, image)
		}
	}
}

// TestFromImagesParsing: the FROM reader sees through flags, stage names
// and line continuations, and the pin rule refuses tags and bare digests.
func TestFromImagesParsing(t *testing.T) {
	d := "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1"
	got := fromImages(t, "# syntax=docker/dockerfile:1\nFROM --platform=$BUILDPLATFORM golang:1.26-bookworm@sha256:"+d+" AS build\n"+
		"RUN true\nfrom build AS test\nFROM \\\n  gcr.io/distroless/static-debian12:nonroot\n")
	want := map[int]string{2: "golang:1.26-bookworm@sha256:" + d, 5: "gcr.io/distroless/static-debian12:nonroot"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for l, img := range want {
		if got[l] != img {
			t.Errorf("line %d: got %q, want %q", l, got[l], img)
		}
	}
	for image, ok := range map[string]bool{
		"golang:1.26-bookworm@sha256:" + d:                            true,
		"gcr.io/distroless/static-debian12:nonroot@sha256:" + d:       true,
		"registry.example:5000/team/img:1.0@sha256:" + d:              true,
		"golang:1.26-bookworm":                                        false,
		"golang@sha256:" + d:                                          false,
		"golang:1.26-bookworm@sha256:" + d[:63]:                       false,
		"gcr.io/distroless/static-debian12:nonroot@sha256:" + d + "x": false,
	} {
		if digestPinned.MatchString(image) != ok {
			t.Errorf("%s: pinned = %v, want %v", image, !ok, ok)
		}
	}
}
