package controlclient

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// StateFile is the name of the last accepted snapshot in the state directory.
// Its content is one header line, then the marshalled hangar.v1.Snapshot:
//
//	hangar-state 1 sha256=<hex SHA-256 of the payload> size=<payload bytes>\n
//	<payload>
const StateFile = "snapshot.state"

const (
	stateMagic     = "hangar-state 1"
	maxHeaderBytes = 256
)

// ErrCorruptState marks a state file that is truncated, altered or not a
// state file; errors from LoadState wrap it. Deleting the file makes the
// agent start without saved state (it then waits for a replica).
var ErrCorruptState = errors.New("controlclient: corrupt state file")

// LoadState reads the last accepted snapshot from dir. It returns nil, nil
// when dir is "" or holds no state file, and an error wrapping
// ErrCorruptState that names the file and the fault when the file is
// truncated or its checksum does not match.
func LoadState(dir string) (*hangarv1.Snapshot, error) {
	if dir == "" {
		return nil, nil
	}
	path := filepath.Join(dir, StateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	payload, err := parseState(data)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w (delete it to start without saved state)", path, err)
	}
	s := &hangarv1.Snapshot{}
	if err := proto.Unmarshal(payload, s); err != nil {
		return nil, fmt.Errorf("state file %s: decode snapshot: %w: %w", path, ErrCorruptState, err)
	}
	return s, nil
}

// parseState checks the header of a state file and returns its payload.
func parseState(data []byte) ([]byte, error) {
	nl := bytes.IndexByte(data[:min(len(data), maxHeaderBytes)], '\n')
	if nl < 0 {
		magic := []byte(stateMagic)
		if len(data) < maxHeaderBytes && (bytes.HasPrefix(data, magic) || bytes.HasPrefix(magic, data)) {
			return nil, fmt.Errorf("%w: truncated inside the header (%d bytes)", ErrCorruptState, len(data))
		}
		return nil, fmt.Errorf("%w: no %q header", ErrCorruptState, stateMagic)
	}
	header, payload := string(data[:nl]), data[nl+1:]
	rest, ok := strings.CutPrefix(header, stateMagic+" ")
	if !ok {
		return nil, fmt.Errorf("%w: header %q does not start with %q", ErrCorruptState, header, stateMagic)
	}
	var sum string
	size := -1
	for _, f := range strings.Fields(rest) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "sha256":
			sum = v
		case "size":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%w: bad size %q in header", ErrCorruptState, v)
			}
			size = n
		}
	}
	if sum == "" || size < 0 {
		return nil, fmt.Errorf("%w: header %q lacks sha256= or size=", ErrCorruptState, header)
	}
	if len(payload) < size {
		return nil, fmt.Errorf("%w: truncated: header says %d bytes of snapshot, file has %d", ErrCorruptState, size, len(payload))
	}
	if len(payload) > size {
		return nil, fmt.Errorf("%w: %d bytes after the %d-byte snapshot", ErrCorruptState, len(payload)-size, size)
	}
	got := sha256.Sum256(payload)
	if hex.EncodeToString(got[:]) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch: header says sha256 %s, content has %x", ErrCorruptState, sum, got)
	}
	return payload, nil
}

// saveState writes s to dir atomically: a temporary file in dir, fsynced,
// renamed over StateFile, then the directory fsynced. A reader sees the old
// file or the new one, never a mix.
func saveState(dir string, s *hangarv1.Snapshot) error {
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		return fmt.Errorf("marshal snapshot: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	sum := sha256.Sum256(payload)
	header := fmt.Sprintf("%s sha256=%x size=%d\n", stateMagic, sum, len(payload))

	tmp, err := os.CreateTemp(dir, "."+StateFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("create state file: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = tmp.Write(append([]byte(header), payload...))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write state file %s: %w", tmp.Name(), err)
	}
	path := filepath.Join(dir, StateFile)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename state file: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open state dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync state dir %s: %w", dir, err)
	}
	return nil
}
