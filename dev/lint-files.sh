#!/usr/bin/env bash
# Fails when git's index holds a file that should not be committed:
#
#  - an executable file (mode 100755) that is not a script of ours. Only
#    files under dev/ or .ci/ whose first line is a shebang (#!) may be
#    executable, so a build output added by mistake (a `morax` binary, a
#    *.test) is caught whatever its name;
#  - a file over 1 MiB, unless it lies in a testdata/ directory. Large
#    fixtures belong next to the tests that read them; anything else that
#    big is a build, a dump or a profile, and stays in the history forever.
#
# It reads the index, not the work tree, so it judges exactly what the next
# commit holds. `go tool task lint` runs it (and CI runs that).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	echo "lint-files: not a git checkout, so nothing is tracked; skipped"
	exit 0
fi

max_bytes=$((1 << 20))
modes=() shas=() paths=()
while IFS= read -r -d '' entry; do
	read -r mode sha _ <<<"${entry%%$'\t'*}"
	modes+=("$mode") shas+=("$sha") paths+=("${entry#*$'\t'}")
done < <(git ls-files -s -z)

# One git process answers every size, a line per entry in order. A gitlink
# (submodule, mode 160000) names a commit of another repository that is not
# here; its line says "missing" and its size is not judged.
sizes=()
if ((${#shas[@]} > 0)); then
	mapfile -t sizes < <(printf '%s\n' "${shas[@]}" | git cat-file --batch-check='%(objectsize)')
fi

problems=()
for i in "${!paths[@]}"; do
	path=${paths[$i]} mode=${modes[$i]}
	if [ "$mode" = 100755 ]; then
		case $path in
		dev/* | .ci/*) first=$(head -c 2 < <(git cat-file blob "${shas[$i]}")) ;;
		*) first= ;;
		esac
		if [ "$first" != '#!' ]; then
			problems+=("$path: executable, but only scripts with a shebang under dev/ or .ci/ may be (a build output? git rm --cached it; else git update-index --chmod=-x)")
		fi
	fi
	if [ "$mode" != 160000 ] && [ "${sizes[$i]}" -gt "$max_bytes" ]; then
		case /$path in
		*/testdata/*) ;;
		*) problems+=("$path: ${sizes[$i]} bytes, over 1 MiB outside a testdata/ directory") ;;
		esac
	fi
done

if ((${#problems[@]} > 0)); then
	echo "lint-files: files that must not be tracked:"
	printf '  %s\n' "${problems[@]}"
	exit 1
fi
