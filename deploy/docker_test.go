package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var dockerStage = regexp.MustCompile(`(?m)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$`)

// dockerTargets returns the Dockerfile's named stages other than build.
func dockerTargets(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, st := range dockerStages(t) {
		if st.name != "build" {
			out = append(out, st.name)
		}
	}
	return out
}

type stage struct{ base, name, body string }

func dockerStages(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	idx := dockerStage.FindAllStringSubmatchIndex(s, -1)
	var out []stage
	for i, m := range idx {
		end := len(s)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		st := stage{base: s[m[2]:m[3]], body: s[m[1]:end]}
		if m[4] >= 0 {
			st.name = s[m[4]:m[5]]
		}
		out = append(out, st)
	}
	return out
}

// TestDockerfileBuildsStaticNonRootStampedImages checks the Dockerfile
// statically (no Docker engine here): a static, stamped build stage and,
// for each binary, a distroless stage that runs it as a non-root user with
// OCI version labels.
func TestDockerfileBuildsStaticNonRootStampedImages(t *testing.T) {
	stages := dockerStages(t)
	if len(stages) == 0 || stages[0].name != "build" {
		t.Fatal("the first stage must be the build stage")
	}
	b := stages[0].body
	for _, want := range []string{"CGO_ENABLED=0", "internal/version.Version=${VERSION}", "internal/version.Commit=${COMMIT}",
		"internal/version.Date=${DATE}", "-trimpath"} {
		if !strings.Contains(b, want) {
			t.Errorf("build stage lacks %q (static, stamped binaries)", want)
		}
	}
	var targets []string
	for _, st := range stages[1:] {
		targets = append(targets, st.name)
		if !strings.Contains(st.base, "distroless/static") {
			t.Errorf("stage %s is based on %s, not a static distroless image", st.name, st.base)
		}
		user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(st.body)
		if user == nil || strings.HasPrefix(user[1], "0") || user[1] == "root" {
			t.Errorf("stage %s does not run as a non-root user", st.name)
		}
		for _, label := range []string{"org.opencontainers.image.version=\"${VERSION}\"", "org.opencontainers.image.revision=\"${COMMIT}\"",
			"org.opencontainers.image.created=\"${DATE}\"", "org.opencontainers.image.title=\"" + st.name + "\""} {
			if !strings.Contains(st.body, label) {
				t.Errorf("stage %s lacks label %s", st.name, label)
			}
		}
		if !strings.Contains(st.body, "COPY --from=build /out/"+st.name+" ") {
			t.Errorf("stage %s does not copy its binary from the build stage", st.name)
		}
		if !strings.Contains(b, "/cmd/"+st.name) {
			t.Errorf("the build stage does not build %s", st.name)
		}
	}
	for _, want := range []string{"hangar-agent", "hangar-controlplane", "hangarctl"} {
		if !slices.Contains(targets, want) {
			t.Errorf("no image stage for %s", want)
		}
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	images := regexp.MustCompile(`(?m)^IMAGES := (.*)$`).FindStringSubmatch(string(mk))
	if images == nil || !strings.Contains(string(mk), "--target $$t") {
		t.Fatal("the Makefile has no IMAGES list that `make images` builds with --target")
	}
	for _, tg := range targets {
		if !slices.Contains(strings.Fields(images[1]), tg) {
			t.Errorf("make images does not build target %s", tg)
		}
	}
}
