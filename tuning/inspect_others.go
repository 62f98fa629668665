//go:build !linux

package tuning

// snapshotFD needs Linux's TCP_INFO.
func snapshotFD(uintptr) (Snapshot, error) { return Snapshot{}, unsupported("TCP_INFO (Inspect)") }

func socketError(uintptr) (error, error) { return nil, unsupported("SO_ERROR") }
