package hosts_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ocistream/ocistream/hosts"
)

// A fleet sends Docker Hub pulls to Spegel on each node, then to a Harbor proxy cache,
// and only then to Docker Hub itself: one hosts.toml under /etc/containerd/certs.d
// (here a temporary directory). ocistream.WithHosts(cfg) makes a client follow it.
func Example() {
	root, err := os.MkdirTemp("", "certs.d")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	if err := os.Mkdir(filepath.Join(root, "docker.io"), 0o755); err != nil {
		log.Fatal(err)
	}
	const file = `server = "https://registry-1.docker.io"

[host."http://127.0.0.1:30020"]
  capabilities = ["pull", "resolve"]
  dial_timeout = "200ms"

[host."https://harbor.example.com/v2/dockerhub-proxy"]
  capabilities = ["pull"]
  override_path = true
`
	if err := os.WriteFile(filepath.Join(root, "docker.io", "hosts.toml"), []byte(file), 0o644); err != nil {
		log.Fatal(err)
	}

	cfg, err := hosts.New(root)
	if err != nil {
		log.Fatal(err)
	}
	eps, err := cfg.Endpoints("docker.io")
	if err != nil {
		log.Fatal(err)
	}
	for _, ep := range eps {
		fmt.Println(ep.URL, ep.Capabilities, ep.Mirror)
	}
	// Output:
	// http://127.0.0.1:30020/v2 pull,resolve true
	// https://harbor.example.com/v2/dockerhub-proxy pull true
	// https://registry-1.docker.io/v2 pull,resolve,push false
}
