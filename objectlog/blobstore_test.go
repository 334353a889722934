package objectlog

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/memblob"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicehq/sluice/internal/miniotest"
)

// s3Error builds the error chain the AWS SDK returns for a failed S3 call.
func s3Error(op string, status int, code string) error {
	var inner error = &smithy.GenericAPIError{Code: code, Message: "synthetic"}
	if code == "" {
		inner = errors.New("synthetic response without an error code")
	}
	return &smithy.OperationError{ServiceID: "S3", OperationName: op, Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      inner,
		},
		RequestID: "req",
	}}
}

func TestBlobErrorMapping(t *testing.T) {
	ctx := t.Context()
	// Real gocloud errors (codes set by gocloud itself), from its memory driver.
	mb, err := blob.OpenBucket(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	_, gcNotFound := mb.ReadAll(ctx, "missing")
	if err := mb.WriteAll(ctx, "k", []byte("x"), &blob.WriterOptions{IfNotExist: true}); err != nil {
		t.Fatal(err)
	}
	gcPrecondition := mb.WriteAll(ctx, "k", []byte("y"), &blob.WriterOptions{IfNotExist: true})

	already := fmt.Errorf("%w: decided earlier", ErrConflict)
	kinds := []error{ErrNotFound, ErrPreconditionFailed, ErrConflict, ErrTransient}
	cases := []struct {
		name string
		err  error
		want error // nil: none of the typed errors
	}{
		{"gocloud NotFound", gcNotFound, ErrNotFound},
		{"gocloud FailedPrecondition", gcPrecondition, ErrPreconditionFailed},

		{"S3 412 PreconditionFailed", s3Error("PutObject", 412, "PreconditionFailed"), ErrPreconditionFailed},
		{"S3 409 ConditionalRequestConflict", s3Error("PutObject", 409, "ConditionalRequestConflict"), ErrConflict},
		{"S3 409 OperationAborted", s3Error("PutObject", 409, "OperationAborted"), ErrConflict},
		{"S3 409 without a code", s3Error("PutObject", 409, ""), ErrConflict},
		{"bare ConditionalRequestConflict", &smithy.GenericAPIError{Code: "ConditionalRequestConflict"}, ErrConflict},
		{"S3 404 NoSuchKey", s3Error("GetObject", 404, "NoSuchKey"), ErrNotFound},
		{"S3 HEAD 404 without a body", s3Error("HeadObject", 404, ""), ErrNotFound},
		{"S3 503 SlowDown", s3Error("PutObject", 503, "SlowDown"), ErrTransient},
		{"bare SlowDown", &smithy.GenericAPIError{Code: "SlowDown"}, ErrTransient},
		{"S3 500 InternalError", s3Error("PutObject", 500, "InternalError"), ErrTransient},
		{"S3 400 RequestTimeout", s3Error("PutObject", 400, "RequestTimeout"), ErrTransient},
		{"S3 503 ServiceUnavailable", s3Error("GetObject", 503, "ServiceUnavailable"), ErrTransient},
		{"S3 502 without a code", s3Error("GetObject", 502, ""), ErrTransient},
		{"MinIO 503 not initialized", s3Error("GetObject", 503, "XMinioServerNotInitialized"), ErrTransient},
		{"S3 403 AccessDenied", s3Error("GetObject", 403, "AccessDenied"), nil},
		{"S3 404 NoSuchBucket is not a missing object", s3Error("GetObject", 404, "NoSuchBucket"), nil},
		{"S3 400 InvalidObjectName", s3Error("PutObject", 400, "XMinioInvalidObjectName"), nil},

		{"GCS 412", &googleapi.Error{Code: 412}, ErrPreconditionFailed},
		{"GCS 429", &googleapi.Error{Code: 429}, ErrTransient},
		{"GCS 503", &googleapi.Error{Code: 503}, ErrTransient},
		{"GCS gRPC Unavailable", status.Error(codes.Unavailable, "synthetic"), ErrTransient},
		{"Azure ConditionNotMet", &azcore.ResponseError{ErrorCode: "ConditionNotMet", StatusCode: 412}, ErrPreconditionFailed},
		{"Azure ServerBusy", &azcore.ResponseError{ErrorCode: "ServerBusy", StatusCode: 503}, ErrTransient},
		{"Azure BlobNotFound", &azcore.ResponseError{ErrorCode: "BlobNotFound", StatusCode: 404}, ErrNotFound},
		{"Azure ContainerNotFound", &azcore.ResponseError{ErrorCode: "ContainerNotFound", StatusCode: 404}, nil},

		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, ErrTransient},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), ErrTransient},
		{"body cut short", fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), ErrTransient},
		{"request deadline", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: context.DeadlineExceeded}, ErrTransient},
		{"caller cancelled", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: context.Canceled}, nil},
		{"already typed", already, ErrConflict},
		{"something else", errors.New("synthetic"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := blobError(c.err)
			for _, k := range kinds {
				if is, want := errors.Is(got, k), k == c.want; is != want {
					t.Errorf("blobError(%v): errors.Is(%v) = %v, want %v", c.err, k, is, want)
				}
			}
			if !errors.Is(got, c.err) {
				t.Errorf("blobError(%v) = %v lost the original error", c.err, got)
			}
			var ae smithy.APIError
			if errors.As(c.err, &ae) && (!errors.As(got, &ae) || ae.ErrorCode() == "") {
				t.Errorf("blobError(%v): the S3 error code is no longer reachable with errors.As", c.err)
			}
		})
	}
	if blobError(nil) != nil {
		t.Errorf("blobError(nil) != nil")
	}
	if got := blobError(already); got != already {
		t.Errorf("an already typed error was wrapped again: %v", got)
	}
}

func TestEtagVersion(t *testing.T) {
	for in, want := range map[string]Version{
		`"9e107d9d372bb6826bd81d3542a419d6"`:   "9e107d9d372bb6826bd81d3542a419d6",
		`9e107d9d372bb6826bd81d3542a419d6`:     "9e107d9d372bb6826bd81d3542a419d6",
		`"3858f62230ac3c915f300c664312c11f-2"`: "3858f62230ac3c915f300c664312c11f-2",
		`W/"abc"`:                              "abc",
		`"0x8DC1234567890AB"`:                  "0x8DC1234567890AB",
	} {
		if got := etagVersion(in); got != want {
			t.Errorf("etagVersion(%s) = %s, want %s", in, got, want)
		}
	}
	if got := quoteETag("abc"); got != `"abc"` {
		t.Errorf("quoteETag(abc) = %s", got)
	}
}

// openMinIODriver opens the blob driver on a fresh MinIO bucket, with extra
// query parameters, and returns it with the bucket's name.
func openMinIODriver(t *testing.T, rawURL, extraQuery string) *blobDriver {
	t.Helper()
	u, err := url.Parse(rawURL + extraQuery)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newBlobDriver(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d.(*blobDriver)
}

func md5hex(data []byte) string {
	sum := md5.Sum(data)
	return hex.EncodeToString(sum[:])
}

// TestBlobS3Versions pins what the S3 driver relies on, against MinIO: the
// ETag format, how versions are normalised, that If-Match goes out quoted,
// and that large objects still go in one PutObject.
func TestBlobS3Versions(t *testing.T) {
	rawURL := miniotest.Bucket(t)
	ctx := t.Context()
	d := openMinIODriver(t, rawURL, "")
	u, _ := url.Parse(rawURL)
	bucket := u.Host

	data := []byte("segment bytes")
	v, err := d.Put(ctx, "v/k", data, Condition{IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	// MinIO's ETag for a plain single-part PUT is the hex MD5 of the body,
	// quoted in the header; our version is the unquoted form.
	head, err := d.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("v/k")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(head.ETag); got != `"`+md5hex(data)+`"` {
		t.Errorf("raw ETag header = %s, want the quoted MD5 %q", got, md5hex(data))
	}
	if string(v) != md5hex(data) {
		t.Errorf("Put version = %q, want the unquoted ETag %q", v, md5hex(data))
	}
	if _, info, err := d.Get(ctx, "v/k"); err != nil || info.Version != v {
		t.Errorf("Get version = %q, %v; want %q", info.Version, err, v)
	}

	// If-Match is sent quoted, the form S3 specifies. (MinIO strips quotes
	// and so also accepts the bare ETag; see the driver's quoted-version
	// check for the consequence.)
	for _, ifMatch := range []string{`"` + string(v) + `"`, string(v)} {
		_, err := d.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String("v/k"), Body: bytes.NewReader(data), IfMatch: aws.String(ifMatch),
		})
		t.Logf("raw PutObject with If-Match %s: err = %v", ifMatch, err)
	}
	v2, err := d.Put(ctx, "v/k", []byte("next"), Condition{IfMatch: v})
	if err != nil {
		t.Fatalf("Put IfMatch current: %v", err)
	}
	if _, err := d.Put(ctx, "v/k", []byte("stale"), Condition{IfMatch: v}); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("Put IfMatch stale: %v, want ErrPreconditionFailed", err)
	}

	// The HEAD-and-compare fallback agrees with the write's own ETag, and
	// refuses a version it cannot tie to our bytes.
	if got := d.putVersionByStat(ctx, "v/k", md5Sum([]byte("next"))); got != v2 {
		t.Errorf("putVersionByStat = %q, want %q", got, v2)
	}
	if got := d.putVersionByStat(ctx, "v/k", md5Sum([]byte("other bytes"))); got != unverifiedVersion {
		t.Errorf("putVersionByStat with other bytes = %q, want %q", got, unverifiedVersion)
	}
	if _, err := d.Put(ctx, "v/k", []byte("x"), Condition{IfMatch: unverifiedVersion}); !errors.Is(err, ErrPreconditionFailed) {
		t.Errorf("Put IfMatch unverifiedVersion: %v, want ErrPreconditionFailed", err)
	}

	// 17 MiB, past the transfer manager's 16 MiB multipart threshold: still
	// one PutObject (a multipart ETag is md5-of-part-md5s "-" part count).
	big := bytes.Repeat([]byte("0123456789abcdef"), 17<<20/16)
	vb, err := d.Put(ctx, "v/big", big, Condition{IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(vb), "-") || string(vb) != md5hex(big) {
		t.Errorf("17 MiB object has version %q, want the single-part MD5 %q", vb, md5hex(big))
	}
	if _, info, err := d.Get(ctx, "v/big"); err != nil || info.Version != vb || info.Size != int64(len(big)) {
		t.Errorf("Get of the 17 MiB object: %+v, %v", info, err)
	}
}

func md5Sum(data []byte) []byte {
	sum := md5.Sum(data)
	return sum[:]
}

// TestBlobPrefix: the prefix URL parameter roots every key under it.
func TestBlobPrefix(t *testing.T) {
	rawURL := miniotest.Bucket(t)
	ctx := t.Context()
	root := openMinIODriver(t, rawURL, "")
	pre := openMinIODriver(t, rawURL, "&prefix=/tenant-a/sluice/")
	if _, err := root.Put(ctx, "outside", []byte("o"), Condition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pre.Put(ctx, "config/topics/t.json", []byte("{}"), Condition{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	if data, _, err := root.Get(ctx, "tenant-a/sluice/config/topics/t.json"); err != nil || string(data) != "{}" {
		t.Errorf("object written under the prefix, read from the root: %q, %v", data, err)
	}
	page, err := pre.List(ctx, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 1 || page.Objects[0].Key != "config/topics/t.json" {
		t.Errorf("List under the prefix = %+v, want only config/topics/t.json", page.Objects)
	}
	if _, _, err := pre.Get(ctx, "outside"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a key outside the prefix: %v, want ErrNotFound", err)
	}
	if _, err := Open(ctx, rawURL+"&prefix=a/../b"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Open with prefix a/../b: %v, want ErrInvalidKey", err)
	}
}

// TestBlobMissingBucket: a mistyped bucket is an error of its own, not a
// missing object that a create-if-absent loop would retry forever.
func TestBlobMissingBucket(t *testing.T) {
	rawURL := miniotest.Bucket(t)
	u, _ := url.Parse(rawURL)
	u.Host += "-does-not-exist"
	s, err := Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, _, err = s.Get(t.Context(), "k")
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrTransient) || !strings.Contains(err.Error(), "bucket") {
		t.Errorf("Get from a missing bucket: %v; want a non-typed error naming the bucket", err)
	}
}
