// Command docker-credential-fixture speaks the docker-credential-<name> protocol for
// tests. Installed as docker-credential-NAME, it answers "get" from NAME.json beside
// its executable, a JSON object keyed by server URL:
//
//	{"<server URL>": {"Username": "u", "Secret": "s"}}
//	{"<server URL>": {"Exit": 1, "Stdout": "message", "Stderr": "message"}}
//	{"<server URL>": {"Raw": "bytes printed as is, exit status 0"}}
//	{"<server URL>": {"SleepMillis": 10000}}
//
// A server URL without an entry gets "credentials not found in native keychain" and
// exit status 1, as the real programs answer. Every server URL asked is appended to
// NAME.log beside the executable.
//
// "store" (a JSON {"ServerURL", "Username", "Secret"} on stdin) and "erase" (a server
// URL on stdin) change NAME.json as the real programs change their store, and append
// "store:URL" or "erase:URL" to NAME.log.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type answer struct {
	Username    string
	Secret      string
	Exit        int
	Stdout      string
	Stderr      string
	Raw         *string
	SleepMillis int
}

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "get" && os.Args[1] != "store" && os.Args[1] != "erase") {
		fmt.Println("only get, store and erase are supported")
		os.Exit(1)
	}
	op := os.Args[1]
	exe, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	dir := filepath.Dir(exe)
	name := strings.TrimPrefix(strings.TrimSuffix(filepath.Base(exe), ".exe"), "docker-credential-")

	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	serverURL := strings.TrimSpace(string(in))
	var stored answer
	if op == "store" {
		var c struct{ ServerURL, Username, Secret string }
		if err := json.Unmarshal(in, &c); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		serverURL, stored = c.ServerURL, answer{Username: c.Username, Secret: c.Secret}
	}
	if serverURL == "" {
		fmt.Println("no credentials server URL")
		os.Exit(1)
	}
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err == nil {
		if op == "get" {
			fmt.Fprintln(logf, serverURL)
		} else {
			fmt.Fprintln(logf, op+":"+serverURL)
		}
		logf.Close()
	}

	answers := map[string]answer{}
	if data, err := os.ReadFile(filepath.Join(dir, name+".json")); err == nil {
		if err := json.Unmarshal(data, &answers); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	}
	if answers == nil {
		answers = map[string]answer{}
	}
	a, ok := answers[serverURL]
	if op != "get" {
		if op == "erase" && !ok {
			fmt.Println("credentials not found in native keychain")
			os.Exit(1)
		}
		delete(answers, serverURL)
		if op == "store" {
			answers[serverURL] = stored
		}
		data, _ := json.Marshal(answers)
		if err := os.WriteFile(filepath.Join(dir, name+".json"), data, 0o600); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		return
	}
	switch {
	case !ok:
		fmt.Println("credentials not found in native keychain")
		os.Exit(1)
	case a.SleepMillis > 0:
		time.Sleep(time.Duration(a.SleepMillis) * time.Millisecond)
	case a.Raw != nil:
		fmt.Print(*a.Raw)
	case a.Exit != 0:
		fmt.Print(a.Stdout)
		fmt.Fprint(os.Stderr, a.Stderr)
		os.Exit(a.Exit)
	default:
		json.NewEncoder(os.Stdout).Encode(map[string]string{"ServerURL": serverURL, "Username": a.Username, "Secret": a.Secret})
	}
}
