package thirdparty

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
)

// Plan is what the TypeScript-SDK client (mcp-client.mjs) does: where it
// connects, what it declares and answers, and its steps in order.
type Plan struct {
	URL     string            `json:"url,omitempty"`     // Streamable HTTP endpoint, or
	Command string            `json:"command,omitempty"` // a stdio server to start
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`

	ClientInfo   *Implementation `json:"clientInfo,omitempty"`
	Capabilities Capabilities    `json:"capabilities"`
	Steps        []Step          `json:"steps"`
	TimeoutMs    int             `json:"timeoutMs,omitempty"`   // per request; 30 s when 0
	KeepSession  bool            `json:"keepSession,omitempty"` // no HTTP DELETE at the end
}

// Implementation is MCP's name and version of a client or server.
type Implementation struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Capabilities are the client capabilities the script declares, each with
// the canned answer it gives to the server's requests.
type Capabilities struct {
	Sampling    *CannedReply `json:"sampling,omitempty"`    // answers sampling/createMessage
	Elicitation *CannedReply `json:"elicitation,omitempty"` // answers elicitation/create
	Roots       []Root       `json:"roots,omitempty"`       // answers roots/list
}

// CannedReply is the result returned to every request of one kind.
type CannedReply struct {
	Reply any `json:"reply"`
}

// Root is one entry of roots/list.
type Root struct {
	URI  string `json:"uri"`
	Name string `json:"name,omitempty"`
}

// Step is one action of the client; Op says which, the other fields are its
// parameters. Build them with the functions below.
type Step struct {
	Op        string         `json:"op"`
	Name      string         `json:"name,omitempty"`
	Arguments map[string]any `json:"arguments,omitempty"`
	Progress  bool           `json:"progress,omitempty"`
	URI       string         `json:"uri,omitempty"`
	Level     string         `json:"level,omitempty"`
	Method    string         `json:"method,omitempty"`
	Params    any            `json:"params,omitempty"`
	Ref       any            `json:"ref,omitempty"`
	Argument  any            `json:"argument,omitempty"`
	Count     int            `json:"count,omitempty"`
	Match     string         `json:"match,omitempty"`
	TimeoutMs int            `json:"timeoutMs,omitempty"`
}

// Steps of a plan.
func ListTools() Step             { return Step{Op: "listTools"} }
func ListResources() Step         { return Step{Op: "listResources"} }
func ListResourceTemplates() Step { return Step{Op: "listResourceTemplates"} }
func ListPrompts() Step           { return Step{Op: "listPrompts"} }
func Ping() Step                  { return Step{Op: "ping"} }
func SetLogLevel(level string) Step {
	return Step{Op: "setLogLevel", Level: level}
}
func CallTool(name string, args map[string]any) Step {
	return Step{Op: "callTool", Name: name, Arguments: args}
}

// CallToolWithProgress sends a progress token and records the progress
// notifications of the call in its StepResult.
func CallToolWithProgress(name string, args map[string]any) Step {
	return Step{Op: "callTool", Name: name, Arguments: args, Progress: true}
}
func ReadResource(uri string) Step { return Step{Op: "readResource", URI: uri} }
func Subscribe(uri string) Step    { return Step{Op: "subscribe", URI: uri} }
func Unsubscribe(uri string) Step  { return Step{Op: "unsubscribe", URI: uri} }
func GetPrompt(name string, args map[string]any) Step {
	return Step{Op: "getPrompt", Name: name, Arguments: args}
}

// Complete asks completion/complete for ref (e.g. {"type":"ref/prompt","name":...})
// and argument ({"name":...,"value":...}).
func Complete(ref, argument any) Step { return Step{Op: "complete", Ref: ref, Argument: argument} }

// Request sends any method with raw params.
func Request(method string, params any) Step {
	return Step{Op: "request", Method: method, Params: params}
}

// WaitNotification waits until count notifications of method have arrived
// in total since the start (at most timeoutMs, 10 s when 0).
func WaitNotification(method string, count, timeoutMs int) Step {
	return Step{Op: "waitNotification", Method: method, Count: count, TimeoutMs: timeoutMs}
}

// WaitNotificationMatching is WaitNotification counting only the
// notifications whose params, as JSON, contain match.
func WaitNotificationMatching(method, match string, count, timeoutMs int) Step {
	return Step{Op: "waitNotification", Method: method, Match: match, Count: count, TimeoutMs: timeoutMs}
}

// WaitServerRequest waits until count server requests of method (e.g.
// roots/list) have been answered in total.
func WaitServerRequest(method string, count, timeoutMs int) Step {
	return Step{Op: "waitServerRequest", Method: method, Count: count, TimeoutMs: timeoutMs}
}

// Report is what the client saw.
type Report struct {
	OK                 bool                         `json:"ok"` // it connected
	Error              string                       `json:"error"`
	SessionID          string                       `json:"sessionId"`
	ProtocolVersion    string                       `json:"protocolVersion"`
	ServerInfo         json.RawMessage              `json:"serverInfo"`
	ServerCapabilities map[string]json.RawMessage   `json:"serverCapabilities"`
	Instructions       string                       `json:"instructions"`
	Steps              []StepResult                 `json:"steps"`
	Notifications      map[string][]json.RawMessage `json:"notifications"`  // params by method
	ServerRequests     map[string][]json.RawMessage `json:"serverRequests"` // params by method, answered
}

// StepResult is the outcome of one step.
type StepResult struct {
	Op       string            `json:"op"`
	OK       bool              `json:"ok"`
	Result   json.RawMessage   `json:"result"`
	Error    string            `json:"error"`
	Code     *int              `json:"code"`     // JSON-RPC error code, when there was one
	Progress []json.RawMessage `json:"progress"` // notifications/progress params, for CallToolWithProgress
	Ms       int               `json:"ms"`
}

// Decode unmarshals the step's result into out.
func (s StepResult) Decode(out any) error {
	if !s.OK {
		return fmt.Errorf("%s failed: %s", s.Op, s.Error)
	}
	if err := json.Unmarshal(s.Result, out); err != nil {
		return fmt.Errorf("decode %s result %s: %w", s.Op, s.Result, err)
	}
	return nil
}

// Names returns the "name" (or "uri") of every item of a list step's result
// under key ("tools", "prompts", "resources", "resourceTemplates").
func (s StepResult) Names(key string) ([]string, error) {
	var res map[string]json.RawMessage
	if err := s.Decode(&res); err != nil {
		return nil, err
	}
	var items []struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
	}
	if err := json.Unmarshal(res[key], &items); err != nil {
		return nil, fmt.Errorf("decode %s of %s: %w", key, s.Op, err)
	}
	var names []string
	for _, it := range items {
		if key == "resources" {
			names = append(names, it.URI)
		} else {
			names = append(names, it.Name)
		}
	}
	return names, nil
}

// RunClient runs the TypeScript-SDK client with plan and returns its report.
// The error is set when the client could not run or connect (the report
// then says why, if it got that far); failed steps are only in the report.
func (tl *Tooling) RunClient(ctx context.Context, plan Plan) (*Report, error) {
	in, err := json.Marshal(plan)
	if err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	cmd := exec.CommandContext(ctx, tl.Node(), tl.Path("mcp-client.mjs"))
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runErr := cmd.Run()
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("TypeScript client: %v; no report (%w); stdout:\n%s\nstderr:\n%s", runErr, err, stdout.Bytes(), stderr.Bytes())
	}
	if runErr != nil || !rep.OK {
		return &rep, fmt.Errorf("TypeScript client: %w: %s\nstderr:\n%s", errors.Join(runErr, errors.New("did not connect")), rep.Error, stderr.Bytes())
	}
	return &rep, nil
}
