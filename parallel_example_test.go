package ocistream_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ocitypes"
)

// memSource serves one blob from memory, with byte ranges.
type memSource struct{ data []byte }

func (m memSource) Resolve(context.Context) (ocitypes.Descriptor, error) {
	return ocitypes.Descriptor{}, ocistream.ErrUnsupported
}

func (m memSource) Fetch(context.Context, ocitypes.Descriptor) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m.data)), nil
}

func (m memSource) FetchRange(_ context.Context, _ ocitypes.Descriptor, off, n int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m.data[off : off+n])), nil
}

// A blob fetched in 1 MiB ranges over 4 connections into a layout directory, whose
// writer hashes the bytes in order and verifies them at Commit.
func ExampleFetchParallel() {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	desc := ocitypes.Descriptor{MediaType: ocitypes.MediaTypeOCILayerGzip, Digest: digest.FromBytes(data), Size: int64(len(data))}
	path, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(path)
	dir, err := layout.OpenDir(path, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dir.Close()
	w, err := dir.OpenBlob(context.Background(), desc)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	set := ocistream.ParallelDownload{Connections: 4, ChunkSize: 1 << 20, FastStream: -1}
	if err := ocistream.FetchParallel(context.Background(), memSource{data}, desc, w.(ocistream.BlobWriterAt), set, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(w.Commit())
	// Output: <nil>
}
