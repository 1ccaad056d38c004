package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// The agent's own codec reads and writes what the SDK's does.
var messages = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}`,
	`{"jsonrpc":"2.0","id":"abc","method":"tools/list"}`,
	`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}`,
	`{"jsonrpc":"2.0","id":7,"method":""}`,
	`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"3"}],"isError":false}}`,
	`{"jsonrpc":"2.0","id":"x\"y","error":{"code":-32602,"message":"bad","data":{"uri":"a"}}}`,
	`{"jsonrpc":"2.0","id":12.0,"result":{}}`,
	` { "jsonrpc" : "2.0" , "id" : 3 , "result" : { "a" : [ 1 , 2 ] } } `,
}

func TestDecodeMessageAsSDK(t *testing.T) {
	for _, s := range messages {
		want, werr := jsonrpc.DecodeMessage([]byte(s))
		got, gerr := DecodeMessage([]byte(s))
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("DecodeMessage(%s): error %v, SDK's %v", s, gerr, werr)
		}
		if !sameMessage(t, got, want) {
			t.Errorf("DecodeMessage(%s) = %#v, SDK's %#v", s, got, want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"id":1,"method":"x"}`, `{"jsonrpc":"1.0","id":1,"method":"x"}`,
		`{"jsonrpc":"2.0"}`, `{"jsonrpc":"2.0","id":true,"method":"x"}`, `{"jsonrpc":"2.0","id":1,"method":3}`, `{"jsonrpc":"2.0","id":1,"result":{`} {
		if _, werr := jsonrpc.DecodeMessage([]byte(bad)); werr == nil {
			t.Fatalf("the SDK accepts %s: fix the test", bad)
		}
		if m, err := DecodeMessage([]byte(bad)); err == nil {
			t.Errorf("DecodeMessage(%s) = %#v, want an error as the SDK's", bad, m)
		}
	}
}

func TestEncodeMessageAsSDK(t *testing.T) {
	for _, s := range messages {
		if s == messages[3] {
			continue // the SDK drops an empty method, making it a response: the agent keeps it
		}
		msg, err := jsonrpc.DecodeMessage([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := jsonrpc.EncodeMessage(msg)
		got, err := EncodeMessage(msg)
		if err != nil {
			t.Fatalf("EncodeMessage(%s): %v", s, err)
		}
		if !sameJSON(got, want) {
			t.Errorf("EncodeMessage(%s) = %s, SDK's %s", s, got, want)
		}
	}
	id, _ := jsonrpc.MakeID(float64(4))
	wrapped := fmt.Errorf("outer: %w", &jsonrpc.Error{Code: -32001, Message: "inner"})
	for _, msg := range []jsonrpc.Message{
		&jsonrpc.Response{ID: id, Error: errors.New("plain")},
		&jsonrpc.Response{ID: id, Error: wrapped},
		&jsonrpc.Request{Method: "notifications/initialized"},
	} {
		want, _ := jsonrpc.EncodeMessage(msg)
		got, _ := EncodeMessage(msg)
		if !sameJSON(got, want) {
			t.Errorf("EncodeMessage(%#v) = %s, SDK's %s", msg, got, want)
		}
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func sameMessage(t *testing.T, a, b jsonrpc.Message) bool {
	t.Helper()
	ea, err1 := jsonrpc.EncodeMessage(a)
	eb, err2 := jsonrpc.EncodeMessage(b)
	return err1 == nil && err2 == nil && sameJSON(ea, eb) && reflect.TypeOf(a) == reflect.TypeOf(b)
}

func BenchmarkDecodeMessage(b *testing.B) {
	data := []byte(messages[4])
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = jsonrpc.DecodeMessage(data)
		}
	})
	b.Run("agent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = DecodeMessage(data)
		}
	})
}

func TestDecodeMessageStrict(t *testing.T) {
	for _, bad := range []string{
		`{"JSONRPC":"2.0","ID":7,"METHOD":"tools/call"}`,
		`{"jsonrpc":"2.0","id":1,"method":"x","params":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`,
	} {
		if _, werr := jsonrpc.DecodeMessage([]byte(bad)); werr == nil {
			t.Fatalf("the SDK accepts %.60s: fix the test", bad)
		}
		if m, err := DecodeMessage([]byte(bad)); err == nil {
			t.Errorf("DecodeMessage(%.60s) = %#v, want an error as the SDK's", bad, m)
		}
	}
}
