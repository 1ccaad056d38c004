package controlclient

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// StateFile is the name of the last accepted snapshot in the state directory,
// PrevStateFile of the one accepted before it. Their content is one header
// line, then the marshalled hangar.v1.Snapshot:
//
//	hangar-state 1 sha256=<hex SHA-256 of the payload> size=<payload bytes>\n
//	<payload>
const (
	StateFile     = "snapshot.state"
	PrevStateFile = "snapshot.state.prev"
)

const (
	stateMagic     = "hangar-state 1"
	maxHeaderBytes = 256
	// maxStateBytes bounds a state file (a snapshot carries at most the
	// fleet configuration, itself bounded by its 4 MiB file limit).
	maxStateBytes = 64 << 20
)

// ErrCorruptState marks a state file that is truncated, altered or not a
// state file; errors from LoadState wrap it. Deleting the file makes the
// agent start without saved state (it then waits for a replica).
var ErrCorruptState = errors.New("controlclient: corrupt state file")

// LoadState returns the usable snapshots kept in dir, newest first: the
// last accepted one and the one before it. A file that is unreadable,
// truncated or altered is skipped with a warning on log, so a damaged last
// snapshot falls back to the previous one. It returns nil, nil when dir is
// "" or holds no state file, and, when files exist but none is usable, an
// error wrapping ErrCorruptState that names each file and its fault.
func LoadState(dir string, log *slog.Logger) ([]*hangarv1.Snapshot, error) {
	if dir == "" {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var out []*hangarv1.Snapshot
	var errs []error
	for _, name := range []string{StateFile, PrevStateFile} {
		path := filepath.Join(dir, name)
		s, err := readStateFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			log.Warn("state_file_unusable", "path", path, "error", err.Error())
			errs = append(errs, err)
		default:
			out = append(out, s)
		}
	}
	if len(out) == 1 && len(errs) == 1 {
		log.Warn("state_fallback", "path", filepath.Join(dir, PrevStateFile), "version", out[0].GetVersion(),
			"reason", "the last saved snapshot is unusable: using the one before it")
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, fmt.Errorf("no usable snapshot in %s: %w (delete the files to start without saved state)", dir, errors.Join(errs...))
	}
	return out, nil
}

// readStateFile reads and checks one state file.
func readStateFile(path string) (*hangarv1.Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read state file %s: %w", path, err)
	}
	if len(data) > maxStateBytes {
		return nil, fmt.Errorf("state file %s: %w: larger than %d bytes", path, ErrCorruptState, maxStateBytes)
	}
	s, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return s, nil
}

// decodeState checks a state file's content and decodes its snapshot.
func decodeState(data []byte) (*hangarv1.Snapshot, error) {
	payload, err := parseState(data)
	if err != nil {
		return nil, err
	}
	s := &hangarv1.Snapshot{}
	if err := proto.Unmarshal(payload, s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w: %w", ErrCorruptState, err)
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
// renamed over StateFile (the good StateFile before it renamed to
// PrevStateFile), then the directory fsynced. A reader sees the old files
// or the new ones, never a mix; a crash between the renames leaves the
// previous snapshot.
func saveState(dir string, s *hangarv1.Snapshot) error {
	content, err := encodeState(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}

	tmp, err := os.CreateTemp(dir, "."+StateFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("create state file: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = tmp.Write(content)
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
	// The last snapshot becomes the previous one, if it is good: a damaged
	// file never pushes out the good one before it.
	if cur, err := readStateFile(path); err == nil && cur.GetVersion() != s.GetVersion() {
		if err := os.Rename(path, filepath.Join(dir, PrevStateFile)); err != nil {
			return fmt.Errorf("keep the previous state file: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename state file: %w", err)
	}
	return syncDir(dir)
}

// encodeState returns the content of a state file holding s.
func encodeState(s *hangarv1.Snapshot) ([]byte, error) {
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("marshal snapshot: %w", err)
	}
	sum := sha256.Sum256(payload)
	header := fmt.Sprintf("%s sha256=%x size=%d\n", stateMagic, sum, len(payload))
	return append([]byte(header), payload...), nil
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
