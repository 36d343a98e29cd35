package health

import (
	"testing"

	"go.uber.org/goleak"
)

// Every Run, Serve and test goroutine must be gone when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
