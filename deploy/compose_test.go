package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// composeFile is the part of the Compose specification the demo's file
// uses; decoding with KnownFields refuses any other key, so a typo fails.
type composeFile struct {
	Name     string                    `yaml:"name"`
	XBuild   map[string]any            `yaml:"x-build"`
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string            `yaml:"context"`
		Dockerfile string            `yaml:"dockerfile"`
		Target     string            `yaml:"target"`
		Args       map[string]string `yaml:"args"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   []string          `yaml:"depends_on"`
	Restart     string            `yaml:"restart"`
}

// TestComposeRunsTheDemoSystem checks docker-compose.yaml statically (no
// Docker engine here): the demo's five services, images built from the
// Dockerfile's targets, command lines the binaries accept, every file,
// secret and volume it names present, and the fleet file valid.
func TestComposeRunsTheDemoSystem(t *testing.T) {
	data, err := os.ReadFile("compose/docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	targets := dockerTargets(t)
	images := map[string]string{} // image → binary
	var agents, upstreams, cps int
	for name, s := range f.Services {
		bin := hangarBinary(s.Image)
		if bin == "" {
			t.Errorf("service %s: image %q is not a Hangar image", name, s.Image)
			continue
		}
		if s.Build != nil {
			if !slices.Contains(targets, s.Build.Target) || filepath.Join("compose", s.Build.Context, s.Build.Dockerfile) != "../deploy/docker/Dockerfile" {
				t.Errorf("service %s: build %+v does not name deploy/docker/Dockerfile and one of its targets %v", name, *s.Build, targets)
			}
			images[s.Image] = s.Build.Target
		}
		checkArgs(t, "compose service "+name, bin, s.Command)
		for _, sec := range s.Secrets {
			if _, ok := f.Secrets[sec]; !ok {
				t.Errorf("service %s: secret %s is not declared", name, sec)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join("compose", src)); err != nil {
					t.Errorf("service %s: bind mount %s: %v", name, src, err)
				}
			} else if _, ok := f.Volumes[src]; !ok {
				t.Errorf("service %s: volume %s is not declared", name, src)
			}
		}
		for _, d := range s.DependsOn {
			if _, ok := f.Services[d]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, d)
			}
		}
		switch bin {
		case "hangar-agent":
			agents++
		case "mcp-math":
			upstreams++
		case "hangar-controlplane":
			cps++
		}
	}
	for name, s := range f.Services {
		if s.Build == nil && images[s.Image] == "" {
			t.Errorf("service %s: image %s is built by no service", name, s.Image)
		}
	}
	if agents != 2 || upstreams != 2 || cps != 1 {
		t.Errorf("compose runs %d control planes, %d agents, %d upstreams; the demo's system is 1, 2, 2", cps, agents, upstreams)
	}
	for name, s := range f.Secrets {
		if _, err := os.Stat(filepath.Join("compose", s.File)); err != nil {
			t.Errorf("secret %s: %v", name, err)
		}
	}
	fleet, err := os.ReadFile("compose/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := fleetfile.Parse("compose/config.yaml", fleet, os.LookupEnv)
	if err != nil {
		t.Fatalf("the compose fleet file is invalid: %v", err)
	}
	for _, s := range parsed.Servers {
		host := regexp.MustCompile(`^http://([^:/]+)`).FindStringSubmatch(s.Endpoint)
		if host == nil || f.Services[host[1]].Image == "" {
			t.Errorf("fleet member %s points at %s, which is no compose service", s.ID, s.Endpoint)
		}
	}
}
