package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// width is the widest line the demo prints.
const width = 100

// cellWidth is the width of one pair's cell in a table of rows.
const cellWidth = 16

// rows prints a table with one cell per pair, a row at a time, and leaves
// out a row whose cells are those of the row printed before it.
type rows struct{ last string }

// header prints the pairs' names over the cells, and under them sub, the
// names of what each cell holds, after the first column's label.
func (r *rows) header(procs []*proc, label, sub string) {
	names, subs := make([]string, len(procs)), make([]string, len(procs))
	for i, p := range procs {
		names[i], subs[i] = p.Setting.Name, sub
	}
	fmt.Println(rowLine("", names))
	fmt.Println(rowLine(label, subs))
}

// row prints cells after at unless they are the cells of the last row.
func (r *rows) row(at string, cells []string) {
	line := rowLine("", cells)
	if line == r.last {
		return
	}
	r.last = line
	fmt.Println(rowLine(at, cells))
}

// rowLine is one line of a table of rows: first, then each cell padded to
// cellWidth, the cells apart by a bar.
func rowLine(first string, cells []string) string {
	padded := make([]string, len(cells))
	for i, c := range cells {
		padded[i] = fmt.Sprintf("%-*s", cellWidth, c)
	}
	return strings.TrimRight(fmt.Sprintf("  %5s  %s", first, strings.Join(padded, " │ ")), " ")
}

// wrap is text after prefix, broken at spaces so that no line is wider
// than width where a word allows; lines after the first are indented as
// far as prefix.
func wrap(prefix, text string) string {
	indent := strings.Repeat(" ", utf8.RuneCountInString(prefix))
	var b strings.Builder
	line := prefix
	for i, word := range strings.Fields(text) {
		switch {
		case i == 0:
			line += word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > width:
			b.WriteString(line + "\n")
			line = indent + word
		default:
			line += " " + word
		}
	}
	b.WriteString(line)
	return b.String()
}
