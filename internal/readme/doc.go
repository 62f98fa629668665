// Package readme keeps README.md's Go snippets honest: every ```go block
// in the README must appear, line for line, in one of the commands beside
// this file (quickstart for the first screen, guide for the rest), and the
// test builds them.
package readme
