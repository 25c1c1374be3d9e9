package rewrite

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Change is one image rewritten in a file.
type Change struct {
	// Line is the 1-based line of the instruction or key.
	Line     int
	From, To string
}

// Dockerfile rewrites the images a Dockerfile pulls: each FROM's image
// (after --platform and other flags) and each COPY --from= that names an
// image rather than a stage. Stage names, stage numbers, scratch and
// images built from build arguments ($VAR) are left alone, as is
// everything else in the file, byte for byte: comments, continuations,
// heredocs, the escape directive.
func (r *Rewriter) Dockerfile(src []byte) ([]byte, []Change, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, nil, fmt.Errorf("dockerfile: %w", err)
	}
	lines := lineStarts(src)
	stages := map[string]bool{}
	var edits []edit
	var changes []Change
	for _, n := range res.AST.Children {
		image, prefix, stage := imageOf(n)
		if image != "" && pullable(image, stages) {
			if to, ok := r.Image(image); ok {
				start, end := lines.span(n.StartLine, n.EndLine)
				at := findToken(src[start:end], prefix+image)
				if at < 0 {
					return nil, nil, fmt.Errorf("dockerfile: line %d: cannot find %q in the instruction's text to rewrite it", n.StartLine, image)
				}
				at += start + len(prefix)
				edits = append(edits, edit{at, at + len(image), to})
				changes = append(changes, Change{Line: n.StartLine, From: image, To: to})
			}
		}
		// A stage's name refers to it from the next instruction on:
		// in "FROM build AS build", the first build is an image.
		if stage != "" {
			stages[strings.ToLower(stage)] = true
		}
	}
	return apply(src, edits), changes, nil
}

// imageOf returns the image instruction n pulls, if any: a FROM's (and
// the stage name it declares) or a COPY --from='s, with the text that
// precedes the image in its token ("--from=").
func imageOf(n *parser.Node) (image, prefix, stage string) {
	switch strings.ToLower(n.Value) {
	case "from":
		if n.Next == nil {
			return "", "", ""
		}
		if as := n.Next.Next; as != nil && strings.EqualFold(as.Value, "as") && as.Next != nil {
			stage = as.Next.Value
		}
		return n.Next.Value, "", stage
	case "copy", "add":
		for _, f := range n.Flags {
			if v, ok := strings.CutPrefix(f, "--from="); ok {
				return v, "--from=", ""
			}
		}
	}
	return "", "", ""
}

// pullable tells an image from what a FROM or --from= may also name: an
// earlier stage (by name or number), scratch, or a value made of build
// arguments, which only the build knows.
func pullable(image string, stages map[string]bool) bool {
	lower := strings.ToLower(image)
	if stages[lower] || lower == "scratch" || strings.Contains(image, "$") {
		return false
	}
	_, err := strconv.Atoi(image)
	return err != nil
}

// lineOffsets are the byte offsets at which a text's lines start.
type lineOffsets struct {
	starts []int
	size   int
}

func lineStarts(src []byte) lineOffsets {
	l := lineOffsets{starts: []int{0}, size: len(src)}
	for i, b := range src {
		if b == '\n' && i+1 < len(src) {
			l.starts = append(l.starts, i+1)
		}
	}
	return l
}

// offset is the byte offset of the start of 1-based line n, or the end
// of the text past its last line.
func (l lineOffsets) offset(n int) int {
	if n < 1 {
		return 0
	}
	if n > len(l.starts) {
		return l.size
	}
	return l.starts[n-1]
}

// span is the bytes of lines first to last (1-based, inclusive).
func (l lineOffsets) span(first, last int) (start, end int) {
	return l.offset(first), l.offset(last + 1)
}

// findToken returns the offset in text of the first occurrence of tok as
// a whole word (between blanks, line ends or the text's ends) on a line
// that is not a comment, or -1.
func findToken(text []byte, tok string) int {
	for from := 0; ; {
		i := bytes.Index(text[from:], []byte(tok))
		if i < 0 {
			return -1
		}
		i += from
		end := i + len(tok)
		if (i == 0 || isBlank(text[i-1])) && (end == len(text) || isBlank(text[end])) && !inComment(text, i) {
			return i
		}
		from = i + 1
	}
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// inComment tells whether offset i of text is on a line whose first
// non-blank byte is '#'.
func inComment(text []byte, i int) bool {
	start := bytes.LastIndexByte(text[:i], '\n') + 1
	line := bytes.TrimLeft(text[start:i], " \t")
	return len(line) > 0 && line[0] == '#'
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// apply returns src with edits applied; edits are in increasing order and
// do not overlap.
func apply(src []byte, edits []edit) []byte {
	var out bytes.Buffer
	out.Grow(len(src) + 64*len(edits))
	last := 0
	for _, e := range edits {
		out.Write(src[last:e.start])
		out.WriteString(e.text)
		last = e.end
	}
	out.Write(src[last:])
	return out.Bytes()
}
