package mathserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// FailMode says how an injected tools/call failure is answered.
type FailMode string

const (
	// FailRPC answers with JSON-RPC error -32603 (internal error): a
	// protocol error, which a gateway counts as a server error.
	FailRPC FailMode = "rpc"
	// FailTool answers with a CallToolResult with isError set: a tool error.
	FailTool FailMode = "tool"
)

// AllTools in Faults.FailTools makes every tool fail.
const AllTools = "*"

// Faults are the faults a Server injects. The zero value injects nothing.
//
// On the wire (the admin API) it is a JSON object with the keys fail_tools,
// fail_rate, fail_mode, latency (a Go duration string such as "50ms"), hang
// and fail_list; a missing key means the field's zero value.
type Faults struct {
	// FailTools names the tools whose calls fail; AllTools ("*") means every
	// tool. Empty means no tools/call fails by injection.
	FailTools []string
	// FailRate is the probability, in [0, 1], that a call to a tool in
	// FailTools fails. Zero means 1 (always): to stop failing, clear
	// FailTools.
	FailRate float64
	// FailMode is how a failure is answered; empty means FailRPC.
	FailMode FailMode
	// Latency is added before every tools/call answer (zero: none).
	Latency time.Duration
	// Hang makes every tools/call block until its request's context ends
	// or Hang is cleared; tools/list keeps answering.
	Hang bool
	// FailList makes tools/list fail with JSON-RPC error -32603.
	FailList bool
}

// Validate reports the first thing wrong with f, naming the field and the
// values it accepts.
func (f Faults) Validate() error {
	for _, name := range f.FailTools {
		if name != AllTools && !slices.Contains(toolNames, name) {
			return fmt.Errorf("fail_tools: unknown tool %q (want %s, or %q for every tool)",
				name, strings.Join(toolNames, ", "), AllTools)
		}
	}
	if !(f.FailRate >= 0 && f.FailRate <= 1) { // also rejects NaN
		return fmt.Errorf("fail_rate: %v is out of range (want a number from 0 to 1)", f.FailRate)
	}
	switch f.FailMode {
	case "", FailRPC, FailTool:
	default:
		return fmt.Errorf("fail_mode: %q is not a mode (want %q or %q)", f.FailMode, FailRPC, FailTool)
	}
	if f.Latency < 0 {
		return fmt.Errorf("latency: %v is negative (want a duration such as \"50ms\", or 0)", f.Latency)
	}
	return nil
}

// normalized returns f with defaults filled in and FailTools sorted and
// deduplicated, so that Faults() reports what is in force.
func (f Faults) normalized() Faults {
	tools := slices.Clone(f.FailTools)
	slices.Sort(tools)
	f.FailTools = slices.Compact(tools)
	if slices.Contains(f.FailTools, AllTools) {
		f.FailTools = []string{AllTools}
	}
	if len(f.FailTools) == 0 {
		f.FailTools = nil
	}
	if f.FailRate == 0 {
		f.FailRate = 1
	}
	if f.FailMode == "" {
		f.FailMode = FailRPC
	}
	return f
}

// failsTool reports whether calls to tool are subject to injected failures.
func (f Faults) failsTool(tool string) bool {
	return slices.Contains(f.FailTools, AllTools) || slices.Contains(f.FailTools, tool)
}

// faultsJSON is the wire form of Faults.
type faultsJSON struct {
	FailTools []string        `json:"fail_tools"`
	FailRate  float64         `json:"fail_rate"`
	FailMode  FailMode        `json:"fail_mode"`
	Latency   json.RawMessage `json:"latency"`
	Hang      bool            `json:"hang"`
	FailList  bool            `json:"fail_list"`
}

// MarshalJSON implements json.Marshaler.
func (f Faults) MarshalJSON() ([]byte, error) {
	tools := f.FailTools
	if tools == nil {
		tools = []string{}
	}
	latency, err := json.Marshal(f.Latency.String())
	if err != nil {
		return nil, err
	}
	return json.Marshal(faultsJSON{
		FailTools: tools,
		FailRate:  f.FailRate,
		FailMode:  f.FailMode,
		Latency:   latency,
		Hang:      f.Hang,
		FailList:  f.FailList,
	})
}

// UnmarshalJSON implements json.Unmarshaler. Unknown keys are errors, so a
// misspelt fault is not silently ignored.
func (f *Faults) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w faultsJSON
	if err := dec.Decode(&w); err != nil {
		return err
	}
	latency, err := parseLatency(w.Latency)
	if err != nil {
		return err
	}
	*f = Faults{
		FailTools: w.FailTools,
		FailRate:  w.FailRate,
		FailMode:  w.FailMode,
		Latency:   latency,
		Hang:      w.Hang,
		FailList:  w.FailList,
	}
	return nil
}

// parseLatency decodes the wire latency: a Go duration string, "" or null
// for none.
func parseLatency(raw json.RawMessage) (time.Duration, error) {
	var s string
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("latency: %s is not a string (want a Go duration such as \"50ms\")", raw)
		}
	}
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("latency: %q is not a Go duration (want a string such as \"50ms\" or \"1.5s\")", s)
	}
	return d, nil
}

// ParseToolList splits a comma-separated list of tool names such as
// "add,divide" (the --fail-tools flag), dropping blanks.
func ParseToolList(s string) []string {
	var names []string
	for name := range strings.SplitSeq(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			names = append(names, name)
		}
	}
	return names
}
