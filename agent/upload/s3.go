package upload

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"capbox/agent/config"
)

// S3's multipart rules: parts of 5 MiB at least (but the last), at most
// 10,000 parts. partSize stays well inside both for any segment.
const (
	s3MinPart  = 5 << 20
	s3MaxParts = 10000
	s3PartSize = 8 << 20
	// s3Parallel parts are in flight at once.
	s3Parallel = 4
)

// s3Target uploads with S3 multipart: the upload id is kept in the
// journal, so after a restart the parts already stored are listed and
// skipped (each checked by its MD5). The ETag the server returns for each
// part must be the MD5 of the bytes read from the segment for it, and the
// object's ETag at the end the MD5 of those MD5s: what S3 computes.
type s3Target struct {
	name      string
	conf      config.UploadTarget
	dest      config.UploadDest
	transport http.RoundTripper
}

func (t *s3Target) Name() string { return t.name }

func (t *s3Target) Close() error { return nil }

// partPlan is the part size for a file of size bytes.
func partPlan(size int64) (partSize int64, parts int) {
	partSize = s3PartSize
	if need := (size + s3MaxParts - 1) / s3MaxParts; need > partSize {
		partSize = (need + 1<<20 - 1) &^ (1<<20 - 1)
	}
	parts = int((size + partSize - 1) / partSize)
	if parts == 0 {
		parts = 1 // an empty segment is one empty part
	}
	return partSize, parts
}

func (t *s3Target) client() (*minio.Core, []string, error) {
	access, err := readSecretFile(t.conf.AccessKeyFile, maxSecretSize)
	if err != nil {
		return nil, nil, err
	}
	secret, err := readSecretFile(t.conf.SecretKeyFile, maxSecretSize)
	if err != nil {
		return nil, nil, err
	}
	secrets := []string{string(access), string(secret)}
	core, err := minio.NewCore(t.dest.EndpointHost, &minio.Options{
		Creds:        credentials.NewStaticV4(string(access), string(secret), ""),
		Secure:       t.dest.Secure,
		Region:       t.conf.Region,
		Transport:    t.transport,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, secrets, fmt.Errorf("%w: %s", ErrRemote, scrub(err.Error(), secrets...))
	}
	return core, secrets, nil
}

func (t *s3Target) key(remote string) string {
	if t.dest.Dir == "" {
		return remote
	}
	return path.Join(t.dest.Dir, remote)
}

func (t *s3Target) Upload(ctx context.Context, j *job) (result, error) {
	var res result
	core, secrets, err := t.client()
	if err != nil {
		return res, err
	}
	classify := func(err error) error { return t.classify(err, secrets) }
	f, err := os.Open(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("%w: %s", ErrSegmentGone, j.path)
	}
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrSegment, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrSegment, err)
	}
	size := st.Size()
	key := t.key(j.remote)
	partSize, nparts := partPlan(size)

	stored := map[int]minio.ObjectPart{}
	uploadID := j.uploadID
	if uploadID != "" {
		stored, err = t.listParts(ctx, core, key, uploadID)
		if isNoSuchUpload(err) {
			// Completed before the journal said so, or expired: the object
			// itself may be there and whole.
			if ok, err := t.alreadyThere(ctx, core, key, f, size, partSize, nparts); err == nil && ok {
				res.Resumed, res.Remote = size, key
				return res, nil
			}
			uploadID, stored = "", map[int]minio.ObjectPart{}
		} else if err != nil {
			return res, classify(err)
		}
	}
	if uploadID == "" {
		uploadID, err = core.NewMultipartUpload(ctx, t.dest.Bucket, key, minio.PutObjectOptions{ContentType: contentType(j.path)})
		if err != nil {
			return res, classify(err)
		}
		if err := j.saveUploadID(uploadID); err != nil {
			return res, err
		}
	}

	// Parts go up s3Parallel at a time, each read from the file once: its
	// MD5 is taken as it is sent and compared with the ETag the server
	// returns for it.
	sums := make([][md5.Size]byte, nparts+1)
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done atomic.Int64
	sem := make(chan struct{}, s3Parallel)
	var wg sync.WaitGroup
	for i := 1; i <= nparts && pctx.Err() == nil; i++ {
		off := int64(i-1) * partSize
		n := min(partSize, size-off)
		if p, ok := stored[i]; ok && p.Size == n {
			h := md5.New()
			if _, err := io.Copy(h, io.NewSectionReader(f, off, n)); err != nil {
				return res, fmt.Errorf("%w: %w", ErrSegment, err)
			}
			copy(sums[i][:], h.Sum(nil))
			if strings.Trim(p.ETag, `"`) == hex.EncodeToString(sums[i][:]) {
				res.Resumed += n
				j.progress(done.Add(n))
				continue
			}
		}
		select {
		case sem <- struct{}{}:
		case <-pctx.Done():
		}
		if pctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int, off, n int64) {
			defer wg.Done()
			defer func() { <-sem }()
			h := md5.New()
			body := &limitedReader{ctx: pctx, l: j.limit, left: n,
				r: io.TeeReader(&countingReader{r: io.NewSectionReader(f, off, n), add: func(k int64) { j.progress(done.Add(k)) }}, h)}
			p, err := core.PutObjectPart(pctx, t.dest.Bucket, key, uploadID, i, body, n, minio.PutObjectPartOptions{})
			if err != nil {
				fail(classify(err))
				cancel()
				return
			}
			copy(sums[i][:], h.Sum(nil))
			if got, want := strings.Trim(p.ETag, `"`), hex.EncodeToString(sums[i][:]); got != want {
				fail(fmt.Errorf("%w: part %d of %s: the server has MD5 %s, the segment %s", ErrVerify, i, key, got, want))
				cancel()
				return
			}
			mu.Lock()
			res.Sent += n
			mu.Unlock()
		}(i, off, n)
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	complete := make([]minio.CompletePart, 0, nparts)
	composite := md5.New()
	for i := 1; i <= nparts; i++ {
		composite.Write(sums[i][:])
		complete = append(complete, minio.CompletePart{PartNumber: i, ETag: hex.EncodeToString(sums[i][:])})
	}
	info, err := core.CompleteMultipartUpload(ctx, t.dest.Bucket, key, uploadID, complete, minio.PutObjectOptions{})
	if err != nil {
		return res, classify(err)
	}
	want := fmt.Sprintf("%s-%d", hex.EncodeToString(composite.Sum(nil)), nparts)
	if got := strings.Trim(info.ETag, `"`); got != want {
		return res, fmt.Errorf("%w: %s: the server reports ETag %s, the segment's parts make %s", ErrVerify, key, got, want)
	}
	res.Remote = key
	return res, nil
}

func (t *s3Target) listParts(ctx context.Context, core *minio.Core, key, uploadID string) (map[int]minio.ObjectPart, error) {
	parts := map[int]minio.ObjectPart{}
	marker := 0
	for range s3MaxParts/1000 + 1 {
		r, err := core.ListObjectParts(ctx, t.dest.Bucket, key, uploadID, marker, 1000)
		if err != nil {
			return nil, err
		}
		for _, p := range r.ObjectParts {
			parts[p.PartNumber] = p
		}
		if !r.IsTruncated || r.NextPartNumberMarker <= marker {
			break
		}
		marker = r.NextPartNumberMarker
	}
	return parts, nil
}

// alreadyThere reports whether the object is stored whole: same size and
// the ETag the segment's parts make.
func (t *s3Target) alreadyThere(ctx context.Context, core *minio.Core, key string, f *os.File, size, partSize int64, nparts int) (bool, error) {
	info, err := core.StatObject(ctx, t.dest.Bucket, key, minio.StatObjectOptions{})
	if err != nil || info.Size != size {
		return false, err
	}
	composite := md5.New()
	buf := make([]byte, partSize)
	for i := range nparts {
		off := int64(i) * partSize
		n := min(partSize, size-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		s := md5.Sum(buf[:n])
		composite.Write(s[:])
	}
	return strings.Trim(info.ETag, `"`) == fmt.Sprintf("%s-%d", hex.EncodeToString(composite.Sum(nil)), nparts), nil
}

// countingReader tells how much was read.
type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.add(int64(n))
	return n, err
}

func isNoSuchUpload(err error) bool {
	return err != nil && minio.ToErrorResponse(err).Code == "NoSuchUpload"
}

// classify names an S3 failure by what can be done about it; the message
// never carries the keys.
func (t *s3Target) classify(err error, secrets []string) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	msg := scrub(err.Error(), secrets...)
	switch minio.ToErrorResponse(err).Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken":
		return fmt.Errorf("%w: %s: %s", ErrCredentials, t.name, msg)
	case "NoSuchBucket", "InvalidBucketName", "AllAccessDisabled":
		return fmt.Errorf("%w: %s: %s", ErrRemote, t.name, msg)
	}
	return fmt.Errorf("%s: %s", t.name, msg)
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".ts":
		return "video/mp2t"
	case ".mp4":
		return "video/mp4"
	}
	return "application/octet-stream"
}
