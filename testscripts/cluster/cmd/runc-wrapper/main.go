// Command runc-wrapper stands in for runc in the test cluster's containerd.
// The test machines lack CAP_SYS_RESOURCE, so runc fails when the kubelet
// asks for a negative oom_score_adj. The wrapper rewrites a negative
// process.oomScoreAdj in the bundle's config.json (and in an exec's
// --process file) to 0, then execs the real runc with the same arguments.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

const realRunc = "/usr/sbin/runc"

func main() {
	for _, f := range specFiles(os.Args[1:]) {
		if err := clamp(f); err != nil {
			fmt.Fprintf(os.Stderr, "runc-wrapper: %s: %v\n", f, err)
			os.Exit(1)
		}
	}
	argv := append([]string{realRunc}, os.Args[1:]...)
	if err := syscall.Exec(realRunc, argv, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "runc-wrapper: exec %s: %v\n", realRunc, err)
		os.Exit(1)
	}
}

// specFiles finds the OCI files named by runc's arguments: the bundle's
// config.json for create/run, the process file for exec.
func specFiles(args []string) []string {
	var files []string
	for i, a := range args {
		name, val, hasVal := strings.Cut(a, "=")
		if !hasVal && i+1 < len(args) {
			val = args[i+1]
		}
		switch name {
		case "--bundle", "-b":
			files = append(files, filepath.Join(val, "config.json"))
		case "--process", "-p":
			files = append(files, val)
		}
	}
	return files
}

func clamp(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep uids, sizes and such exactly as written
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return err
	}
	// config.json nests the process; an exec's process file is the process.
	proc := doc
	if p, ok := doc["process"].(map[string]any); ok {
		proc = p
	}
	n, ok := proc["oomScoreAdj"].(json.Number)
	if !ok {
		return nil
	}
	if v, err := n.Int64(); err != nil || v >= 0 {
		return nil
	}
	proc["oomScoreAdj"] = json.Number("0")
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, fi.Mode().Perm())
}
