package sockopt

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestKernelLacks: a kernel before 6.15 answers ENOPROTOOPT for
// TCP_RTO_MAX_MS; that is ErrUnsupported, with the syscall error kept.
func TestKernelLacks(t *testing.T) {
	old := kernelLacks(os.NewSyscallError("setsockopt TCP_RTO_MAX_MS", syscall.ENOPROTOOPT), "RTOMax")
	assert.ErrorIs(t, old, errors.ErrUnsupported)
	assert.ErrorIs(t, old, syscall.ENOPROTOOPT)
	other := os.NewSyscallError("setsockopt TCP_RTO_MAX_MS", syscall.EINVAL)
	assert.Same(t, other, kernelLacks(other, "RTOMax"), "other errors pass as they are")
}
