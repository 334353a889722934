package miniotest

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// validBucket is S3's bucket naming rule restricted to what bucketName emits.
var validBucket = regexp.MustCompile(`^[a-z0-9]([a-z0-9]|-[a-z0-9])*$`)

func TestBucketName(t *testing.T) {
	for _, name := range []string{
		"TestX",
		"TestConformance/PutIfMatch_after_Delete#01",
		"---",
		"",
		"Ünïcode/ÄÖÜ",
		strings.Repeat("TestVeryLongName/", 20),
	} {
		got := bucketName(name)
		if len(got) < 3 || len(got) > 63 || !validBucket.MatchString(got) {
			t.Errorf("bucketName(%q) = %q: not a valid S3 bucket name", name, got)
		}
		if !strings.HasPrefix(got, "t-") {
			t.Errorf("bucketName(%q) = %q: want prefix t-", name, got)
		}
	}
	if a, b := bucketName("TestX"), bucketName("TestX"); a == b {
		t.Errorf("bucketName returned %q twice", a)
	}
}

// TestBucket proves the harness against the real server: the bucket works
// and is gone, objects and all, once its test has ended.
func TestBucket(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var bucket string
	t.Run("use", func(t *testing.T) {
		raw := Bucket(t)
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("parse %q: %v", raw, err)
		}
		if u.Scheme != "s3" || u.Query().Get("endpoint") == "" || u.Query().Get("use_path_style") != "true" {
			t.Fatalf("store URL %q: want s3://BUCKET?endpoint=...&use_path_style=true...", raw)
		}
		bucket = u.Host
		c, err := Client()
		if err != nil {
			t.Fatal(err)
		}
		want := []byte("hello, sluice")
		if _, err := c.PutObject(ctx, bucket, "dir/hello.txt", bytes.NewReader(want), int64(len(want)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put: %v", err)
		}
		obj, err := c.GetObject(ctx, bucket, "dir/hello.txt", minio.GetObjectOptions{})
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		defer obj.Close()
		got, err := io.ReadAll(obj)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	if t.Failed() {
		return
	}
	if bucket == "" {
		t.Skip("MinIO not running")
	}
	c, err := Client()
	if err != nil {
		t.Fatal(err)
	}
	exists, err := c.BucketExists(ctx, bucket)
	if err != nil {
		t.Fatalf("bucket exists: %v", err)
	}
	if exists {
		t.Errorf("bucket %s still exists after its test ended", bucket)
	}
}
