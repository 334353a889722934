// Package miniotest gives tests a fresh bucket on the MinIO server that
// scripts/minio.sh starts, so the S3 backend is tested against a real server.
//
// scripts/minio.sh run -- CMD exports SLUICE_TEST_MINIO_ENDPOINT,
// SLUICE_TEST_MINIO_ACCESS_KEY and SLUICE_TEST_MINIO_SECRET_KEY for CMD. Without
// them tests that need MinIO skip, except under CI, where they fail: a CI run
// that silently skipped the S3 backend would prove nothing about it.
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables set by scripts/minio.sh run.
const (
	EnvEndpoint  = "SLUICE_TEST_MINIO_ENDPOINT"
	EnvAccessKey = "SLUICE_TEST_MINIO_ACCESS_KEY"
	EnvSecretKey = "SLUICE_TEST_MINIO_SECRET_KEY"
)

// Region is the region buckets are created in and store URLs name.
const Region = "us-east-1"

// cleanupTimeout bounds the best-effort removal of a test's bucket.
const cleanupTimeout = 30 * time.Second

// Available reports whether a MinIO server was announced in the environment.
func Available() bool {
	return os.Getenv(EnvEndpoint) != ""
}

// Client returns a client for the announced MinIO server.
func Client() (*minio.Client, error) {
	endpoint := os.Getenv(EnvEndpoint)
	if endpoint == "" {
		return nil, fmt.Errorf("miniotest: %s is not set (run tests via scripts/minio.sh run -- ...)", EnvEndpoint)
	}
	c, err := minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(os.Getenv(EnvAccessKey), os.Getenv(EnvSecretKey), ""),
		Secure: false,
		Region: Region,
	})
	if err != nil {
		return nil, fmt.Errorf("miniotest: client for %s: %w", endpoint, err)
	}
	return c, nil
}

// Bucket creates an empty bucket for t, removes it with all its objects when t
// ends, and returns its store URL for objectlog.Open. Without MinIO it skips t,
// or fails t under CI.
func Bucket(t testing.TB) string {
	t.Helper()
	if !Available() {
		if inCI() {
			t.Fatalf("MinIO is required under CI but %s is not set: run the tests with `make test` (or scripts/minio.sh run -- go test ./...)", EnvEndpoint)
		}
		t.Skip("MinIO not running: run `make test` (or scripts/minio.sh run -- go test ./...) to include the MinIO backend")
	}
	c, err := Client()
	if err != nil {
		t.Fatal(err)
	}
	bucket := bucketName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: Region}); err != nil {
		t.Fatalf("miniotest: create bucket %s: %v", bucket, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := removeBucket(ctx, c, bucket); err != nil {
			t.Logf("miniotest: remove bucket %s: %v", bucket, err)
		}
	})
	return fmt.Sprintf("s3://%s?endpoint=http://%s&use_path_style=true&region=%s&disable_https=true",
		bucket, os.Getenv(EnvEndpoint), Region)
}

// inCI reports whether the CI environment variable says we run under CI.
func inCI() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("CI"))) {
	case "", "false", "0":
		return false
	}
	return true
}

// removeBucket deletes every object version in bucket, then the bucket.
func removeBucket(ctx context.Context, c *minio.Client, bucket string) error {
	objects := c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true})
	var errs []error
	for rerr := range c.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("remove %s: %w", rerr.ObjectName, rerr.Err))
	}
	if err := c.RemoveBucket(ctx, bucket); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// maxNameChars bounds the part of a bucket name taken from the test name:
// "t-" + name + "-" + 16 hex digits stays within S3's 63 characters.
const maxNameChars = 40

// bucketName returns a new valid S3 bucket name that shows which test owns it:
// lowercase letters, digits and single hyphens, starting and ending with a
// letter or digit.
func bucketName(testName string) string {
	var b strings.Builder
	hyphen := true // no leading hyphen and no runs of hyphens
	for _, r := range strings.ToLower(testName) {
		if b.Len() == maxNameChars {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			hyphen = false
		case !hyphen:
			b.WriteByte('-')
			hyphen = true
		}
	}
	name := strings.TrimRight(b.String(), "-")
	var random [8]byte
	_, _ = rand.Read(random[:]) // crypto/rand.Read never fails
	if name == "" {
		return "t-" + hex.EncodeToString(random[:])
	}
	return "t-" + name + "-" + hex.EncodeToString(random[:])
}
