package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries means that no usable PostgreSQL server binaries were found.
var ErrNoBinaries = errors.New("pgcluster: no PostgreSQL server binaries (initdb, pg_ctl, postgres) found; " +
	"install them (Debian/Ubuntu: apt-get install postgresql) " +
	"or set BRIDGE_DATABASE_URL to an existing PostgreSQL server")

// serverBinaries are the programs a cluster needs.
var serverBinaries = [...]string{"initdb", "pg_ctl", "postgres"}

// debianRoot is where Debian and Ubuntu install one folder per major version.
const debianRoot = "/usr/lib/postgresql"

// FindBinaries returns the folder that holds the PostgreSQL server binaries:
// the output of `pg_config --bindir` when that folder has initdb, pg_ctl and
// postgres, else the highest version under /usr/lib/postgresql/*/bin. When
// there is none it returns an error wrapping [ErrNoBinaries].
func FindBinaries() (dir string, err error) {
	return findBinaries("pg_config", debianRoot)
}

func findBinaries(pgConfig, root string) (string, error) {
	var searched []string
	if out, err := exec.Command(pgConfig, "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if hasServerBinaries(dir) {
			return dir, nil
		}
		searched = append(searched, dir)
	} else {
		searched = append(searched, pgConfig+" --bindir")
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "bin"))
	slices.SortFunc(dirs, func(a, b string) int {
		// Highest version first.
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, dir := range dirs {
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	searched = append(searched, filepath.Join(root, "*", "bin"))
	return "", fmt.Errorf("%w (searched %s)", ErrNoBinaries, strings.Join(searched, ", "))
}

// hasServerBinaries reports whether dir holds executable initdb, pg_ctl and
// postgres.
func hasServerBinaries(dir string) bool {
	if dir == "" {
		return false
	}
	for _, name := range serverBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// compareVersions compares dotted version numbers such as "9.6" and "15";
// parts that are not numbers compare as 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}
