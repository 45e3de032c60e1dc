package ref_test

import (
	"errors"
	"fmt"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ref"
)

func ExampleParse() {
	for _, s := range []string{
		"ubuntu",
		"ghcr.io/owner/app:v1",
		"localhost:5000/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	} {
		r, err := ref.Parse(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("registry=%s repository=%s tag=%q digest=%q\n", r.Registry(), r.Repository(), r.Tag(), r.Digest())
		fmt.Printf("  %s (familiar %s)\n", r, r.Familiar())
	}

	_, err := ref.Parse("Ubuntu:22.04")
	fmt.Println(err)
	fmt.Println(errors.Is(err, errdef.ErrInvalidReference))
	// Output:
	// registry=registry-1.docker.io repository=library/ubuntu tag="latest" digest=""
	//   docker.io/library/ubuntu:latest (familiar ubuntu:latest)
	// registry=ghcr.io repository=owner/app tag="v1" digest=""
	//   ghcr.io/owner/app:v1 (familiar ghcr.io/owner/app:v1)
	// registry=localhost:5000 repository=a/b tag="" digest="sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	//   localhost:5000/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef (familiar localhost:5000/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef)
	// invalid reference "Ubuntu:22.04": repository name must be lowercase
	// true
}

func ExampleParse_tagAndDigest() {
	r, err := ref.Parse("busybox:1.36@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Tag())
	fmt.Println(r.Reference()) // the digest decides what is pulled
	fmt.Println(r)
	// Output:
	// 1.36
	// sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582
	// docker.io/library/busybox:1.36@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582
}

func ExampleParseRepository() {
	r, err := ref.ParseRepository("ubuntu")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("GET https://%s/v2/%s/tags/list\n", r.Registry(), r.Repository())

	_, err = ref.ParseRepository("ubuntu:22.04")
	fmt.Println(err)
	// Output:
	// GET https://registry-1.docker.io/v2/library/ubuntu/tags/list
	// invalid reference "ubuntu:22.04": a repository name has no tag
}

func ExampleReference_Reference() {
	r, err := ref.Parse("ghcr.io/owner/app:v1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("/v2/%s/manifests/%s\n", r.Repository(), r.Reference())
	pinned := r.WithDigest("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	fmt.Printf("/v2/%s/manifests/%s\n", pinned.Repository(), pinned.Reference())
	// Output:
	// /v2/owner/app/manifests/v1
	// /v2/owner/app/manifests/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
}

func ExampleReference_WithTag() {
	r, err := ref.Parse("docker.io/library/redis")
	if err != nil {
		fmt.Println(err)
		return
	}
	r7, err := r.WithTag("7.2")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r7.Familiar())
	_, err = r.WithTag("-bad")
	fmt.Println(err)
	// Output:
	// redis:7.2
	// invalid reference "docker.io/library/redis:-bad": invalid tag "-bad": letters, digits, '_', '.' and '-', not starting with '.' or '-'
}

func ExampleIsHub() {
	for _, host := range []string{"docker.io", "Registry-1.Docker.io", "index.docker.io", "ghcr.io", "docker.io:443"} {
		fmt.Println(host, ref.IsHub(host))
	}
	// Output:
	// docker.io true
	// Registry-1.Docker.io true
	// index.docker.io true
	// ghcr.io false
	// docker.io:443 false
}
