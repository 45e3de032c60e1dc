package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"

	"github.com/urfave/cli/v3"
)

// outputFormat is a parsed --format value: the command's own output (""), JSON
// ("json"), or a Go template run on each value printed.
type outputFormat struct {
	json bool
	tmpl *template.Template
}

// formatFlag is the --format flag of a command, stored in dest.
func formatFlag(dest *string) cli.Flag {
	return &cli.StringFlag{
		Name:        "format",
		Usage:       "print `json`, or each result through a Go TEMPLATE (see the examples)",
		Destination: dest,
	}
}

// templateFuncs are the functions a --format template may call, as in docker's
// and skopeo's templates: {{json .}}, {{join .Tags ","}}, {{upper .}}, {{lower .}}.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
}

// parseFormat parses a --format value. A template that does not parse is a usage
// error, on one line.
func parseFormat(s string) (outputFormat, error) {
	switch strings.TrimSpace(s) {
	case "":
		return outputFormat{}, nil
	case "json":
		return outputFormat{json: true}, nil
	}
	t, err := template.New("format").Funcs(templateFuncs).Option("missingkey=error").Parse(s)
	if err != nil {
		return outputFormat{}, usagef("--format: %s", templateError(err))
	}
	return outputFormat{tmpl: t}, nil
}

// custom reports whether f asks for something other than the command's own output.
func (f outputFormat) custom() bool { return f.json || f.tmpl != nil }

// templateError is an error of text/template on one line, in words: "unclosed
// action (line 1)", "<.Nope>: can't evaluate field Nope in type ... (line 1,
// column 2)".
func templateError(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	rest, ok := strings.CutPrefix(msg, "template: format:")
	if !ok {
		return msg
	}
	pos, rest, ok := strings.Cut(rest, ": ")
	if !ok {
		return msg
	}
	rest = strings.TrimPrefix(rest, `executing "format" at `)
	line, col, hasCol := strings.Cut(pos, ":")
	if hasCol {
		return fmt.Sprintf("%s (line %s, column %s)", rest, line, col)
	}
	return fmt.Sprintf("%s (line %s)", rest, line)
}

// write prints v as f asks on w: JSON on one line, or the template's output with a
// newline added unless it ends with one. A template that fails on v (a field v
// lacks) is a usage error.
func (f outputFormat) write(w io.Writer, v any) error {
	var b bytes.Buffer
	if f.tmpl != nil {
		if err := f.tmpl.Execute(&b, v); err != nil {
			var ee template.ExecError
			if errors.As(err, &ee) {
				return usagef("--format: %s", templateError(err))
			}
			return err
		}
	} else {
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// listWriter prints a list as it arrives: one JSON array with "json", the template
// run on each item, else each item's text on a line.
type listWriter struct {
	f outputFormat
	w *bufio.Writer
	n int
}

func newListWriter(w io.Writer, f outputFormat) *listWriter {
	return &listWriter{f: f, w: bufio.NewWriter(w)}
}

// item prints one item: text in the default output, v for JSON and templates.
func (l *listWriter) item(text string, v any) error {
	defer func() { l.n++ }()
	switch {
	case l.f.json:
		sep := ","
		if l.n == 0 {
			sep = "["
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		l.w.WriteString(sep)
		_, err = l.w.Write(b)
		return err
	case l.f.tmpl != nil:
		return l.f.write(l.w, v)
	}
	_, err := fmt.Fprintln(l.w, text)
	return err
}

// close ends the list (the JSON array's closing bracket, "[]" when empty) and flushes.
func (l *listWriter) close() error {
	if l.f.json {
		if l.n == 0 {
			l.w.WriteString("[")
		}
		l.w.WriteString("]\n")
	}
	return l.w.Flush()
}

// abort flushes what was printed, without closing a JSON array: a list cut short by
// an error is not valid JSON, so no script takes it for a whole one.
func (l *listWriter) abort() error { return l.w.Flush() }
