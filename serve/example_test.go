package serve_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/ocistream/ocistream/serve"
)

func ExampleNew() {
	// testdata/hello holds one image, tagged latest, served as repository hello
	// (the directory's name: its index.json gives only the tag).
	h, err := serve.New("../testdata/hello", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h) // or http.ListenAndServe(addr, h)
	defer srv.Close()

	for _, path := range []string{"/v2/_catalog", "/v2/hello/tags/list", "/v2/nope/tags/list"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s", resp.StatusCode, b)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v2/hello/manifests/latest", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%d %s", resp.StatusCode, b)
	// Output:
	// 200 {"repositories":["hello"]}
	// 200 {"name":"hello","tags":["latest"]}
	// 404 {"errors":[{"code":"NAME_UNKNOWN","message":"repository nope is not known"}]}
	// 405 {"errors":[{"code":"UNSUPPORTED","message":"this registry is read-only"}]}
}
