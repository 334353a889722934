package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printJSON writes raw, a JSON document as the server sent it, indented,
// as one document followed by a newline.
func printJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// listJSON returns the array of an ARM collection, {"value":[…]}.
func listJSON(a apiAnswer) ([]byte, error) {
	var l struct {
		Value json.RawMessage `json:"value"`
	}
	if err := a.decode(&l); err != nil {
		return nil, err
	}
	if l.Value == nil {
		return []byte("[]"), nil
	}
	return l.Value, nil
}

// newTable returns a tabwriter for columns separated by tabs; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes cells as one table row; an empty cell shows as "-".
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// field is one "key: value" line of a show.
type field struct {
	key, value string
}

// printFields writes fields as aligned "key: value" lines, skipping those
// with an empty value.
func printFields(w io.Writer, fields []field) error {
	tw := newTable(w)
	for _, f := range fields {
		if f.value != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", f.key, f.value)
		}
	}
	return tw.Flush()
}
