package hangarctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Output formats (-o).
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// jsonOptions fix the field names (the proto's own) and print every field,
// zero or not, so scripts can rely on a key being there.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// encodeJSON renders m as indented JSON ending in a newline. protojson's
// own spacing varies from build to build on purpose; re-indenting it with
// encoding/json makes the output byte-for-byte stable.
func encodeJSON(m proto.Message) ([]byte, error) {
	raw, err := marshalJSON(m)
	if err != nil {
		return nil, err
	}
	return indentJSON(raw)
}

// marshalJSON is protojson's rendering of m with enums as lower-case words
// and 64-bit integers as numbers (normalize).
func marshalJSON(m proto.Message) ([]byte, error) {
	raw, err := jsonOptions.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s as JSON: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	return normalize(raw, m.ProtoReflect().Descriptor())
}

// indentJSON indents raw by two spaces and ends it with a newline.
func indentJSON(raw []byte) ([]byte, error) {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("indent JSON: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// encodeYAML renders the same document as encodeJSON as block-style YAML,
// keeping the field order (JSON is YAML, so the node tree keeps it).
func encodeYAML(m proto.Message) ([]byte, error) {
	raw, err := marshalJSON(m)
	if err != nil {
		return nil, err
	}
	return jsonToYAML(raw)
}

func jsonToYAML(raw []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("convert JSON to YAML: %w", err)
	}
	blockStyle(&doc)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	return out.Bytes(), nil
}

// blockStyle drops the flow style and quoting the JSON source implies;
// the encoder still quotes strings that would otherwise read as another
// type, such as int64 values, which protojson writes as strings.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// printer writes one command's result in the chosen format.
type printer struct {
	format string
	w      io.Writer
}

// print writes m as JSON or YAML, or calls table to write it for people.
func (p printer) print(m proto.Message, table func(io.Writer) error) error {
	var b []byte
	var err error
	switch p.format {
	case formatJSON:
		b, err = encodeJSON(m)
	case formatYAML:
		b, err = encodeYAML(m)
	default:
		tw := tabwriter.NewWriter(p.w, 0, 0, 3, ' ', 0)
		if err := table(tw); err != nil {
			return err
		}
		return tw.Flush()
	}
	if err != nil {
		return err
	}
	_, err = p.w.Write(b)
	return err
}

// separator is the line between two documents of a stream (watch frames,
// events) when the screen is not cleared: YAML's document marker, a
// "---" line between tables, nothing between JSON documents so the output
// stays a stream jq reads.
func (p printer) separator() string {
	if p.format == formatJSON {
		return ""
	}
	return "---\n"
}

// isTerminal reports whether w is a terminal (a character device), where a
// watch clears the screen between frames.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
