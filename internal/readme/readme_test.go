package readme

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// block is one fenced ```go block of the README.
type block struct {
	line  int // where it starts
	lines []string
}

func readmeBlocks(t *testing.T) []block {
	f, err := os.Open("../../README.md")
	require.NoError(t, err)
	defer f.Close()
	var blocks []block
	var cur *block
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(l) == "```go":
			cur = &block{line: n}
		case cur != nil && strings.TrimSpace(l) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, strings.TrimSpace(l))
		}
	}
	require.NoError(t, sc.Err())
	require.Nil(t, cur, "an unclosed ```go block")
	return blocks
}

func sourceLines(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	for l := range strings.SplitSeq(string(b), "\n") {
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// contains reports whether want appears in have as contiguous lines.
func contains(have, want []string) bool {
	for i := 0; i+len(want) <= len(have); i++ {
		match := true
		for j, w := range want {
			if have[i+j] != w {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func TestREADMESnippetsCompile(t *testing.T) {
	blocks := readmeBlocks(t)
	require.NotEmpty(t, blocks)
	sources := map[string][]string{}
	for _, p := range []string{"quickstart/main.go", "guide/main.go"} {
		sources[p] = sourceLines(t, p)
	}
	for _, b := range blocks {
		found := false
		for _, src := range sources {
			if contains(src, b.lines) {
				found = true
				break
			}
		}
		assert.True(t, found, "README.md line %d: a ```go block that is in neither quickstart/main.go nor guide/main.go, so no test compiles it:\n%s",
			b.line, strings.Join(b.lines, "\n"))
	}
	// The first screen: the imports and the four snippets, early.
	assert.Less(t, blocks[0].line, 40, "the first snippet is on the README's first screen")
	assert.Contains(t, strings.Join(blocks[0].lines, "\n"), `"github.com/ghostsock/ghostsock/tuning"`, "the first snippet shows its imports")

	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "build", "./quickstart", "./guide").CombinedOutput()
	require.NoError(t, err, "the snippets' commands build:\n%s", out)
}
