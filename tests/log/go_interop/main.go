// Checks timebank's public log with the reference implementation: golang.org/x/mod/sumdb/note opens
// the checkpoints with the log's verifier key, and golang.org/x/mod/sumdb/tlog checks the inclusion
// and consistency proofs. Reads one JSON document on stdin; prints one line per case; exits 1 when
// any case's outcome is not the one expected.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Leaf       string   `json:"leaf"`
	Index      int64    `json:"index"`
	Path       []string `json:"path"`
	Checkpoint string   `json:"checkpoint"`
	WantOK     bool     `json:"want_ok"`
}

type consistency struct {
	Old    string   `json:"old"`
	New    string   `json:"new"`
	Path   []string `json:"path"`
	WantOK bool     `json:"want_ok"`
}

type input struct {
	VerifierKey string        `json:"verifier_key"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
}

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

func open(text string, verifiers note.Verifiers) (checkpoint, error) {
	n, err := note.Open([]byte(text), verifiers)
	if err != nil {
		return checkpoint{}, err
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return checkpoint{}, errors.New("not a checkpoint")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return checkpoint{}, err
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return checkpoint{}, err
	}
	return checkpoint{lines[0], size, root}, nil
}

func hashes(encoded []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(encoded))
	for i, e := range encoded {
		h, err := tlog.ParseHash(e)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Println("input:", err)
		os.Exit(2)
	}
	verifier, err := note.NewVerifier(in.VerifierKey)
	if err != nil {
		fmt.Println("verifier key:", err)
		os.Exit(2)
	}
	verifiers := note.VerifierList(verifier)
	failed := false
	report := func(what string, err error, wantOK bool) {
		if (err == nil) != wantOK {
			failed = true
			fmt.Printf("UNEXPECTED %s: err=%v want_ok=%v\n", what, err, wantOK)
		} else {
			fmt.Printf("as expected %s: err=%v\n", what, err)
		}
	}
	for i, c := range in.Inclusion {
		what := fmt.Sprintf("inclusion %d", i)
		cp, err := open(c.Checkpoint, verifiers)
		if err == nil && cp.origin != verifier.Name() {
			err = errors.New("origin is not the key's name")
		}
		if err == nil {
			var leaf []byte
			var path []tlog.Hash
			if leaf, err = base64.StdEncoding.DecodeString(c.Leaf); err == nil {
				if path, err = hashes(c.Path); err == nil {
					err = tlog.CheckRecord(path, cp.size, cp.root, c.Index, tlog.RecordHash(leaf))
				}
			}
		}
		report(what, err, c.WantOK)
	}
	for i, c := range in.Consistency {
		what := fmt.Sprintf("consistency %d", i)
		old, err := open(c.Old, verifiers)
		var cur checkpoint
		if err == nil {
			cur, err = open(c.New, verifiers)
		}
		if err == nil {
			var path []tlog.Hash
			if path, err = hashes(c.Path); err == nil {
				err = tlog.CheckTree(path, cur.size, cur.root, old.size, old.root)
			}
		}
		report(what, err, c.WantOK)
	}
	if failed {
		os.Exit(1)
	}
}
