package objectlog

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	gcaws "gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	// The schemes newBlobDriver opens.
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
)

// blobDriver is the Driver for cloud object stores (S3 and S3-compatible
// stores such as MinIO, GCS, Azure Blob), on top of gocloud.dev/blob.
//
// gocloud gives a portable get/put/list/delete and create-if-absent
// (WriterOptions.IfNotExist), but neither a compare-and-swap nor the version
// of what a read returned or a write created. Both are reached here through
// gocloud's As escape hatches, per backend:
//
//	          version             version of a Get           compare-and-swap            version after a Put
//	S3        ETag, unquoted      GetObjectOutput.ETag       UploadObjectInput.IfMatch   PutObject response ETag (0 extra requests)
//	GCS       generation (dec.)   Reader.Attrs.Generation    ObjectHandle.If(Generation) Writer.Attrs().Generation (0 extra)
//	Azure     ETag, unquoted      DownloadStreamResponse     AccessConditions.IfMatch    HEAD after the write (1 extra, see putVersionByStat)
//
// Versions are normalised by trimming the quotes S3 and Azure put around
// ETags, and quoted again when sent in If-Match.
type blobDriver struct {
	b      *blob.Bucket
	kind   blobKind
	s3     *s3.Client // kind == blobS3 only
	closed atomic.Bool
}

type blobKind int

const (
	blobS3 blobKind = iota
	blobGCS
	blobAzure
)

var _ Driver = (*blobDriver)(nil)

// unverifiedVersion is returned for a write that succeeded but whose version
// could not be established (see putVersionByStat). It never matches a stored
// object, so a compare-and-swap based on it loses cleanly and the caller
// re-reads; it is never a version of somebody else's write.
const unverifiedVersion Version = "unverified-version"

// maxSinglePut is the largest object S3 accepts in one PutObject.
const maxSinglePut = 5 << 30

func newBlobDriver(ctx context.Context, u *url.URL) (Driver, error) {
	d := &blobDriver{}
	switch u.Scheme {
	case "s3":
		d.kind = blobS3
	case "gs":
		d.kind = blobGCS
	case "azblob":
		d.kind = blobAzure
	default:
		return nil, fmt.Errorf("open store: scheme %q is not an object store", u.Scheme)
	}
	// "prefix" is ours, not gocloud's: strip it before gocloud sees the URL,
	// which rejects parameters it does not know.
	u2 := *u
	q := u2.Query()
	prefix := strings.Trim(q.Get("prefix"), "/")
	q.Del("prefix")
	u2.RawQuery = q.Encode()
	if prefix != "" {
		if err := ValidateKey(prefix); err != nil {
			return nil, fmt.Errorf("open store %s: prefix: %w", u.Redacted(), err)
		}
		// Always a "directory": prefix=sluice roots keys at sluice/..., never sluice....
		prefix += "/"
	}
	var b *blob.Bucket
	var err error
	if d.kind == blobS3 {
		b, err = openS3(ctx, &u2)
	} else {
		b, err = blob.OpenBucket(ctx, u2.String())
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", u.Redacted(), err)
	}
	if d.kind == blobS3 && !b.As(&d.s3) {
		_ = b.Close()
		return nil, fmt.Errorf("open store %s: gocloud did not expose the S3 client", u.Redacted())
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, prefix)
	}
	d.b = b
	return d, nil
}

// openS3 opens an s3:// URL as gocloud's s3blob URL opener does (the same
// query parameters), but with the AWS SDK's own retries off: Store retries
// transient failures itself and counts every request it makes, so that the
// request counts (what S3 bills) are exact, and a retried conditional PUT is
// one the Store knows about.
func openS3(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	q := u.Query()
	var bopts s3blob.Options
	if v := q.Get("ssetype"); v != "" {
		q.Del("ssetype")
		bopts.EncryptionType = s3types.ServerSideEncryption(v)
	}
	if v := q.Get("kmskeyid"); v != "" {
		q.Del("kmskeyid")
		bopts.KMSEncryptionID = v
	}
	opts := []func(*s3.Options){func(o *s3.Options) { o.RetryMaxAttempts = 1 }}
	for _, p := range []struct {
		key string
		set func(o *s3.Options, v bool)
	}{
		{"accelerate", func(o *s3.Options, v bool) { o.UseAccelerate = v }},
		{"disable_https", func(o *s3.Options, v bool) { o.EndpointOptions.DisableHTTPS = v }},
		{"use_path_style", func(o *s3.Options, v bool) { o.UsePathStyle = v }},
		{"s3ForcePathStyle", func(o *s3.Options, v bool) { o.UsePathStyle = v }},
	} {
		raw := q.Get(p.key)
		if raw == "" {
			continue
		}
		q.Del(p.key)
		v, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, fmt.Errorf("invalid value %q for %s: want true or false", raw, p.key)
		}
		opts = append(opts, func(o *s3.Options) { p.set(o, v) })
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, err
	}
	bopts.RequestChecksumCalculation = cfg.RequestChecksumCalculation
	return s3blob.OpenBucket(ctx, s3.NewFromConfig(cfg, opts...), u.Host, &bopts)
}

// Get reads the object in one request and takes its version from that
// response, so the version names exactly the bytes returned.
func (d *blobDriver) Get(ctx context.Context, key string) ([]byte, ObjectInfo, error) {
	if err := d.checkOpen(); err != nil {
		return nil, ObjectInfo{}, err
	}
	r, err := d.b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, ObjectInfo{}, blobError(err)
	}
	v, ok := d.readerVersion(r)
	if !ok {
		// Not expected for s3/gs/azblob. The safe order is attributes first,
		// then the bytes: a version older than the bytes makes a later
		// compare-and-swap lose (safe); a newer one could overwrite a write the
		// caller never saw.
		_ = r.Close()
		return d.getAttrsThenRead(ctx, key)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, ObjectInfo{}, blobError(err)
	}
	return data, ObjectInfo{Key: key, Size: int64(len(data)), Version: v, ModTime: r.ModTime()}, nil
}

func (d *blobDriver) getAttrsThenRead(ctx context.Context, key string) ([]byte, ObjectInfo, error) {
	info, err := d.Stat(ctx, key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	data, err := d.b.ReadAll(ctx, key)
	if err != nil {
		return nil, ObjectInfo{}, blobError(err)
	}
	info.Size = int64(len(data))
	return data, info, nil
}

// readerVersion is the version of the object an open reader returns.
func (d *blobDriver) readerVersion(r *blob.Reader) (Version, bool) {
	switch d.kind {
	case blobS3:
		var out s3.GetObjectOutput
		if r.As(&out) && out.ETag != nil {
			return etagVersion(*out.ETag), true
		}
	case blobGCS:
		var gr *storage.Reader
		if r.As(&gr) && gr != nil && gr.Attrs.Generation != 0 {
			return Version(strconv.FormatInt(gr.Attrs.Generation, 10)), true
		}
	case blobAzure:
		var resp azblobblob.DownloadStreamResponse
		if r.As(&resp) && resp.ETag != nil {
			return etagVersion(string(*resp.ETag)), true
		}
	}
	return "", false
}

func (d *blobDriver) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if err := d.checkOpen(); err != nil {
		return nil, err
	}
	r, err := d.b.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		if isInvalidRange(err) {
			// The object exists (a missing one is a 404 first) but the range
			// starts at or past its end: the same empty read as every backend.
			return []byte{}, nil
		}
		return nil, blobError(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, blobError(err)
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

func (d *blobDriver) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := d.checkOpen(); err != nil {
		return ObjectInfo{}, err
	}
	a, err := d.b.Attributes(ctx, key)
	if err != nil {
		return ObjectInfo{}, blobError(err)
	}
	v, err := d.attrsVersion(a)
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Key: key, Size: a.Size, Version: v, ModTime: a.ModTime}, nil
}

func (d *blobDriver) attrsVersion(a *blob.Attributes) (Version, error) {
	if d.kind == blobGCS {
		var oa storage.ObjectAttrs
		if !a.As(&oa) || oa.Generation == 0 {
			return "", errors.New("gcs: attributes carry no generation")
		}
		return Version(strconv.FormatInt(oa.Generation, 10)), nil
	}
	if a.ETag == "" {
		return "", errors.New("object store returned no ETag")
	}
	return etagVersion(a.ETag), nil
}

func (d *blobDriver) Put(ctx context.Context, key string, data []byte, cond Condition) (Version, error) {
	if err := d.checkOpen(); err != nil {
		return "", err
	}
	sum := md5.Sum(data)
	var (
		s3out  s3PutOutput
		gcsW   *storage.Writer
		hookEr error
	)
	opts := &blob.WriterOptions{
		ContentType: "application/octet-stream",
		IfNotExist:  cond.IfAbsent,
	}
	if cond.IfMatch != "" && d.kind != blobGCS && strings.ContainsAny(string(cond.IfMatch), `"`) {
		// Our ETag versions never contain quotes, so this matches nothing;
		// sent as If-Match, S3 and MinIO would strip the quotes and match.
		return "", fmt.Errorf("%w: version %q was not returned by this store", ErrPreconditionFailed, cond.IfMatch)
	}
	switch d.kind {
	case blobS3:
		// S3 ignores ContentMD5, and leaving it unset lets gocloud hand the
		// bytes.Reader straight to the uploader (no pipe, known length).
		opts.BeforeWrite = func(as func(any) bool) error {
			var in *transfermanager.UploadObjectInput
			if !as(&in) {
				return errors.New("s3: gocloud did not expose the upload request")
			}
			if cond.IfMatch != "" {
				in.IfMatch = aws.String(quoteETag(cond.IfMatch))
			}
			d.replaceUploader(as, int64(len(data)), &s3out)
			return nil
		}
	case blobGCS:
		opts.ContentMD5 = sum[:] // GCS checks it server-side
		opts.BeforeWrite = func(as func(any) bool) error {
			if cond.IfMatch != "" {
				gen, err := strconv.ParseInt(string(cond.IfMatch), 10, 64)
				if err != nil || gen <= 0 {
					// Not a generation: it cannot match anything stored.
					hookEr = fmt.Errorf("%w: version %q is not a GCS generation", ErrPreconditionFailed, cond.IfMatch)
					return hookEr
				}
				var h **storage.ObjectHandle
				if !as(&h) {
					return errors.New("gcs: gocloud did not expose the object handle")
				}
				*h = (*h).If(storage.Conditions{GenerationMatch: gen})
			}
			// Must come after the handle: asking for the writer creates it.
			if !as(&gcsW) {
				return errors.New("gcs: gocloud did not expose the writer")
			}
			return nil
		}
	case blobAzure:
		// Stored as the blob's Content-MD5, which putVersionByStat checks.
		opts.ContentMD5 = sum[:]
		if cond.IfMatch != "" {
			opts.BeforeWrite = func(as func(any) bool) error {
				var uo *azblob.UploadStreamOptions
				if !as(&uo) {
					return errors.New("azure: gocloud did not expose the upload options")
				}
				etag := azcore.ETag(quoteETag(cond.IfMatch))
				uo.AccessConditions = &azblob.AccessConditions{
					ModifiedAccessConditions: &azblobblob.ModifiedAccessConditions{IfMatch: &etag},
				}
				return nil
			}
		}
	}
	if err := d.b.Upload(ctx, key, bytes.NewReader(data), opts); err != nil {
		if hookEr != nil {
			return "", hookEr
		}
		return "", blobError(err)
	}
	switch d.kind {
	case blobS3:
		if s3out.etag != "" {
			return etagVersion(s3out.etag), nil
		}
	case blobGCS:
		if gcsW != nil {
			if a := gcsW.Attrs(); a != nil && a.Generation != 0 {
				return Version(strconv.FormatInt(a.Generation, 10)), nil
			}
		}
	}
	return d.putVersionByStat(ctx, key, sum[:]), nil
}

// replaceUploader swaps the transfer manager gocloud will upload through for
// one configured by us, reached through BeforeWrite's As (gocloud documents
// the *transfermanager.Client as the place to change how an upload is made).
// Ours does two things gocloud's cannot:
//   - it records the PutObject response, whose ETag is the new version (S3
//     does not say that ETag = MD5: not under SSE-KMS or SSE-C, nor for
//     multipart uploads, nor on every S3-compatible store);
//   - it uploads the whole object in one PutObject (the default switches to
//     multipart at 16 MiB), so that the condition applies to one request.
//
// If the client cannot be reached the upload goes through gocloud's defaults
// (one PutObject below 16 MiB) and Put falls back to putVersionByStat.
func (d *blobDriver) replaceUploader(as func(any) bool, size int64, out *s3PutOutput) {
	var tm *transfermanager.Client
	if !as(&tm) || tm == nil {
		return
	}
	checksum := d.s3.Options().RequestChecksumCalculation
	*tm = *transfermanager.New(d.s3, func(o *transfermanager.Options) {
		// As gocloud does: the client's setting does not reach the uploader.
		o.RequestChecksumCalculation = checksum
		if size < maxSinglePut {
			o.MultipartUploadThreshold = size + 1
		}
		o.ObjectProgressListeners.Register(out)
	})
}

// s3PutOutput records the ETag of a completed upload. The uploader calls it
// on gocloud's upload goroutine; Put reads it after Upload returns, which
// waits for that goroutine.
type s3PutOutput struct{ etag string }

var _ transfermanager.ObjectTransferCompleteListener = (*s3PutOutput)(nil)

func (o *s3PutOutput) OnObjectTransferComplete(_ context.Context, e *transfermanager.ObjectTransferCompleteEvent) {
	if out, ok := e.Output.(*transfermanager.UploadObjectOutput); ok && out.ETag != nil {
		o.etag = *out.ETag
	}
}

// putVersionByStat finds the version of a write that just succeeded when the
// write's own response is out of reach (Azure: gocloud drops the upload
// response). It costs one HEAD request. A HEAD alone could return the
// version of a later writer, and a compare-and-swap on that version would
// overwrite a write the caller never saw; so the version is accepted only if
// the stored Content-MD5 is that of our bytes (identical bytes are the same
// state). Otherwise the write stands but its version is unverifiedVersion.
func (d *blobDriver) putVersionByStat(ctx context.Context, key string, sum []byte) Version {
	a, err := d.b.Attributes(ctx, key)
	if err != nil || !bytes.Equal(a.MD5, sum) {
		return unverifiedVersion
	}
	v, err := d.attrsVersion(a)
	if err != nil {
		return unverifiedVersion
	}
	return v
}

// List pages with gocloud's ListPage; its opaque []byte page token is
// carried in our string token as base64.
func (d *blobDriver) List(ctx context.Context, prefix, pageToken string, pageSize int) (ListPage, error) {
	if err := d.checkOpen(); err != nil {
		return ListPage{}, err
	}
	tok := blob.FirstPageToken
	if pageToken != "" {
		var err error
		if tok, err = base64.RawURLEncoding.DecodeString(pageToken); err != nil || len(tok) == 0 {
			return ListPage{}, fmt.Errorf("invalid page token %q", pageToken)
		}
	}
	objs, next, err := d.b.ListPage(ctx, tok, pageSize, &blob.ListOptions{Prefix: prefix})
	if err != nil {
		return ListPage{}, blobError(err)
	}
	var page ListPage
	for _, o := range objs {
		if o.IsDir {
			continue
		}
		page.Objects = append(page.Objects, ObjectInfo{Key: o.Key, Size: o.Size, ModTime: o.ModTime})
	}
	if len(next) > 0 {
		page.NextPageToken = base64.RawURLEncoding.EncodeToString(next)
	}
	return page, nil
}

func (d *blobDriver) Delete(ctx context.Context, key string) error {
	if err := d.checkOpen(); err != nil {
		return err
	}
	err := d.b.Delete(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound && !isMissingBucket(err) {
		return nil
	}
	return blobError(err)
}

func (d *blobDriver) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.b.Close()
}

// checkOpen keeps gocloud's "bucket has been closed" error, which it codes
// FailedPrecondition, from reading as a lost conditional write.
func (d *blobDriver) checkOpen() error {
	if d.closed.Load() {
		return errors.New("store is closed")
	}
	return nil
}

// etagVersion normalises an ETag header value to a Version: S3 and Azure
// quote ETags ("abc"), and some S3-compatible stores mark them weak (W/"abc").
func etagVersion(etag string) Version {
	etag = strings.TrimPrefix(etag, "W/")
	return Version(strings.Trim(etag, `"`))
}

// quoteETag is the form If-Match expects.
func quoteETag(v Version) string { return `"` + string(v) + `"` }

// blobError maps an error from gocloud (and the SDK error it wraps) to the
// typed errors of this package, keeping the original in the chain.
func blobError(err error) error {
	if err == nil {
		return nil
	}
	for _, typed := range []error{ErrNotFound, ErrPreconditionFailed, ErrConflict, ErrTransient, ErrInvalidKey} {
		if errors.Is(err, typed) {
			return err
		}
	}
	if errors.Is(err, context.Canceled) {
		// The caller gave up; not a store condition to retry.
		return err
	}
	if isMissingBucket(err) {
		// Not ErrNotFound: that would make every key of a mistyped bucket
		// look merely absent, and a create-if-absent retry forever.
		return fmt.Errorf("bucket or container does not exist: %w", err)
	}
	code, hs := apiErrorCode(err), httpStatus(err)
	switch {
	case code == "ConditionalRequestConflict" || code == "OperationAborted" || (hs == http.StatusConflict && code == ""):
		// S3: another conditional write on this key is in flight; retry.
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case gcerrors.FailedPrecondition:
		return fmt.Errorf("%w: %w", ErrPreconditionFailed, err)
	case gcerrors.ResourceExhausted, gcerrors.DeadlineExceeded, gcerrors.Internal:
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted, codes.ResourceExhausted, codes.DeadlineExceeded:
		// GCS over gRPC; gocloud codes these Unknown.
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	switch code {
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case "PreconditionFailed", "ConditionNotMet":
		return fmt.Errorf("%w: %w", ErrPreconditionFailed, err)
	case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
		"ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
		"ServerBusy", "OperationTimedOut", "XMinioServerNotInitialized":
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	switch {
	case hs == http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case hs == http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %w", ErrPreconditionFailed, err)
	case hs == http.StatusRequestTimeout, hs == http.StatusTooManyRequests, hs >= 500:
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	if isNetworkError(err) {
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	return err
}

// apiErrorCode is the service's error code (S3 "SlowDown", Azure
// "ConditionNotMet"), or "".
func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	var az *azcore.ResponseError
	if errors.As(err, &az) {
		return az.ErrorCode
	}
	return ""
}

// httpStatus is the HTTP status of the failed response, or 0.
func httpStatus(err error) int {
	// aws transport/http.ResponseError and smithy-go's http.ResponseError.
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	var az *azcore.ResponseError
	if errors.As(err, &az) {
		return az.StatusCode
	}
	return 0
}

func isMissingBucket(err error) bool {
	switch apiErrorCode(err) {
	case "NoSuchBucket", "ContainerNotFound":
		return true
	}
	return errors.Is(err, storage.ErrBucketNotExist)
}

func isInvalidRange(err error) bool {
	return apiErrorCode(err) == "InvalidRange" || httpStatus(err) == http.StatusRequestedRangeNotSatisfiable
}

// isNetworkError reports a failure to reach the store or a response cut
// short: the request may or may not have been applied.
func isNetworkError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded)
}
