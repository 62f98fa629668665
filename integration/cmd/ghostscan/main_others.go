//go:build !linux

package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "ghostscan: sock_diag is Linux's; not supported on %s\n", runtime.GOOS)
	os.Exit(2)
}
