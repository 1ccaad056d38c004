package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// Helpers of the operations tests: scrape real processes, turn the samples
// into promtool input series, and render the alerts deploy/prometheus/
// rules.yaml should raise.

const rulesFile = "../deploy/prometheus/rules.yaml"

// requirePromtool returns promtool's path or fails with how to install it.
func requirePromtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run `make ops-tools` (scripts/install-promtool.sh, Debian's prometheus package)")
	}
	return p
}

// target is one scraped process as Prometheus would label it.
type target struct {
	job, instance string
	families      map[string]*dto.MetricFamily
}

// scrapeTarget reads every metric family of url (…/metrics).
func scrapeTarget(t *testing.T, job, instance, url string) target {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape of %s: %v", url, err)
	}
	return target{job: job, instance: instance, families: fams}
}

// ownFamily reports whether a family is Hangar's (not Go or process
// runtime metrics, which the rules and dashboard do not use).
func ownFamily(name string) bool {
	return strings.HasPrefix(name, "mcp_hangar_") || strings.HasPrefix(name, "hangar_") || strings.HasPrefix(name, "grpc_server_")
}

// sample is one scraped series and its value.
type sample struct {
	series string // name{labels} in promtool's series notation
	name   string
	value  float64
}

// samples flattens a target's own families into series, with job and
// instance labels added (histograms as _bucket, _sum and _count).
func (tg target) samples() []sample {
	var out []sample
	for name, f := range tg.families {
		if !ownFamily(name) {
			continue
		}
		for _, m := range f.GetMetric() {
			base := map[string]string{"job": tg.job, "instance": tg.instance}
			for _, l := range m.GetLabel() {
				base[l.GetName()] = l.GetValue()
			}
			add := func(n string, v float64, extra ...string) {
				ls := map[string]string{}
				for k, x := range base {
					ls[k] = x
				}
				for i := 0; i+1 < len(extra); i += 2 {
					ls[extra[i]] = extra[i+1]
				}
				out = append(out, sample{series: seriesName(n, ls), name: n, value: v})
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(name+"_bucket", float64(b.GetCumulativeCount()), "le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))
				}
				add(name+"_bucket", float64(h.GetSampleCount()), "le", "+Inf")
				add(name+"_sum", h.GetSampleSum())
				add(name+"_count", float64(h.GetSampleCount()))
			case dto.MetricType_UNTYPED:
				add(name, m.GetUntyped().GetValue())
			}
		}
	}
	return out
}

func seriesName(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(labels[k])
	}
	return name + "{" + strings.Join(parts, ", ") + "}"
}

// familyNames returns the names of every family the targets export.
func familyNames(targets ...target) map[string]bool {
	out := map[string]bool{}
	for _, tg := range targets {
		for n := range tg.families {
			out[n] = true
		}
	}
	return out
}

// expAlert is one alert a rules test expects, with the labels the
// expression yields (rule labels are added from rules.yaml).
type expAlert map[string]string

// alertCase is what one alert should do on one phase's scrapes.
type alertCase struct {
	alert  string
	evalAt time.Duration
	want   []expAlert
}

// rulesTest writes a promtool unit test: the scraped series held constant
// (series listed in grow increase by that many per minute instead, as
// clocks do), and the alert cases. It returns the file's contents.
func rulesTest(t *testing.T, phase string, targets []target, grow map[string]float64, cases []alertCase) string {
	t.Helper()
	rules := loadRules(t)
	var in []map[string]string
	seen := map[string]bool{}
	for _, tg := range targets {
		for _, s := range tg.samples() {
			// gRPC's per-method series are many and no rule reads them.
			if seen[s.series] || strings.HasPrefix(s.name, "grpc_") || math.IsNaN(s.value) || math.IsInf(s.value, 0) {
				continue
			}
			seen[s.series] = true
			v := strconv.FormatFloat(s.value, 'g', -1, 64)
			values := v + "+0x60"
			if g, ok := grow[s.name]; ok {
				values = v + "+" + strconv.FormatFloat(g, 'g', -1, 64) + "x60"
			}
			in = append(in, map[string]string{"series": s.series, "values": values})
		}
	}
	sort.Slice(in, func(i, j int) bool { return in[i]["series"] < in[j]["series"] })
	var tests []map[string]any
	for _, c := range cases {
		r, ok := rules[c.alert]
		if !ok {
			t.Fatalf("%s has no alert %s", rulesFile, c.alert)
		}
		exp := []map[string]any{}
		for _, a := range c.want {
			labels := map[string]string{}
			for k, v := range r.Labels {
				labels[k] = v
			}
			for k, v := range a {
				labels[k] = v
			}
			ann := map[string]string{}
			for k, v := range r.Annotations {
				ann[k] = expandLabels(v, labels)
			}
			exp = append(exp, map[string]any{"exp_labels": labels, "exp_annotations": ann})
		}
		tests = append(tests, map[string]any{"eval_time": c.evalAt.String(), "alertname": c.alert, "exp_alerts": exp})
	}
	doc := map[string]any{
		"rule_files":          []string{"../rules.yaml"},
		"evaluation_interval": "1m",
		"tests": []map[string]any{{
			"name": phase, "interval": "1m", "input_series": in, "alert_rule_test": tests,
		}},
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return "# Generated by e2e/TestOpsRulesOnRealScrapes from the metrics of real processes\n" +
		"# (phase " + phase + "); go test ./e2e -run TestOpsRulesOnRealScrapes -update-ops rewrites it.\n" + string(out)
}

type ruleDef struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// loadRules returns rules.yaml's alerts by name.
func loadRules(t *testing.T) map[string]ruleDef {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []ruleDef `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	out := map[string]ruleDef{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out[r.Alert] = r
			}
		}
	}
	return out
}

var labelRef = regexp.MustCompile(`\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// expandLabels renders the only template form the annotations use.
func expandLabels(s string, labels map[string]string) string {
	return labelRef.ReplaceAllStringFunc(s, func(m string) string {
		return labels[labelRef.FindStringSubmatch(m)[1]]
	})
}

// runPromtool runs `promtool test rules` on a test file in dir.
func runPromtool(t *testing.T, promtool, dir, file string) error {
	t.Helper()
	cmd := exec.Command(promtool, "test", "rules", file)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("promtool test rules %s:\n%s", file, out)
		}
		return err
	}
	return nil
}
