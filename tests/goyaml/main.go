// Reads YAML files with gopkg.in/yaml.v3, the parser tbot reads its config with,
// and prints one JSON line per file on stdout: {"document": ...} with what
// yaml.v3 decoded (so a test can compare every value), or {"error": "yaml: ..."}.
//
// Built by the tests (tests/go_yaml.py) against Debian's golang-gopkg-yaml.v3-dev,
// offline: GO111MODULE=off, GOPATH=/usr/share/gocode.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

type result struct {
	Document interface{} `json:"document,omitempty"`
	Error    string      `json:"error,omitempty"`
}

func main() {
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false)
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		var r result
		if err := yaml.Unmarshal(data, &r.Document); err != nil {
			r = result{Error: err.Error()}
		}
		if err := out.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "cannot show the document as JSON:", err)
			os.Exit(2)
		}
	}
}
