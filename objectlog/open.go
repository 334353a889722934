package objectlog

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Open opens a store from a URL:
//
//	mem://                                    process memory (tests, demos)
//	file:///var/lib/sluice  or a plain path   a local directory, safe across processes
//	s3://bucket?endpoint=http://127.0.0.1:9000&use_path_style=true&region=us-east-1&disable_https=true
//	gs://bucket                               Google Cloud Storage
//	azblob://container                        Azure Blob Storage
//
// An optional "prefix" query parameter on s3/gs/azblob URLs roots the store
// under that key prefix.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	d, redacted, err := openDriver(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	s := NewStore(d, DefaultRetryPolicy)
	s.url = redacted
	return s, nil
}

func openDriver(ctx context.Context, rawURL string) (Driver, string, error) {
	if rawURL == "" {
		return nil, "", fmt.Errorf("open store: empty URL (use file:///path, mem://, s3://bucket?..., gs://bucket or azblob://container)")
	}
	if !strings.Contains(rawURL, "://") {
		// A plain path means a local directory.
		abs, err := filepath.Abs(rawURL)
		if err != nil {
			return nil, "", fmt.Errorf("open store %q: %w", rawURL, err)
		}
		d, err := NewFileDriver(abs)
		return d, "file://" + abs, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("open store: parse URL: %w", err)
	}
	redacted := u.Redacted()
	switch u.Scheme {
	case "mem":
		return NewMemDriver(), redacted, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, "", fmt.Errorf("open store %q: file URLs need an absolute path (file:///path), not host %q", redacted, u.Host)
		}
		if u.Path == "" {
			return nil, "", fmt.Errorf("open store %q: file URL has no path (use file:///absolute/path)", redacted)
		}
		d, err := NewFileDriver(u.Path)
		return d, redacted, err
	case "s3", "gs", "azblob":
		d, err := newBlobDriver(ctx, u)
		return d, redacted, err
	default:
		return nil, "", fmt.Errorf("open store %q: unknown scheme %q (use file, mem, s3, gs or azblob)", redacted, u.Scheme)
	}
}
