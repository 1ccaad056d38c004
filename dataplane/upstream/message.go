package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sjson "github.com/segmentio/encoding/json"
)

// The SDK's jsonrpc.DecodeMessage builds a streaming decoder with its own
// read buffer for every message (tens of KiB), and its EncodeMessage
// re-encodes raw params and results through reflection. On the front
// door's call path every request and answer passes through both, so the
// agent has its own: a message is decoded once into raw fields, and raw
// params and results are copied into the output as they are.

// wireMessage is the decoded form of any JSON-RPC 2.0 message.
type wireMessage struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  json.RawMessage `json:"method"` // raw: present (even "") makes it a request
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   *jsonrpc.Error  `json:"error"`
}

// DecodeMessage is jsonrpc.DecodeMessage without the per-message decoder:
// it returns a *jsonrpc.Request (a "method" key is present) or a
// *jsonrpc.Response, with params and result as raw JSON.
func DecodeMessage(data []byte) (jsonrpc.Message, error) {
	var m wireMessage
	if err := unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("unmarshaling jsonrpc message: %w", err)
	}
	if m.Version != "2.0" {
		return nil, fmt.Errorf("invalid message version tag %q; expected %q", m.Version, "2.0")
	}
	id, err := decodeID(m.ID)
	if err != nil {
		return nil, err
	}
	if len(m.Method) > 0 {
		var method string
		if err := unmarshal(m.Method, &method); err != nil {
			return nil, fmt.Errorf("unmarshaling jsonrpc message: method: %w", err)
		}
		return &jsonrpc.Request{ID: id, Method: method, Params: m.Params}, nil
	}
	if !id.IsValid() {
		return nil, errors.New("jsonrpc: a message with neither method nor id: invalid request")
	}
	resp := &jsonrpc.Response{ID: id, Result: m.Result}
	if m.Error != nil {
		resp.Error = m.Error
	}
	return resp, nil
}

// maxDepth bounds the nesting of a message, as the SDK's decoder does.
const maxDepth = 1000

// unmarshal decodes as the SDK does (segmentio's decoder, field names
// matched exactly, nesting bounded), without a streaming decoder.
func unmarshal(data []byte, v any) error {
	if err := checkDepth(data); err != nil {
		return err
	}
	// What follows the value is ignored, as by the SDK's decoder.
	_, err := sjson.Parse(data, v, sjson.DontMatchCaseInsensitiveStructFields)
	return err
}

// checkDepth fails when data nests objects and arrays deeper than maxDepth.
func checkDepth(data []byte) error {
	depth, inString, escaped := 0, false, false
	for _, b := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			if depth++; depth > maxDepth {
				return fmt.Errorf("json: exceeded maximum nesting depth of %d", maxDepth)
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return nil
}

// decodeID reads an id as the SDK does: a string, or a number taken as an
// integer; absent or null is no id.
func decodeID(raw json.RawMessage) (jsonrpc.ID, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return jsonrpc.ID{}, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return jsonrpc.ID{}, fmt.Errorf("jsonrpc: id: %w", err)
		}
		return jsonrpc.MakeID(s)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return jsonrpc.ID{}, fmt.Errorf("jsonrpc: invalid ID %s: want a string or a number", raw)
	}
	return jsonrpc.MakeID(f)
}

// EncodeMessage is jsonrpc.EncodeMessage with raw params and results
// copied as they are (they must be valid JSON, as everything decoded by
// DecodeMessage or produced by json.Marshal is).
func EncodeMessage(msg jsonrpc.Message) ([]byte, error) {
	return AppendMessage(nil, msg)
}

// AppendMessage appends msg's encoding (EncodeMessage) to dst.
func AppendMessage(dst []byte, msg jsonrpc.Message) ([]byte, error) {
	dst = append(dst, `{"jsonrpc":"2.0"`...)
	switch m := msg.(type) {
	case *jsonrpc.Request:
		dst = appendID(dst, m.ID)
		dst = append(dst, `,"method":`...)
		dst = appendString(dst, m.Method)
		if len(m.Params) > 0 {
			dst = append(dst, `,"params":`...)
			dst = append(dst, m.Params...)
		}
	case *jsonrpc.Response:
		dst = appendID(dst, m.ID)
		if m.Error != nil {
			data, err := json.Marshal(wireErrorOf(m.Error))
			if err != nil {
				return nil, fmt.Errorf("marshaling jsonrpc message: %w", err)
			}
			dst = append(dst, `,"error":`...)
			dst = append(dst, data...)
		} else if len(m.Result) > 0 {
			dst = append(dst, `,"result":`...)
			dst = append(dst, m.Result...)
		}
	default:
		return nil, fmt.Errorf("marshaling jsonrpc message: unknown message type %T", msg)
	}
	return append(dst, '}'), nil
}

func appendID(dst []byte, id jsonrpc.ID) []byte {
	switch v := id.Raw().(type) {
	case int64:
		dst = append(dst, `,"id":`...)
		return strconv.AppendInt(dst, v, 10)
	case string:
		dst = append(dst, `,"id":`...)
		return appendString(dst, v)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	data, _ := json.Marshal(s) // a string always encodes
	return append(dst, data...)
}

// wireErrorOf is the SDK's conversion of an answer's error: a
// *jsonrpc.Error as is, anything else as its message (with the code of a
// *jsonrpc.Error it wraps).
func wireErrorOf(err error) *jsonrpc.Error {
	var wire *jsonrpc.Error
	if w, ok := err.(*jsonrpc.Error); ok {
		return w
	}
	out := &jsonrpc.Error{Message: err.Error()}
	if errors.As(err, &wire) {
		out.Code = wire.Code
	}
	return out
}

// MediaType is the media type of a Content-Type or Accept entry, without
// its parameters, lower-cased, as mime.ParseMediaType gives it, without
// allocating in the usual case (it runs on every request and answer).
func MediaType(v string) string {
	v, _, _ = strings.Cut(v, ";")
	v = strings.TrimSpace(v)
	for i := 0; i < len(v); i++ {
		if 'A' <= v[i] && v[i] <= 'Z' {
			return strings.ToLower(v)
		}
	}
	return v
}
