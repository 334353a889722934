package objectlog_test

import (
	"testing"

	"github.com/sluicehq/sluice/internal/miniotest"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/objectlog/storetest"
)

// TestConformance runs the storage conformance suite against every backend
// that can run here: memory, a local directory, and MinIO (skipped without
// it, failed under CI; see internal/miniotest).
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Name: "mem",
		Open: func(t *testing.T) *objectlog.Store { return storetest.OpenURL(t, "mem://") },
	})
	fileURL := func(t *testing.T) string { return "file://" + t.TempDir() }
	storetest.Run(t, storetest.Backend{
		Name:      "file",
		Open:      func(t *testing.T) *objectlog.Store { return storetest.OpenURL(t, fileURL(t)) },
		SharedURL: fileURL,
	})
	storetest.Run(t, storetest.Backend{
		Name:      "minio",
		Open:      func(t *testing.T) *objectlog.Store { return storetest.OpenURL(t, miniotest.Bucket(t)) },
		SharedURL: func(t *testing.T) string { return miniotest.Bucket(t) },
	})
}

// TestStoreConformanceChild is the child process of the suite's
// multi-process test; run normally it skips.
func TestStoreConformanceChild(t *testing.T) { storetest.Child(t) }
