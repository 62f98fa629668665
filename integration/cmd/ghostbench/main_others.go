//go:build !linux

package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "ghostbench needs Linux (network namespaces); this is %s/%s\n", runtime.GOOS, runtime.GOARCH)
	os.Exit(2)
}
