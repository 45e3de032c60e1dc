package layout

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pythonTarReader reads the archive named by argv[2] with Python's tarfile, as a file
// ("list", "extract") or a stream ("stream"), reading every member's data; it exits 1
// with the reader's error when the archive is refused.
const pythonTarReader = `
import io, sys, tarfile
mode, name, dest = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    if mode == "list":
        with tarfile.open(name, "r:") as tf:
            tf.getmembers()
    elif mode == "extract":
        with tarfile.open(name, "r:") as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(dest, filter="data")
            else:
                tf.extractall(dest)
    else:
        with open(name, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tf:
            for m in tf:
                x = tf.extractfile(m)
                if x is not None:
                    x.read()
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(1)
`

// externalReadersFail checks that GNU tar and Python's tarfile, the readers behind
// "pull -o - | tar -x" and many loaders, refuse the stream out, listing, extracting
// and streaming it. A reader that is not installed is skipped with a log line.
func externalReadersFail(t *testing.T, out []byte) {
	t.Helper()
	dir := t.TempDir()
	name := filepath.Join(dir, "stream.tar")
	if err := os.WriteFile(name, out, 0o644); err != nil {
		t.Fatal(err)
	}
	type reader struct {
		what  string
		cmd   []string
		stdin bool
	}
	var readers []reader
	if _, err := exec.LookPath("tar"); err == nil {
		readers = append(readers,
			reader{what: "tar -t", cmd: []string{"tar", "-tf", name}},
			reader{what: "tar -x", cmd: []string{"tar", "-xf", name, "-C", "DEST"}},
			reader{what: "tar -x from a pipe", cmd: []string{"tar", "-xf", "-", "-C", "DEST"}, stdin: true})
	} else {
		t.Log("tar is not installed: not checked")
	}
	if _, err := exec.LookPath("python3"); err == nil {
		for _, mode := range []string{"list", "extract", "stream"} {
			readers = append(readers, reader{what: "python tarfile " + mode, cmd: []string{"python3", "-c", pythonTarReader, mode, name, "DEST"}})
		}
	} else {
		t.Log("python3 is not installed: not checked")
	}
	for i, r := range readers {
		dest := filepath.Join(dir, "x", strings.Repeat("d", i+1))
		if err := os.MkdirAll(dest, 0o755); err != nil {
			t.Fatal(err)
		}
		args := append([]string(nil), r.cmd...)
		for j := range args {
			if args[j] == "DEST" {
				args[j] = dest
			}
		}
		cmd := exec.CommandContext(t.Context(), args[0], args[1:]...)
		if r.stdin {
			cmd.Stdin = bytes.NewReader(out)
		}
		msg, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%s read the failed stream without an error (%q)", r.what, msg)
		}
	}
}
