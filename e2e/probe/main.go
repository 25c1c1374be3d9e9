// Command probe is the program in the end-to-end suite's runnable base
// image (e2e/checks/derive.sh): run in a container, it prints what a
// derived image changes, so that the suite can check each change as a
// runtime sees it. It is built static, and its image has nothing else.
//
//	probe VAR... -- PATH...
//
// prints VAR=value for each variable, then for each path its permission
// bits in octal, its kind (dir, file or symlink) and, for a file, its
// content.
package main

import (
	"fmt"
	"os"
)

func main() {
	paths := false
	for _, arg := range os.Args[1:] {
		switch {
		case arg == "--":
			paths = true
		case !paths:
			fmt.Printf("%s=%s\n", arg, os.Getenv(arg))
		default:
			describe(arg)
		}
	}
}

func describe(path string) {
	st, err := os.Lstat(path)
	if err != nil {
		fmt.Printf("%s: %v\n", path, err)
		return
	}
	switch {
	case st.IsDir():
		fmt.Printf("%s %04o dir\n", path, st.Mode().Perm())
	case st.Mode()&os.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		fmt.Printf("%s symlink %s\n", path, target)
	default:
		b, _ := os.ReadFile(path)
		fmt.Printf("%s %04o file %q\n", path, st.Mode().Perm(), b)
	}
}
