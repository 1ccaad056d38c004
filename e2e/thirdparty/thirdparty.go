// Package thirdparty runs MCP software that Hangar did not write, installed
// from the npm registry by install.sh next to this file: the official
// TypeScript SDK (a scripted client, mcp-client.mjs), the reference server
// @modelcontextprotocol/server-everything, the Inspector CLI and the official
// conformance suite, all on the Node 22 that install.sh puts in
// node_modules/.bin/node. End-to-end tests and cmd/hangar-conformance use it
// to check that what a newcomer's tools do through Hangar works as it does
// against the server directly.
//
// Every process is started with package proc and ended by PID.
package thirdparty

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// DirEnv overrides where the tooling is installed (the folder holding
// install.sh, package.json and node_modules).
const DirEnv = "HANGAR_THIRDPARTY_DIR"

const module = "module github.com/hangarmesh/hangar"

// Tooling is an installed copy of the third-party software.
type Tooling struct {
	Dir string // e2e/thirdparty of the repository
}

// Node is the Node 22 binary.
func (tl *Tooling) Node() string { return filepath.Join(tl.Dir, "node_modules", ".bin", "node") }

// Path returns the absolute path of rel inside the tooling folder.
func (tl *Tooling) Path(rel string) string { return filepath.Join(tl.Dir, rel) }

// compileCache is the environment entry that lets Node 22 keep compiled
// code between runs (the suite runs once per scenario in some modes).
func (tl *Tooling) compileCache() string {
	return "NODE_COMPILE_CACHE=" + filepath.Join(tl.Dir, "node_modules", ".cache", "node-compile")
}

// pkg returns the path of a file in an installed npm package.
func (tl *Tooling) pkg(rel string) string { return filepath.Join(tl.Dir, "node_modules", rel) }

var (
	findOnce sync.Once
	found    *Tooling
	findErr  error
)

// Find locates the installed tooling: $HANGAR_THIRDPARTY_DIR, or
// e2e/thirdparty of the repository around the working directory. It
// returns an error that says how to install it when it is missing.
func Find() (*Tooling, error) {
	findOnce.Do(func() { found, findErr = find() })
	return found, findErr
}

func find() (*Tooling, error) {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(root, "e2e", "thirdparty")
	}
	tl := &Tooling{Dir: dir}
	for _, f := range []string{tl.Node(), tl.pkg("@modelcontextprotocol/conformance/dist/index.js"),
		tl.pkg("@modelcontextprotocol/server-everything/dist/index.js"),
		tl.pkg("@modelcontextprotocol/inspector/clients/launcher/build/index.js"),
		tl.pkg("@modelcontextprotocol/sdk/package.json")} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("third-party MCP tooling is not installed (%s is missing): run %s (or 'make thirdparty'); it needs the npm registry",
				f, filepath.Join(dir, "install.sh"))
		}
	}
	return tl, nil
}

// repoRoot walks up from the working directory to Hangar's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte(module)) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find Hangar's go.mod above the working directory: set " + DirEnv + " to the e2e/thirdparty folder")
		}
		dir = parent
	}
}
