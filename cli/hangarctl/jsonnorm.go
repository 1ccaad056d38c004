package hangarctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// normalize rewrites protojson's rendering of a message the way kubectl
// and istioctl print: enum values as lower-case words without the type's
// prefix (BREAKER_STATE_HALF_OPEN → half_open) and 64-bit integers as JSON
// numbers instead of strings. Field order is kept.
func normalize(raw []byte, md protoreflect.MessageDescriptor) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := readValue(dec)
	if err != nil {
		return nil, fmt.Errorf("normalize JSON: %w", err)
	}
	var out bytes.Buffer
	writeValue(&out, fixMessage(v, md))
	return out.Bytes(), nil
}

// object is a JSON object with its keys in order.
type object struct {
	keys []string
	vals map[string]any
}

func readValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &object{vals: map[string]any{}}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := readValue(dec)
				if err != nil {
					return nil, err
				}
				o.keys = append(o.keys, k.(string))
				o.vals[k.(string)] = v
			}
			_, err := dec.Token()
			return o, err
		case '[':
			var a []any
			for dec.More() {
				v, err := readValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	}
	return tok, nil
}

func writeValue(w io.Writer, v any) {
	switch x := v.(type) {
	case *object:
		io.WriteString(w, "{")
		for i, k := range x.keys {
			if i > 0 {
				io.WriteString(w, ",")
			}
			b, _ := json.Marshal(k)
			w.Write(b)
			io.WriteString(w, ":")
			writeValue(w, x.vals[k])
		}
		io.WriteString(w, "}")
	case []any:
		io.WriteString(w, "[")
		for i, e := range x {
			if i > 0 {
				io.WriteString(w, ",")
			}
			writeValue(w, e)
		}
		io.WriteString(w, "]")
	default:
		b, _ := json.Marshal(x)
		w.Write(b)
	}
}

func fixMessage(v any, md protoreflect.MessageDescriptor) any {
	o, ok := v.(*object)
	if !ok || strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return v // well-known types have their own JSON forms
	}
	for _, k := range o.keys {
		fd := md.Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			fd = md.Fields().ByJSONName(k)
		}
		if fd == nil {
			continue
		}
		o.vals[k] = fixField(o.vals[k], fd)
	}
	return o
}

func fixField(v any, fd protoreflect.FieldDescriptor) any {
	switch {
	case fd.IsList():
		if a, ok := v.([]any); ok {
			for i := range a {
				a[i] = fixScalar(a[i], fd)
			}
		}
		return v
	case fd.IsMap():
		if o, ok := v.(*object); ok {
			for _, k := range o.keys {
				o.vals[k] = fixScalar(o.vals[k], fd.MapValue())
			}
		}
		return v
	}
	return fixScalar(v, fd)
}

func fixScalar(v any, fd protoreflect.FieldDescriptor) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return fixMessage(v, fd.Message())
	case protoreflect.EnumKind:
		if s, ok := v.(string); ok {
			return enumWord(s, fd.Enum())
		}
	case protoreflect.Int64Kind, protoreflect.Uint64Kind, protoreflect.Sint64Kind,
		protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		if s, ok := v.(string); ok {
			return json.Number(s)
		}
	}
	return v
}

// enumWord turns BREAKER_STATE_HALF_OPEN of enum BreakerState into
// half_open.
func enumWord(s string, ed protoreflect.EnumDescriptor) string {
	prefix := upperSnake(string(ed.Name())) + "_"
	return strings.ToLower(strings.TrimPrefix(s, prefix))
}

func upperSnake(camel string) string {
	var b strings.Builder
	for i, r := range camel {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}
