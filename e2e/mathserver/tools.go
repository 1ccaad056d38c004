package mathserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// toolNames lists the tools a Server serves, in the order they are added.
var toolNames = []string{"add", "subtract", "multiply", "divide", "power", "whoami", "append"}

type operands struct {
	A float64 `json:"a" jsonschema:"the first operand"`
	B float64 `json:"b" jsonschema:"the second operand"`
}

type numberOut struct {
	Result float64 `json:"result"`
}

type whoamiOut struct {
	Name string `json:"name"`
}

type appendIn struct {
	Text string `json:"text" jsonschema:"the text to append"`
}

type appendOut struct {
	Length int `json:"length"`
}

// readOnly annotates the tools that may be retried on another member.
func readOnly() *mcp.ToolAnnotations {
	f := false
	return &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &f}
}

func (s *Server) addTools() {
	arith := []struct {
		name, desc string
		op         func(a, b float64) (float64, error)
	}{
		{"add", "a + b", func(a, b float64) (float64, error) { return a + b, nil }},
		{"subtract", "a - b", func(a, b float64) (float64, error) { return a - b, nil }},
		{"multiply", "a * b", func(a, b float64) (float64, error) { return a * b, nil }},
		{"divide", "a / b (b = 0 is a tool error)", func(a, b float64) (float64, error) {
			if b == 0 {
				return 0, errors.New("division by zero")
			}
			return a / b, nil
		}},
		{"power", "a raised to the power b", func(a, b float64) (float64, error) { return math.Pow(a, b), nil }},
	}
	for _, t := range arith {
		mcp.AddTool(s.mcp, &mcp.Tool{Name: t.name, Description: t.desc, Annotations: readOnly()},
			func(_ context.Context, _ *mcp.CallToolRequest, in operands) (*mcp.CallToolResult, numberOut, error) {
				n, err := t.op(in.A, in.B)
				if err == nil && (math.IsNaN(n) || math.IsInf(n, 0)) {
					err = fmt.Errorf("the result of %s(%v, %v) is not a finite number", t.name, in.A, in.B)
				}
				if err != nil {
					return nil, numberOut{}, err // the SDK answers isError with err's text
				}
				return textResult(strconv.FormatFloat(n, 'g', -1, 64)), numberOut{Result: n}, nil
			})
	}
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "whoami", Description: "the server's name", Annotations: readOnly()},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, whoamiOut, error) {
			return textResult(s.name), whoamiOut{Name: s.name}, nil
		})
	f := false
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "append",
		Description: "append text to an in-memory list and return its new length (not idempotent)",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &f, OpenWorldHint: &f},
	}, func(_ context.Context, _ *mcp.CallToolRequest, in appendIn) (*mcp.CallToolResult, appendOut, error) {
		s.mu.Lock()
		s.appended = append(s.appended, in.Text)
		n := len(s.appended)
		s.mu.Unlock()
		return textResult(strconv.Itoa(n)), appendOut{Length: n}, nil
	})
}

func textResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}
