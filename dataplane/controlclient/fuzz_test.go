package controlclient

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzDecodeState: any state-file content is either a snapshot that
// writes back to the same snapshot, or an error wrapping ErrCorruptState;
// never a panic.
func FuzzDecodeState(f *testing.F) {
	dir := f.TempDir()
	if err := saveState(dir, snapshot(7, "n").GetSnapshot()); err != nil {
		f.Fatal(err)
	}
	if s, err := readStateFile(dir + "/" + StateFile); err != nil || s.GetVersion() != 7 {
		f.Fatalf("seed: %v, %v", s, err)
	}
	good, err := encodeState(snapshot(7, "n").GetSnapshot())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(stateMagic + " sha256=00 size=0\n"))
	f.Add([]byte(stateMagic + " size=-1 sha256=\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeState(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("decodeState error %v does not wrap ErrCorruptState", err)
			}
			return
		}
		again, err := encodeState(s)
		if err != nil {
			t.Fatalf("encode a decoded snapshot: %v", err)
		}
		s2, err := decodeState(again)
		if err != nil || !proto.Equal(s, s2) {
			t.Fatalf("snapshot does not survive a write and read: %v", err)
		}
	})
}
